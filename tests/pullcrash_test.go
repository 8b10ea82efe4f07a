package tests

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/moby/client"
)

// A kill -9 of the engine in the middle of a pull leaves no image (or a
// whole one), the next pull works, and removing the image gives the disk
// back: no blobs and no layer snapshots remain.
func TestKillDuringPull(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, "", "")
	ref := reg.host + "/e2e/big:v1"
	// Eight layers of incompressible data, 12 MiB each.
	img, err := random.Image(12<<20, 8)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := d.cli.ImagePull(ctx, ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Kill the engine as soon as the first layer is done.
	dec := json.NewDecoder(resp)
	for {
		var m struct{ Status string }
		if err := dec.Decode(&m); err != nil {
			if err == io.EOF {
				t.Fatal("pull finished before any layer completed")
			}
			t.Fatal(err)
		}
		if strings.Contains(m.Status, "complete") || strings.Contains(m.Status, "Download") {
			break
		}
	}
	d.kill9()
	resp.Close()
	d.start()

	data := filepath.Join(d.root, "data")
	if out := d.must("images", "-q"); out != "" {
		// The pull may have finished just before the kill: then it is whole.
		if n := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", ref); n != "8\n" {
			t.Errorf("image after the killed pull has %s layers", n)
		}
	}
	// The next pull completes and the image is usable.
	d.must("pull", ref)
	if out := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", ref); out != "8\n" {
		t.Errorf("layers after the second pull: %q", out)
	}
	d.must("rmi", ref)
	if n := countEntries(t, filepath.Join(data, "content", "blobs", "sha256")); n != 0 {
		t.Errorf("%d blobs left after rmi", n)
	}
	ents, _ := os.ReadDir(filepath.Join(data, "snapshots"))
	for _, e := range ents {
		if e.Name() != "empty" {
			t.Errorf("snapshot %s left after rmi", e.Name())
		}
	}
}
