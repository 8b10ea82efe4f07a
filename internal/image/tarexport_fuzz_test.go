package image

import (
	"bytes"
	"context"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/image-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

var specsV2 = specs.Versioned{SchemaVersion: 2}

func hostArch() string { return runtime.GOARCH }

// FuzzPlanLoad feeds manifest.json and index.json contents to the load
// planner: it must never panic, and every file it plans to read must be a
// clean path inside the archive.
func FuzzPlanLoad(f *testing.F) {
	f.Add([]byte(`[{"Config":"a.json","RepoTags":["busybox:latest"],"Layers":["l/layer.tar"]}]`), []byte(nil), []byte(nil))
	f.Add([]byte(`[{"Config":"../a.json","Layers":["/etc/passwd","x/../../y"]}]`), []byte(nil), []byte(nil))
	f.Add([]byte(nil), []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`","size":2,"annotations":{"io.containerd.image.name":"docker.io/library/x:1"}}]}`),
		[]byte(`{"schemaVersion":2,"config":{"digest":"sha256:`+strings.Repeat("b", 64)+`"},"layers":[{"digest":"sha256:`+strings.Repeat("c", 64)+`"}]}`))
	f.Add([]byte(nil), []byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`"}]}`),
		[]byte(`{"manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:`+strings.Repeat("a", 64)+`"}]}`))
	f.Fuzz(func(t *testing.T, manifest, index, blob []byte) {
		mem := map[string][]byte{}
		if manifest != nil {
			mem["manifest.json"] = manifest
		}
		if index != nil {
			mem["index.json"] = index
		}
		// The one blob answers for every digest the index names.
		has := func(string) bool { return true }
		for _, h := range []string{"a", "b", "c"} {
			mem["blobs/sha256/"+strings.Repeat(h, 64)] = blob
		}
		plans, err := planLoad(mem, has)
		if err != nil {
			return
		}
		for _, p := range plans {
			for _, name := range append([]string{p.config}, p.layers...) {
				if c, ok := cleanArchivePath(name); !ok || c != name {
					t.Fatalf("planned to read %q", name)
				}
			}
			if p.layerDigests != nil && len(p.layerDigests) != len(p.layers) {
				t.Fatalf("layer digests and layers disagree")
			}
		}
	})
}

// FuzzLoad feeds whole archives to Load: whatever the bytes, it must not
// panic, and an archive it refuses must leave no blob or snapshot behind.
func FuzzLoad(f *testing.F) {
	t := &testing.T{}
	small := smallTar(t, "seed")
	legacy, _ := legacyArchive(t, [][]byte{small, small}, "seed:v1")
	oci, _ := ociArchive(t, small, "example.com/seed:1")
	f.Add(legacy)
	f.Add(oci)
	f.Add([]byte{})
	fx := &fixture{root: f.TempDir()}
	var err error
	if fx.db, err = meta.Open(filepath.Join(fx.root, "meta.db")); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { fx.db.Close() })
	if fx.cs, err = content.New(filepath.Join(fx.root, "content")); err != nil {
		f.Fatal(err)
	}
	if fx.sn, err = snapshot.New(filepath.Join(fx.root, "snapshots"), fx.db); err != nil {
		f.Fatal(err)
	}
	if fx.s, err = NewStore(fx.db, fx.cs, fx.sn); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, ar []byte) {
		ctx := context.Background()
		if _, err := fx.s.Load(ctx, bytes.NewReader(ar)); err != nil {
			if n := fx.blobs(t); n != 0 {
				t.Fatalf("refused archive left %d blobs: %v", n, err)
			}
			return
		}
		// Start the next input from an empty store.
		imgs, _ := fx.s.List(ctx)
		for _, img := range imgs {
			fx.s.Delete(ctx, img.ID, DeleteOptions{Force: true})
		}
	})
}
