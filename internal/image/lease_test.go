package image

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// configOf is a minimal image config for layers.
func configOf(layers ...Layer) dockerspec.DockerOCIImage {
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}}}
	cfg.RootFS.Type = "layers"
	for _, l := range layers {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
	}
	return cfg
}

func (f *fixture) leases(t *testing.T) []Lease {
	t.Helper()
	ls, err := f.s.Leases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// A slow AddLayer (a pull or load whose data trickles in) holds no lock:
// an rmi of another image, a second import and a GC all finish while it is
// still reading, and it then completes with a whole image.
func TestDeleteAndGCDuringSlowAddLayer(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.mustImport(t, smallTar(t, "other"), "other")

	lctx, release, err := f.s.Leased(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	data := busyboxTar(t)
	pr, pw := io.Pipe()
	type result struct {
		l   Layer
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := f.s.AddLayer(lctx, "", pr)
		done <- result{l, err}
	}()
	// Half the layer is in: the temporary snapshot and the blob's ingest
	// exist, the rest has not come.
	if _, err := pw.Write(data[:len(data)/2]); err != nil {
		t.Fatal(err)
	}

	finished := make(chan error, 3)
	go func() {
		_, err := f.s.Delete(ctx, "other", users{}.opts(false))
		finished <- err
	}()
	go func() {
		_, err := f.s.Import(ctx, bytesReader(smallTar(t, "second")), ImportOptions{Ref: "second"})
		finished <- err
	}()
	go func() { finished <- f.s.GC(ctx) }()
	for i := 0; i < 3; i++ {
		select {
		case err := <-finished:
			if err != nil {
				t.Fatal(err)
			}
		case r := <-done:
			t.Fatalf("AddLayer ended before the rmi, import and GC (%v)", r.err)
		case <-time.After(20 * time.Second):
			t.Fatal("rmi, import or GC waited for the AddLayer in progress")
		}
	}
	select {
	case r := <-done:
		t.Fatalf("AddLayer ended before its data (%v)", r.err)
	default:
	}

	if _, err := pw.Write(data[len(data)/2:]); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	// Another GC between the layer and its image takes nothing.
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	img, err := f.s.Create(lctx, configOf(r.l), []Layer{r.l}, CreateOptions{Ref: "docker.io/library/slow:latest"})
	if err != nil {
		t.Fatalf("create after GCs: %v", err)
	}
	release()
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.sn.Stat(ctx, f.s.RootFSParent(img)); err != nil {
		t.Errorf("layer of the slow image: %v", err)
	}
	if _, err := f.cs.Info(ctx, r.l.Digest); err != nil {
		t.Errorf("blob of the slow image: %v", err)
	}
	if _, err := f.s.Get(ctx, "other"); !errdefs.IsNotFound(err) {
		t.Errorf("other after rmi: %v", err)
	}
	// slow's 3 blobs and second's 3; other's went with it.
	if n := f.blobs(t); n != 6 {
		t.Errorf("%d blobs, want 6", n)
	}
	if ls := f.leases(t); len(ls) != 0 {
		t.Errorf("leases left: %+v", ls)
	}
}

// An operation that reuses the layers of another image holds them first;
// an rmi of that image then leaves them, and the new image is whole. When
// nothing held them, Create refuses to name what is gone.
func TestHoldBeforeReuse(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base := f.mustImport(t, busyboxTar(t), "base")
	chain := f.s.RootFSParent(base)

	lctx, release, err := f.s.Leased(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Hold(lctx, Blob(base.Layers[0].Digest), Snapshot(chain)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Delete(ctx, "base", users{}.opts(false)); err != nil {
		t.Fatal(err)
	}
	if s := f.snapshots(t); !slices.Equal(s, []string{chain}) {
		t.Fatalf("snapshots after rmi of the held base: %v", s)
	}
	img, err := f.s.Create(lctx, configOf(base.Layers...), base.Layers, CreateOptions{Ref: "docker.io/library/reuse:latest"})
	if err != nil {
		t.Fatal(err)
	}
	release()
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if s := f.snapshots(t); !slices.Equal(s, []string{f.s.RootFSParent(img)}) {
		t.Errorf("snapshots: %v", s)
	}

	// Not held: the layers go with the rmi and Create says so.
	if _, err := f.s.Delete(ctx, "reuse", users{}.opts(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Create(ctx, configOf(img.Layers...), img.Layers, CreateOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("create on deleted layers: %v, want NotFound", err)
	}
	if imgs, _ := f.s.List(ctx); len(imgs) != 0 {
		t.Errorf("images: %d", len(imgs))
	}
}

// A lease is a record: it is listed with what it holds, an expired one
// holds nothing and GC removes it, and at the next start the leases of the
// engine that died are removed and what they held collected, while a lease
// with an expiry still ahead survives with its objects.
func TestLeaseRecordsExpiryAndRestart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	addLayer := func(ctx context.Context, body string) Layer {
		t.Helper()
		l, err := f.s.AddLayer(ctx, "", bytesReader(smallTar(t, body)))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	short, err := f.s.CreateLease(ctx, LeaseOptions{Expire: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	long, err := f.s.CreateLease(ctx, LeaseOptions{Expire: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	bound, err := f.s.CreateLease(ctx, LeaseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ls := addLayer(WithLease(ctx, short.ID), "short")
	ll := addLayer(WithLease(ctx, long.ID), "long")
	lb := addLayer(WithLease(ctx, bound.ID), "bound")

	got := f.leases(t)
	if len(got) != 3 {
		t.Fatalf("leases: %+v", got)
	}
	for _, l := range got {
		if l.ID == long.ID {
			want := []Resource{Blob(ll.Digest), Snapshot(ll.DiffID.String())}
			if !slices.Equal(l.Resources, want) || l.Expires.IsZero() {
				t.Errorf("long lease: %+v, want resources %v", l, want)
			}
		}
	}

	time.Sleep(300 * time.Millisecond)
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cs.Info(ctx, ls.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("blob of the expired lease: %v", err)
	}
	for _, l := range []Layer{ll, lb} {
		if _, err := f.cs.Info(ctx, l.Digest); err != nil {
			t.Errorf("blob of a live lease: %v", err)
		}
	}
	if got := f.leases(t); len(got) != 2 {
		t.Errorf("leases after the expiry: %+v", got)
	}

	// The engine dies with both leases; it starts again.
	f.db.Close()
	f.open(t)
	got = f.leases(t)
	if len(got) != 1 || got[0].ID != long.ID {
		t.Errorf("leases after restart: %+v, want only the one with an expiry ahead", got)
	}
	if _, err := f.cs.Info(ctx, lb.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("blob of the dead engine's lease: %v", err)
	}
	if s := f.snapshots(t); !slices.Equal(s, []string{ll.DiffID.String()}) {
		t.Errorf("snapshots after restart: %v", s)
	}
	if err := f.s.DeleteLease(ctx, long.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.s.GC(ctx); err != nil {
		t.Fatal(err)
	}
	if n, s := f.blobs(t), f.snapshots(t); n != 0 || len(s) != 0 {
		t.Errorf("after the last lease: %d blobs, snapshots %v", n, s)
	}
	if err := f.s.Hold(WithLease(ctx, long.ID), Blob(digest.FromString("x"))); !errdefs.IsNotFound(err) {
		t.Errorf("hold in a deleted lease: %v", err)
	}
}

// A build's intermediate images are held by its lease: deleting the image
// built on them does not prune them while the build runs.
func TestLeasedParentNotPruned(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lctx, release, err := f.s.Leased(ctx)
	if err != nil {
		t.Fatal(err)
	}
	l, err := f.s.AddLayer(lctx, "", bytesReader(smallTar(t, "step")))
	if err != nil {
		t.Fatal(err)
	}
	mid, err := f.s.Create(lctx, configOf(l), []Layer{l}, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	top := configOf(l)
	top.Config.Cmd = []string{"sh"}
	if _, err := f.s.Create(ctx, top, []Layer{l}, CreateOptions{Ref: "docker.io/library/top:latest", Parent: mid.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Delete(ctx, "top", users{}.opts(false)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.Get(ctx, mid.ID); err != nil {
		t.Errorf("leased parent pruned: %v", err)
	}
	leased, err := f.s.LeasedImages(ctx)
	if err != nil || !leased[mid.ID] {
		t.Errorf("leased images %v (%v), want %s", leased, err, mid.ID)
	}
	release()
	if leased, _ := f.s.LeasedImages(ctx); len(leased) != 0 {
		t.Errorf("leased images after release: %v", leased)
	}
}

// A lease without an expiry is written down with its first object: one
// that held nothing (a build of cached steps) leaves no record and needs no
// transaction to end.
func TestLeaseRecordedWithFirstObject(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	lctx, release, err := f.s.Leased(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ls := f.leases(t); len(ls) != 0 {
		t.Errorf("lease recorded before it held anything: %+v", ls)
	}
	d := digest.FromString("blob")
	if err := f.s.Hold(lctx, Blob(d)); err != nil {
		t.Fatal(err)
	}
	ls := f.leases(t)
	if len(ls) != 1 || ls[0].ID != LeaseFromContext(lctx) || !slices.Equal(ls[0].Resources, []Resource{Blob(d)}) || ls[0].Created.IsZero() {
		t.Errorf("leases after the first hold: %+v", ls)
	}
	release()
	if ls := f.leases(t); len(ls) != 0 {
		t.Errorf("leases after release: %+v", ls)
	}
	_, release, err = f.s.Leased(ctx)
	if err != nil {
		t.Fatal(err)
	}
	release()
	if ls := f.leases(t); len(ls) != 0 {
		t.Errorf("an empty lease left %+v", ls)
	}
}
