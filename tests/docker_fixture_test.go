package tests

import (
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/docker-20.10-save.tar.gz is what a real dockerd (Debian's
// docker.io 20.10.24) wrote for
//
//	docker import busybox.tar busybox:fixture       (hack/mkbusybox.sh)
//	DOCKER_BUILDKIT=0 docker build -t fixture/layered:v1 .   with
//	  FROM busybox:fixture
//	  LABEL org.skiff.fixture=docker-20.10
//	  RUN echo hello-from-docker > /hello && mkdir -p /data && echo x > /data/x
//	  RUN rm /bin/ls && rm -r /data
//	  ENV FIX=1
//	  CMD ["cat", "/hello"]
//	docker tag fixture/layered:v1 fixture/layered:alias
//	docker save fixture/layered:v1 fixture/layered:alias busybox:fixture
//
// (the pre-25 layout: <id>/layer.tar, <id>/json, manifest.json,
// repositories), gzipped. The ids below are the ones dockerd reported.
const (
	fixtureID     = "sha256:cb336ad2f2b5593b3e0bd00aff7cff03d50015fcb06a0ec27ca6cb13c3ce6a6c"
	fixtureLayers = `["sha256:2c47c93bb57097ed6de7cfb2e11fa5ba4d69cd7ea90e99fb4e9ae772513b4a4e","sha256:cd7122a800170dd06e69ee96a8e686b74f3a4d20359c3042f215e2ed0452059e","sha256:c5d901b132b209643f6acdaf8560b410a45f4539f7bbd87d4721266bc1940619"]`
)

func dockerSaveFixture(t *testing.T) string {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", "docker-20.10-save.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "docker-save.tar")
	w, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, zr); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out
}

// An archive written by a real `docker save` loads into skiff with the same
// image ids and layers, through our CLI and the docker CLI, and runs: the
// whiteouts of Docker's layers hide what they deleted.
func TestLoadRealDockerSaveArchive(t *testing.T) {
	archive := dockerSaveFixture(t)
	d := startDaemon(t)

	for _, load := range []func() (string, string, int){
		func() (string, string, int) { return d.skiff("load", "-i", archive) },
		func() (string, string, int) { return d.docker("load", "-i", archive) },
	} {
		out, errOut, code := load()
		if code != 0 {
			t.Fatalf("load: exit %d\n%s\n%s", code, out, errOut)
		}
		for _, want := range []string{"fixture/layered:v1", "fixture/layered:alias", "busybox:fixture"} {
			if !strings.Contains(out, "Loaded image: "+want) {
				t.Fatalf("load output lacks %q:\n%s", want, out)
			}
		}
		got := d.must("image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", "fixture/layered:v1")
		if want := fixtureID + " " + fixtureLayers + "\n"; got != want {
			t.Fatalf("loaded image:\n got %s\nwant %s", got, want)
		}
		if got := d.must("image", "inspect", "--format", "{{.Id}}", "fixture/layered:alias"); got != fixtureID+"\n" {
			t.Fatalf("alias: %s", got)
		}
		if out := d.must("run", "--rm", "fixture/layered:v1"); out != "hello-from-docker\n" {
			t.Fatalf("run (image CMD): %q", out)
		}
		out = d.must("run", "--rm", "fixture/layered:v1", "sh", "-c", `echo FIX=$FIX; test -e /bin/ls && echo ls-present; test -e /data && echo data-present; echo done`)
		if out != "FIX=1\ndone\n" {
			t.Fatalf("run (env and whiteouts): %q", out)
		}
		hist := d.must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "fixture/layered:v1")
		for _, want := range []string{`/bin/sh -c #(nop)  CMD ["cat" "/hello"]`, `/bin/sh -c rm /bin/ls && rm -r /data`, `/bin/sh -c #(nop)  ENV FIX=1`} {
			if !strings.Contains(hist, want) {
				t.Fatalf("history lacks %q:\n%s", want, hist)
			}
		}
		d.must("rmi", "fixture/layered:v1", "fixture/layered:alias", "busybox:fixture")
	}

	// And back out: skiff's save of those images loads into skiff again
	// with the same ids (the direction into dockerd was checked by hand with
	// docker.io 20.10: ARCHITECTURE.md says so).
	d.must("load", "-i", archive)
	saved := filepath.Join(t.TempDir(), "skiff-save.tar")
	d.must("save", "-o", saved, "fixture/layered:v1", "busybox:fixture")
	d.must("rmi", "fixture/layered:v1", "fixture/layered:alias", "busybox:fixture")
	d.must("load", "-i", saved)
	if got := d.must("image", "inspect", "--format", "{{.Id}}", "fixture/layered:v1"); got != fixtureID+"\n" {
		t.Fatalf("id after save and load: %s", got)
	}
}
