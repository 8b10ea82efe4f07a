package image

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

type fixture struct {
	root string
	db   *meta.DB
	cs   *content.Store
	sn   *snapshot.Snapshotter
	s    *Store
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	root := t.TempDir()
	f := &fixture{root: root}
	f.open(t)
	return f
}

// open (re)opens every store on f.root, as a daemon start does.
func (f *fixture) open(t *testing.T) {
	t.Helper()
	var err error
	if f.db, err = meta.Open(filepath.Join(f.root, "meta.db")); err != nil {
		t.Fatal(err)
	}
	db := f.db
	t.Cleanup(func() { db.Close() })
	if f.cs, err = content.New(filepath.Join(f.root, "content")); err != nil {
		t.Fatal(err)
	}
	if f.sn, err = snapshot.New(filepath.Join(f.root, "snapshots"), f.db); err != nil {
		t.Fatal(err)
	}
	if f.s, err = NewStore(f.db, f.cs, f.sn); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) blobs(t *testing.T) int {
	t.Helper()
	n := 0
	if err := f.cs.Walk(context.Background(), func(content.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func (f *fixture) snapshots(t *testing.T) []string {
	t.Helper()
	var keys []string
	f.sn.Walk(context.Background(), func(i snapshot.Info) error { keys = append(keys, i.Key); return nil })
	return keys
}

var applets = []string{"sh", "echo", "cat", "ls", "sleep", "id", "true", "false", "env", "hostname"}

// busyboxTar is a root filesystem made of /bin/busybox, its applets as
// symlinks, and /etc/passwd and /etc/group.
func busyboxTar(t *testing.T) []byte {
	t.Helper()
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatalf("no /bin/busybox (%v): run hack/deps.sh (Debian package busybox-static)", err)
	}
	mt := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = mt
		if h.Mode == 0 {
			h.Mode = 0o755
		}
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write(body)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "bin/"}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox"}, bb)
	for _, a := range applets {
		add(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777}, nil)
	}
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "etc/"}, nil)
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/passwd", Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"))
	add(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/group", Mode: 0o644}, []byte("root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"))
	add(&tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777}, nil)
	tw.Close()
	return buf.Bytes()
}

// busyboxSize is what Docker reports for busyboxTar: its regular files.
func busyboxSize(t *testing.T) int64 {
	st, err := os.Stat("/bin/busybox")
	if err != nil {
		t.Fatalf("no /bin/busybox (%v): run hack/deps.sh (Debian package busybox-static)", err)
	}
	return st.Size() + int64(len("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")+len("root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n"))
}

func gzipped(b []byte) []byte {
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

func (f *fixture) mustImport(t *testing.T, data []byte, ref string) *Image {
	t.Helper()
	img, err := f.s.Import(context.Background(), bytes.NewReader(data), ImportOptions{Ref: ref})
	if err != nil {
		t.Fatalf("import %s: %v", ref, err)
	}
	return img
}

// smallTar is a distinct one-file root filesystem.
func smallTar(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "file", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1e9, 0)})
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }
