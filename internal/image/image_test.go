package image

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestParseReference(t *testing.T) {
	const d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		in, want, familiar string
		err                string
	}{
		{in: "busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "busybox:1.36", want: "docker.io/library/busybox:1.36", familiar: "busybox:1.36"},
		{in: "library/busybox", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "docker.io/library/busybox:latest", want: "docker.io/library/busybox:latest", familiar: "busybox:latest"},
		{in: "me/app", want: "docker.io/me/app:latest", familiar: "me/app:latest"},
		{in: "localhost:5000/app:v1", want: "localhost:5000/app:v1", familiar: "localhost:5000/app:v1"},
		{in: "busybox@" + d, want: "docker.io/library/busybox@" + d, familiar: "busybox@" + d},
		{in: "busybox:1@" + d, want: "docker.io/library/busybox@" + d, familiar: "busybox@" + d},
		{in: "Busybox", err: "invalid reference format: repository name (library/Busybox) must be lowercase"},
		{in: "busybox:", err: "invalid reference format"},
		{in: ":tag", err: "invalid reference format"},
		{in: "a b", err: "invalid reference format"},
		{in: strings.Repeat("ab", 32), err: "invalid reference format"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseReference(tc.in)
			if tc.err != "" {
				if !errdefs.IsInvalid(err) || !strings.HasPrefix(err.Error(), tc.err) {
					t.Fatalf("ParseReference(%q) = %v, %v; want Invalid %q", tc.in, got, err, tc.err)
				}
				return
			}
			if err != nil || got.String() != tc.want {
				t.Fatalf("ParseReference(%q) = %v, %v; want %s", tc.in, got, err, tc.want)
			}
			if f := Familiar(got.String()); f != tc.familiar {
				t.Fatalf("Familiar = %q, want %q", f, tc.familiar)
			}
		})
	}
}

func TestImportBusybox(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := busyboxTar(t)
	img := f.mustImport(t, data, "busybox")

	// The id is the digest of the stored config.
	cfgBlob, err := f.cs.ReadAll(ctx, digest.Digest(img.ID))
	if err != nil {
		t.Fatalf("config blob: %v", err)
	}
	if digest.FromBytes(cfgBlob).String() != img.ID {
		t.Fatal("image id is not the config digest")
	}
	c := img.Config
	if c.OS != "linux" || c.Architecture != runtime.GOARCH || c.RootFS.Type != "layers" {
		t.Errorf("config platform/rootfs: %s/%s %s", c.OS, c.Architecture, c.RootFS.Type)
	}
	if len(c.History) != 1 || c.History[0].Comment != "Imported from -" || c.Created == nil || !c.Created.Equal(img.Created) {
		t.Errorf("history %+v created %v", c.History, c.Created)
	}
	// A plain tar is stored as is: layer digest == diff id == its sha256.
	want := digest.FromBytes(data)
	if len(img.Layers) != 1 || img.Layers[0].Digest != want || img.DiffIDs[0] != want || c.RootFS.DiffIDs[0] != want {
		t.Fatalf("layers %+v, want %s", img.Layers, want)
	}
	if img.Layers[0].MediaType != ocispec.MediaTypeImageLayer {
		t.Errorf("media type %s", img.Layers[0].MediaType)
	}
	if img.Size != busyboxSize(t) || img.LayerSizes[0] != img.Size {
		t.Errorf("size %d (layers %v), want %d", img.Size, img.LayerSizes, busyboxSize(t))
	}
	if !slices.Equal(img.RepoTags, []string{"busybox:latest"}) || len(img.RepoDigests) != 0 {
		t.Errorf("tags %v digests %v", img.RepoTags, img.RepoDigests)
	}

	// The manifest is an OCI manifest naming the config and the layer.
	var m ocispec.Manifest
	mb, err := f.cs.ReadAll(ctx, img.ManifestDigest)
	if err != nil || json.Unmarshal(mb, &m) != nil {
		t.Fatalf("manifest: %v", err)
	}
	if m.MediaType != ocispec.MediaTypeImageManifest || m.Config.Digest.String() != img.ID || len(m.Layers) != 1 || m.Layers[0].Digest != want || m.Layers[0].Size != int64(len(data)) {
		t.Errorf("manifest %+v", m)
	}

	// The layer is unpacked in a committed snapshot keyed by its chain id.
	key := f.s.RootFSParent(img)
	if key != want.String() {
		t.Fatalf("RootFSParent = %s, want %s", key, want)
	}
	mounts, err := f.sn.View(ctx, "check", key)
	if err != nil {
		t.Fatal(err)
	}
	layerDir := mounts[0].Source // a one-layer view is a bind mount of the layer
	if target, _ := os.Readlink(filepath.Join(layerDir, "bin", "sh")); target != "busybox" {
		t.Errorf("bin/sh -> %q", target)
	}
	if st, err := os.Stat(filepath.Join(layerDir, "bin", "busybox")); err != nil || st.Mode().Perm() != 0o755 {
		t.Errorf("bin/busybox: %v", err)
	}
	if st, err := os.Stat(filepath.Join(layerDir, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp: %v", err)
	}
	f.sn.Remove(ctx, "check")

	// A container can be prepared on it.
	if _, err := f.sn.Prepare(ctx, "container-x", f.s.RootFSParent(img)); err != nil {
		t.Fatal(err)
	}
	f.sn.Remove(ctx, "container-x")
	// No temporary snapshot is left.
	if got := f.snapshots(t); !slices.Equal(got, []string{key}) {
		t.Errorf("snapshots %v", got)
	}
}

func TestImportSameContentTwice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	data := busyboxTar(t)
	a := f.mustImport(t, data, "a")
	b := f.mustImport(t, data, "b")
	if a.ID == b.ID {
		t.Error("two imports got one image id (created time should differ)")
	}
	if a.Layers[0] != b.Layers[0] {
		t.Errorf("same content, different layers: %+v %+v", a.Layers[0], b.Layers[0])
	}
	// gzip and a streaming reader: same diff id, the blob is the gzip.
	gz := gzipped(data)
	pr, pw := io.Pipe()
	go func() {
		for b := gz; len(b) > 0; b = b[min(len(b), 4096):] {
			pw.Write(b[:min(len(b), 4096)])
		}
		pw.Close()
	}()
	c, err := f.s.Import(ctx, pr, ImportOptions{Ref: "c:gz", Message: "from a pipe"})
	if err != nil {
		t.Fatal(err)
	}
	if c.DiffIDs[0] != a.DiffIDs[0] || c.Layers[0].Digest != digest.FromBytes(gz) || c.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("gzip layer %+v, want diff id %s", c.Layers[0], a.DiffIDs[0])
	}
	if c.Size != a.Size || c.Config.History[0].Comment != "from a pipe" {
		t.Errorf("gzip import: size %d comment %q", c.Size, c.Config.History[0].Comment)
	}
	// One snapshot serves all three.
	if got := f.snapshots(t); len(got) != 1 {
		t.Errorf("snapshots %v", got)
	}
}

func TestImportErrorsLeaveNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	tests := []struct {
		name string
		data []byte
		opts ImportOptions
		kind errdefs.Kind
		msg  string
	}{
		{"bad ref", busyboxTar(t), ImportOptions{Ref: "Bad"}, errdefs.KindInvalid, "invalid reference format"},
		{"digest ref", busyboxTar(t), ImportOptions{Ref: "x@sha256:" + strings.Repeat("a", 64)}, errdefs.KindInvalid, "digest reference"},
		{"bad change", busyboxTar(t), ImportOptions{Changes: []string{"FROM busybox"}}, errdefs.KindInvalid, "dockerfile parse error"},
		{"bad platform", busyboxTar(t), ImportOptions{Platform: "windows/amd64"}, errdefs.KindInvalid, "platform"},
		{"escaping tar", smallTarNamed(t, "../x"), ImportOptions{}, errdefs.KindInvalid, "escapes"},
		{"truncated", busyboxTar(t)[:5000], ImportOptions{}, errdefs.KindInvalid, "read layer archive"},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 0, 0}, ImportOptions{}, errdefs.KindInvalid, "unsupported compression"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.Import(ctx, bytes.NewReader(tc.data), tc.opts)
			if errdefs.KindOf(err) != tc.kind || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("Import: %v (kind %v), want %v %q", err, errdefs.KindOf(err), tc.kind, tc.msg)
			}
		})
	}
	if n := f.blobs(t); n != 0 {
		t.Errorf("%d blobs left", n)
	}
	if got := f.snapshots(t); len(got) != 0 {
		t.Errorf("snapshots left: %v", got)
	}
	if imgs, _ := f.s.List(ctx); len(imgs) != 0 {
		t.Errorf("images left: %d", len(imgs))
	}
}

func smallTarNamed(t *testing.T, name string) []byte {
	b := smallTar(t, "x")
	copy(b, append([]byte(name), make([]byte, 100-len(name))...))
	// Fix the header checksum after renaming.
	sum := 0
	for i, c := range b[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		sum += int(c)
	}
	copy(b[148:156], []byte(strings.Repeat("0", 6-len(octal(sum)))+octal(sum)+"\x00 "))
	return b
}

func octal(n int) string {
	s := ""
	for ; n > 0; n /= 8 {
		s = string(rune('0'+n%8)) + s
	}
	return s
}

func TestGetByEveryForm(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	img := f.mustImport(t, busyboxTar(t), "busybox:1.36")
	other := f.mustImport(t, smallTar(t, "other"), "other")
	hex := strings.TrimPrefix(img.ID, "sha256:")
	// A prefix unique to img.
	n := 1
	for strings.HasPrefix(strings.TrimPrefix(other.ID, "sha256:"), hex[:n]) {
		n++
	}
	manifest := "docker.io/library/busybox@" + img.ManifestDigest.String()
	f.db.Update(func(tx *bolt.Tx) error { return setRef(tx, manifest, img.ID) })

	for _, ref := range []string{
		"busybox:1.36", "docker.io/library/busybox:1.36", "library/busybox:1.36",
		img.ID, hex, hex[:12], hex[:n], "sha256:" + hex[:12],
		"busybox@" + img.ManifestDigest.String(),
	} {
		got, err := f.s.Get(ctx, ref)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", ref, got, err)
		}
	}
	if got, _ := f.s.Get(ctx, img.ID); !slices.Equal(got.RepoDigests, []string{"busybox@" + img.ManifestDigest.String()}) {
		t.Errorf("RepoDigests %v", got.RepoDigests)
	}

	notFound := []struct{ ref, msg string }{
		{"busybox", "No such image: busybox:latest"},
		{"nope:1", "No such image: nope:1"},
		{"sha256:" + strings.Repeat("0", 64), "No such image: sha256:" + strings.Repeat("0", 64)},
		{strings.Repeat("f", 64), "No such image: " + strings.Repeat("f", 64)},
	}
	for _, tc := range notFound {
		_, err := f.s.Get(ctx, tc.ref)
		if !errdefs.IsNotFound(err) || err.Error() != tc.msg {
			t.Errorf("Get(%q): %v, want NotFound %q", tc.ref, err, tc.msg)
		}
	}
	for _, ref := range []string{"Busybox", "", "sha256:xyz", "a b"} {
		if _, err := f.s.Get(ctx, ref); !errdefs.IsInvalid(err) {
			t.Errorf("Get(%q): %v, want Invalid", ref, err)
		}
	}
}

func TestTagUntagAndList(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	a := f.mustImport(t, smallTar(t, "a"), "app:1")
	b := f.mustImport(t, smallTar(t, "b"), "")
	if len(b.RepoTags) != 0 {
		t.Fatalf("untagged import has tags %v", b.RepoTags)
	}
	if err := f.s.Tag(ctx, "app:1", "app:2"); err != nil {
		t.Fatal(err)
	}
	if err := f.s.Tag(ctx, b.ID, "registry.local:5000/team/app"); err != nil {
		t.Fatal(err)
	}
	// Moving a tag takes it from the image that had it.
	if err := f.s.Tag(ctx, b.ID, "app:1"); err != nil {
		t.Fatal(err)
	}
	for ref, want := range map[string]string{"app:1": b.ID, "app:2": a.ID, "registry.local:5000/team/app:latest": b.ID} {
		if img, err := f.s.Get(ctx, ref); err != nil || img.ID != want {
			t.Errorf("%s -> %v %v, want %s", ref, img, err, want)
		}
	}
	imgs, err := f.s.List(ctx)
	if err != nil || len(imgs) != 2 {
		t.Fatalf("List: %d %v", len(imgs), err)
	}
	if imgs[0].ID != b.ID || !slices.Equal(imgs[0].RepoTags, []string{"app:1", "registry.local:5000/team/app:latest"}) || !slices.Equal(imgs[1].RepoTags, []string{"app:2"}) {
		t.Errorf("List (newest first): %v %v / %v %v", imgs[0].ID, imgs[0].RepoTags, imgs[1].ID, imgs[1].RepoTags)
	}
	if imgs[0].LastTagTime.IsZero() {
		t.Error("LastTagTime not set")
	}

	for _, tc := range []struct{ ref, msg string }{
		{"x@sha256:" + strings.Repeat("a", 64), "refusing to create a tag with a digest reference"},
		{"sha256:abc", "refusing to create an ambiguous tag using digest algorithm as name"},
		{"UP", "invalid reference format"},
	} {
		if err := f.s.Tag(ctx, a.ID, tc.ref); !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Tag %q: %v", tc.ref, err)
		}
	}
	if err := f.s.Tag(ctx, "missing", "x"); !errdefs.IsNotFound(err) {
		t.Errorf("Tag of a missing image: %v", err)
	}

	if id, err := f.s.Untag(ctx, "app:2"); err != nil || id != a.ID {
		t.Fatalf("Untag = %s, %v", id, err)
	}
	if _, err := f.s.Untag(ctx, "app:2"); !errdefs.IsNotFound(err) || err.Error() != "No such image: app:2" {
		t.Fatalf("second Untag: %v", err)
	}
	// Untagged images stay (dangling).
	if img, err := f.s.Get(ctx, a.ID); err != nil || len(img.RepoTags) != 0 {
		t.Fatalf("dangling image: %v %v", img, err)
	}
}

func TestChainIDs(t *testing.T) {
	img := &Image{DiffIDs: []digest.Digest{digest.FromString("a"), digest.FromString("b")}}
	ids := ChainIDs(img)
	if ids[0] != img.DiffIDs[0] || ids[1] != identity.ChainID(img.DiffIDs) || img.DiffIDs[1] != digest.FromString("b") {
		t.Fatalf("ChainIDs %v (diff ids now %v)", ids, img.DiffIDs)
	}
	if (&Store{}).RootFSParent(&Image{}) != "" {
		t.Fatal("RootFSParent of an image without layers")
	}
}
