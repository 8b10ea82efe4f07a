package image

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func items(its []DeleteItem) []string {
	var out []string
	for _, it := range its {
		if it.Untagged != "" {
			out = append(out, "Untagged: "+it.Untagged)
		}
		if it.Deleted != "" {
			out = append(out, "Deleted: "+ShortID(it.Deleted))
		}
	}
	return out
}

// users fakes the engine's view of containers: image id -> (container id,
// running).
type users map[string]struct {
	id      string
	running bool
}

func (u users) opts(force bool) DeleteOptions {
	return DeleteOptions{
		Force:  force,
		InUse:  func(id string) bool { _, ok := u[id]; return ok },
		UsedBy: func(id string) string { return u[id].id },
		Running: func(id string) string {
			if c, ok := u[id]; ok && c.running {
				return c.id
			}
			return ""
		},
	}
}

func TestDeleteSemantics(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := busyboxTar(t)
	img := f.mustImport(t, data, "busybox")
	short := ShortID(img.ID)
	f.s.Tag(ctx, img.ID, "busybox:other")
	none := users{}

	// A tag of an image with other tags only untags.
	got, err := f.s.Delete(ctx, "busybox:other", none.opts(false))
	if err != nil || !slices.Equal(items(got), []string{"Untagged: busybox:other"}) {
		t.Fatalf("rmi busybox:other = %v, %v", items(got), err)
	}

	// Tags in two repositories: deleting by id needs force.
	f.s.Tag(ctx, img.ID, "mirror/busybox:1")
	_, err = f.s.Delete(ctx, short, none.opts(false))
	if !errdefs.IsConflict(err) || err.Error() != "conflict: unable to delete "+short+" (must be forced) - image is referenced in multiple repositories" {
		t.Fatalf("rmi id with two repos: %v", err)
	}
	f.s.Untag(ctx, "mirror/busybox:1")

	// A container uses the image.
	used := users{img.ID: {id: "c0ffee0123456789abcdef", running: false}}
	_, err = f.s.Delete(ctx, "busybox", used.opts(false))
	if !errdefs.IsConflict(err) || err.Error() != `conflict: unable to remove repository reference "busybox" (must force) - container c0ffee012345 is using its referenced image `+short {
		t.Fatalf("rmi of a used image: %v", err)
	}
	_, err = f.s.Delete(ctx, img.ID, used.opts(false))
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "(must be forced) - image is being used by stopped container c0ffee012345") {
		t.Fatalf("rmi id of a used image: %v", err)
	}
	running := users{img.ID: {id: "c0ffee0123456789abcdef", running: true}}
	_, err = f.s.Delete(ctx, img.ID, running.opts(true))
	if !errdefs.IsConflict(err) || err.Error() != "conflict: unable to delete "+short+" (cannot be forced) - image is being used by running container c0ffee012345" {
		t.Fatalf("rmi -f id of a running container's image: %v", err)
	}
	// Forced: untag only, the image stays while used.
	got, err = f.s.Delete(ctx, "busybox", used.opts(true))
	if err != nil || !slices.Equal(items(got), []string{"Untagged: busybox:latest"}) {
		t.Fatalf("rmi -f busybox = %v, %v", items(got), err)
	}
	if _, err := f.s.Get(ctx, img.ID); err != nil {
		t.Fatalf("image gone while used: %v", err)
	}
	got, err = f.s.Delete(ctx, img.ID, used.opts(true))
	if err != nil || len(got) != 0 {
		t.Fatalf("rmi -f id of a used dangling image = %v, %v", items(got), err)
	}

	// Unused: by id, it goes with its files.
	got, err = f.s.Delete(ctx, short, none.opts(false))
	if err != nil || !slices.Equal(items(got), []string{"Deleted: " + short}) {
		t.Fatalf("rmi id = %v, %v", items(got), err)
	}
	if _, err := f.s.Get(ctx, img.ID); !errdefs.IsNotFound(err) {
		t.Fatalf("Get after delete: %v", err)
	}
	if n := f.blobs(t); n != 0 {
		t.Errorf("%d blobs left", n)
	}
	if s := f.snapshots(t); len(s) != 0 {
		t.Errorf("snapshots left: %v", s)
	}
	if _, err := f.s.Delete(ctx, "busybox", none.opts(false)); !errdefs.IsNotFound(err) || err.Error() != "No such image: busybox:latest" {
		t.Fatalf("rmi missing: %v", err)
	}
}

func TestDeleteByIDWithOneTag(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.mustImport(t, smallTar(t, "x"), "app:v1")
	// A digest reference of the same repository does not count as another
	// repository.
	f.s.db.Update(func(tx *bolt.Tx) error {
		return setRef(tx, "docker.io/library/app@"+img.ManifestDigest.String(), img.ID)
	})
	got, err := f.s.Delete(ctx, strings.TrimPrefix(img.ID, "sha256:")[:8], users{}.opts(false))
	want := []string{"Untagged: app:v1", "Untagged: app@" + img.ManifestDigest.String(), "Deleted: " + ShortID(img.ID)}
	if err != nil || !slices.Equal(items(got), want) {
		t.Fatalf("rmi id = %v, %v; want %v", items(got), err, want)
	}
}

func TestDeleteLastTagTakesDigests(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.mustImport(t, smallTar(t, "x"), "app:v1")
	f.s.db.Update(func(tx *bolt.Tx) error {
		return setRef(tx, "docker.io/library/app@"+img.ManifestDigest.String(), img.ID)
	})
	got, err := f.s.Delete(ctx, "app:v1", users{}.opts(false))
	want := []string{"Untagged: app:v1", "Untagged: app@" + img.ManifestDigest.String(), "Deleted: " + ShortID(img.ID)}
	if err != nil || !slices.Equal(items(got), want) {
		t.Fatalf("rmi app:v1 = %v, %v; want %v", items(got), err, want)
	}
}

func TestSharedLayersSurvive(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := busyboxTar(t)
	a := f.mustImport(t, data, "a")
	b := f.mustImport(t, gzipped(data), "b") // same diff id, another blob
	c := f.mustImport(t, data, "c")          // same blob too
	chain := f.s.RootFSParent(a)
	if f.s.RootFSParent(b) != chain || f.s.RootFSParent(c) != chain {
		t.Fatal("same content, different chain ids")
	}
	none := users{}

	if _, err := f.s.Delete(ctx, "a", none.opts(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sn.Stat(ctx, chain); err != nil {
		t.Fatalf("shared snapshot removed: %v", err)
	}
	if _, err := f.cs.Info(ctx, a.Layers[0].Digest); err != nil {
		t.Fatalf("layer blob shared with c removed: %v", err)
	}
	if _, err := f.cs.Info(ctx, digest.Digest(a.ID)); !errdefs.IsNotFound(err) {
		t.Fatalf("a's config survived: %v", err)
	}
	if _, err := f.s.Delete(ctx, "c", none.opts(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.Info(ctx, a.Layers[0].Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("plain layer blob survived its last image: %v", err)
	}
	if _, err := f.sn.Stat(ctx, chain); err != nil {
		t.Fatalf("snapshot still used by b removed: %v", err)
	}

	// A container's snapshot on the layer keeps it even when the engine
	// did not say the image is used; GC frees it once the container goes.
	if _, err := f.sn.Prepare(ctx, "container-1", chain); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Delete(ctx, "b", none.opts(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sn.Stat(ctx, chain); err != nil {
		t.Fatalf("layer under a container removed: %v", err)
	}
	if err := f.sn.Remove(ctx, "container-1"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.snapshots(t); len(s) != 0 {
		t.Errorf("snapshots left: %v", s)
	}
	if n := f.blobs(t); n != 0 {
		t.Errorf("%d blobs left", n)
	}
}

func TestParentsAndPrune(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base := f.mustImport(t, smallTar(t, "base"), "")
	child := func(name string) *Image {
		cfg := base.Config
		cfg.Config.Labels = map[string]string{"name": name}
		img, err := f.s.Create(ctx, cfg, base.Layers, CreateOptions{Ref: "docker.io/library/" + name + ":latest", Parent: base.ID})
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	kid := child("kid")
	if kid.Parent != base.ID || kid.ID == base.ID {
		t.Fatalf("child %+v", kid)
	}
	_, err := f.s.Delete(ctx, base.ID, users{}.opts(true))
	if !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "(cannot be forced) - image has dependent child images") {
		t.Fatalf("rmi parent: %v", err)
	}
	// Without --no-prune the untagged parent goes with its last child.
	got, err := f.s.Delete(ctx, "kid", users{}.opts(false))
	want := []string{"Untagged: kid:latest", "Deleted: " + ShortID(kid.ID), "Deleted: " + ShortID(base.ID)}
	if err != nil || !slices.Equal(items(got), want) {
		t.Fatalf("rmi kid = %v, %v; want %v", items(got), err, want)
	}

	base = f.mustImport(t, smallTar(t, "base"), "")
	kid = child("kid2")
	opts := users{}.opts(false)
	opts.NoPrune = true
	got, err = f.s.Delete(ctx, "kid2", opts)
	if err != nil || len(got) != 2 {
		t.Fatalf("rmi --no-prune kid2 = %v, %v", items(got), err)
	}
	if _, err := f.s.Get(ctx, base.ID); err != nil {
		t.Fatalf("--no-prune removed the parent: %v", err)
	}
}

func TestGCAtOpen(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.mustImport(t, smallTar(t, "keep"), "keep")
	// What a crash in the middle of an import leaves.
	if _, err := f.sn.Prepare(ctx, importKeyPrefix+"dead", ""); err != nil {
		t.Fatal(err)
	}
	orphan, err := f.cs.PutBytes(ctx, []byte("half an image"), "")
	if err != nil {
		t.Fatal(err)
	}
	f.db.Close()
	f.open(t)
	if s := f.snapshots(t); !slices.Equal(s, []string{f.s.RootFSParent(img)}) {
		t.Errorf("snapshots after reopen: %v", s)
	}
	if _, err := f.cs.Info(ctx, orphan.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("orphan blob survived: %v", err)
	}
	if got, err := f.s.Get(ctx, "keep"); err != nil || got.ID != img.ID {
		t.Fatalf("image lost: %v", err)
	}
	if n := f.blobs(t); n != 3 {
		t.Errorf("%d blobs, want config+manifest+layer", n)
	}
}

func TestConcurrentImportsAndDeletes(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := busyboxTar(t)
	keep := f.mustImport(t, data, "keep")
	errs := make(chan error, 8)
	for i := 0; i < 4; i++ {
		go func() {
			ref := "img" + string(rune('a'+i))
			if _, err := f.s.Import(ctx, bytesReader(data), ImportOptions{Ref: ref}); err != nil {
				errs <- err
				return
			}
			_, err := f.s.Delete(ctx, ref, users{}.opts(false))
			errs <- err
		}()
		go func() {
			_, err := f.s.List(ctx)
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := f.snapshots(t); !slices.Equal(s, []string{f.s.RootFSParent(keep)}) {
		t.Fatalf("snapshots %v", s)
	}
	if n := f.blobs(t); n != 3 {
		t.Fatalf("%d blobs, want keep's 3", n)
	}
}
