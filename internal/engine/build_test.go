package engine

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

// newStoreEngine is an engine with only its stores: enough for the build
// backend's image and layer methods.
func newStoreEngine(t *testing.T) *Engine {
	t.Helper()
	root := t.TempDir()
	db, err := meta.Open(filepath.Join(root, "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.New(filepath.Join(root, "snapshots"), db)
	if err != nil {
		t.Fatal(err)
	}
	is, err := image.NewStore(db, cs, sn)
	if err != nil {
		t.Fatal(err)
	}
	return &Engine{db: db, content: cs, snaps: sn, images: is, events: newEventLog(), reg: newRegistry()}
}

type tarEntry struct {
	name, body string
	typ        byte
}

func layerTar(t *testing.T, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: 0o644, ModTime: time.Unix(1, 0)}
		if e.typ == tar.TypeDir {
			h.Mode = 0o755
		}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(e.body))
	}
	tw.Close()
	return buf.Bytes()
}

// buildImage stores an image of the given layers, each on the previous.
func buildImage(t *testing.T, b *BuildBackend, layers ...[]byte) *image.Image {
	t.Helper()
	ctx, release, err := b.Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	var ls []image.Layer
	var diffIDs []digest.Digest
	parent := ""
	var img *image.Image
	for _, data := range layers {
		l, err := b.AddLayer(ctx, parent, bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		diffIDs = append(diffIDs, l.DiffID)
		now := time.Now().UTC()
		cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{
			Created: &now, Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
			RootFS: ocispec.RootFS{Type: "layers", DiffIDs: slices.Clone(diffIDs)},
		}}
		img, err = b.CreateImage(ctx, cfg, slices.Clone(ls), parent)
		if err != nil {
			t.Fatal(err)
		}
		parent = img.ID
	}
	return img
}

func inMountinfo(t *testing.T, s string) bool {
	t.Helper()
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(mi), s)
}

func TestImageRootFS(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts need root")
	}
	e := newStoreEngine(t)
	b := e.BuildBackend()
	ctx := context.Background()
	one := buildImage(t, b, layerTar(t, tarEntry{"etc/", "", tar.TypeDir}, tarEntry{"etc/a", "A1", tar.TypeReg}))
	two := buildImage(t, b,
		layerTar(t, tarEntry{"etc/", "", tar.TypeDir}, tarEntry{"etc/a", "A1", tar.TypeReg}, tarEntry{"etc/gone", "x", tar.TypeReg}),
		layerTar(t, tarEntry{"etc/a", "A2", tar.TypeReg}, tarEntry{"etc/.wh.gone", "", tar.TypeReg}, tarEntry{"b", "B", tar.TypeReg}))

	cases := []struct {
		name  string
		id    string
		files map[string]string // path -> content; "" = must not exist
	}{
		{"scratch", "", map[string]string{"etc/a": ""}},
		{"one layer", one.ID, map[string]string{"etc/a": "A1"}},
		{"two layers", two.ID, map[string]string{"etc/a": "A2", "b": "B", "etc/gone": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root, release, err := b.ImageRootFS(ctx, tc.id)
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tc.files {
				got, err := os.ReadFile(filepath.Join(root, p))
				if want == "" {
					if !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%s: want absent, got %q, %v", p, got, err)
					}
					continue
				}
				if err != nil || string(got) != want {
					t.Errorf("%s: got %q, %v; want %q", p, got, err, want)
				}
			}
			// Read-only, and mounted nowhere the host sees.
			if err := os.WriteFile(filepath.Join(root, "new"), nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("write into the view: %v, want EROFS", err)
			}
			// Only this test's data root: other engines on the host
			// (parallel packages, a containerd) mount their own snapshots.
			if inMountinfo(t, "/TestImageRootFS") {
				t.Errorf("a snapshot is mounted on the host")
			}
			release()
		})
	}
	// The views used to find the lower directories are gone.
	e.snaps.Walk(ctx, func(i snapshot.Info) error {
		if strings.HasPrefix(i.Key, rootfsKeyPrefix) {
			t.Errorf("view %s left behind", i.Key)
		}
		return nil
	})
}

func TestDiffWithoutMountPoints(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, upper string)
		want  []string
	}{
		{"mount points only", func(t *testing.T, u string) {
			mkdirs(t, u, "etc", "proc", "dev")
			touch(t, u, "etc/hosts", "")
			touch(t, u, "etc/resolv.conf", "")
			touch(t, u, "etc/hostname", "")
		}, nil},
		{"a real change in etc keeps etc", func(t *testing.T, u string) {
			mkdirs(t, u, "etc")
			touch(t, u, "etc/hosts", "")
			touch(t, u, "etc/motd", "hi")
		}, []string{"etc/", "etc/motd"}},
		{"other changes", func(t *testing.T, u string) {
			mkdirs(t, u, "etc", "usr/bin")
			touch(t, u, "etc/hostname", "")
			touch(t, u, "built", "x")
			touch(t, u, "usr/bin/tool", "y")
		}, []string{"built", "usr/", "usr/bin/", "usr/bin/tool"}},
		{"nested etc is not a mount point", func(t *testing.T, u string) {
			mkdirs(t, u, "srv/etc")
			touch(t, u, "srv/etc/hosts", "")
		}, []string{"srv/", "srv/etc/", "srv/etc/hosts"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upper := t.TempDir()
			tc.setup(t, upper)
			var buf bytes.Buffer
			if err := diffWithoutMountPoints(context.Background(), upper, &buf); err != nil {
				t.Fatal(err)
			}
			var got []string
			tr := tar.NewReader(&buf)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, h.Name)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("entries %q, want %q", got, tc.want)
			}
		})
	}
}

func mkdirs(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func touch(t *testing.T, root, name, body string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A build's lease holds the layers and images it makes until the build
// ends: a GC or an image prune in between takes none of them and waits for
// nothing; after the lease, GC takes what no image names.
func TestBuildLease(t *testing.T) {
	e := newStoreEngine(t)
	b := e.BuildBackend()
	ctx, release, err := b.Lease(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// What Run does after the container exited 0.
	l, err := b.AddLayer(ctx, "", bytes.NewReader(layerTar(t, tarEntry{"built", "x", tar.TypeReg})))
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := b.AddLayer(ctx, "", bytes.NewReader(layerTar(t, tarEntry{"lost", "y", tar.TypeReg})))
	if err != nil {
		t.Fatal(err)
	}
	gcDone := make(chan error, 1)
	go func() { gcDone <- e.images.GC(context.Background()) }()
	select {
	case err := <-gcDone:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("GC waited for the build")
	}
	now := time.Now().UTC()
	cfg := dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &now, RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{l.DiffID}}}}
	img, err := b.CreateImage(ctx, cfg, []image.Layer{l}, "")
	if err != nil {
		t.Fatalf("create the image after a GC: %v", err)
	}
	// The untagged step image is leased: prune leaves it.
	rep, err := e.ImagesPrune(context.Background(), filters.Args{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.ImagesDeleted) != 0 {
		t.Errorf("prune during the build deleted %v", rep.ImagesDeleted)
	}
	release()
	if err := e.images.GC(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The image is whole; the layer no image names is gone.
	if _, err := e.snaps.Stat(ctx, e.images.RootFSParent(img)); err != nil {
		t.Errorf("layer snapshot: %v", err)
	}
	if _, err := e.content.Info(ctx, orphan.Digest); !errdefs.IsNotFound(err) {
		t.Errorf("unnamed layer blob after the build: %v", err)
	}
	if ls, err := e.images.Leases(ctx); err != nil || len(ls) != 0 {
		t.Errorf("leases after the build: %v %v", ls, err)
	}
	// Now it is dangling.
	if rep, err := e.ImagesPrune(context.Background(), filters.Args{}); err != nil || len(rep.ImagesDeleted) != 1 {
		t.Errorf("prune after the build: %v %v", rep.ImagesDeleted, err)
	}
}

func TestIntermediateImages(t *testing.T) {
	tagged := &image.Image{ID: "t", RepoTags: []string{"a:1"}, Parent: "mid"}
	mid := &image.Image{ID: "mid", Parent: "base"}
	base := &image.Image{ID: "base", RepoTags: []string{"busybox:latest"}}
	dangling := &image.Image{ID: "d", Parent: "mid"}
	parents := parentIDs([]*image.Image{tagged, mid, base, dangling})
	for _, tc := range []struct {
		img  *image.Image
		want bool
	}{{tagged, false}, {mid, true}, {base, false}, {dangling, false}} {
		if got := isIntermediate(tc.img, parents); got != tc.want {
			t.Errorf("isIntermediate(%s) = %v", tc.img.ID, got)
		}
	}
}
