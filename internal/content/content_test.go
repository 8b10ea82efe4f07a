package content

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	root := t.TempDir()
	s, err := New(root)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func countFiles(t *testing.T, dir string) int {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func TestPutOpenInfoDelete(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	data := bytes.Repeat([]byte("skiff "), 300000) // > one copy buffer
	want := digest.FromBytes(data)

	tests := []struct {
		name     string
		expected digest.Digest
	}{
		{"unverified", ""},
		{"verified", want},
		{"again (idempotent)", want},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			info, err := s.Put(ctx, bytes.NewReader(data), tc.expected)
			if err != nil {
				t.Fatal(err)
			}
			if info.Digest != want || info.Size != int64(len(data)) {
				t.Fatalf("Put = %+v, want %s/%d", info, want, len(data))
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "blobs", "sha256", want.Encoded())); err != nil {
		t.Fatalf("blob not at its documented path: %v", err)
	}
	if n := countFiles(t, filepath.Join(root, "ingest")); n != 0 {
		t.Fatalf("%d ingest files left", n)
	}

	b, err := s.Open(ctx, want)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(b)
	part := make([]byte, 5)
	b.ReadAt(part, 6)
	b.Close()
	if !bytes.Equal(got, data) || b.Size() != int64(len(data)) || string(part) != "skiff" {
		t.Fatal("Open returned different bytes")
	}

	info, err := s.Info(ctx, want)
	if err != nil || info.Size != int64(len(data)) {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != want {
		t.Fatalf("Walk saw %v", walked)
	}

	if err := s.Delete(ctx, want); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"Info":   func() error { _, err := s.Info(ctx, want); return err }(),
		"Open":   func() error { _, err := s.Open(ctx, want); return err }(),
		"Delete": s.Delete(ctx, want),
	} {
		if !errdefs.IsNotFound(err) {
			t.Errorf("%s after delete: %v, want NotFound", name, err)
		}
	}
}

func TestVerificationFailureStoresNothing(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	good := []byte("the real layer")
	bad := []byte("the real layeR")
	_, err := s.Put(ctx, bytes.NewReader(bad), digest.FromBytes(good))
	if !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "verification failed") {
		t.Fatalf("corrupt Put: %v", err)
	}
	if n := countFiles(t, filepath.Join(root, "blobs", "sha256")); n != 0 {
		t.Fatalf("%d blobs stored after failed verification", n)
	}
	if n := countFiles(t, filepath.Join(root, "ingest")); n != 0 {
		t.Fatalf("%d ingest files left after failed verification", n)
	}

	// Size mismatch.
	w, err := s.Writer(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(good)
	if _, err := w.Commit(); !errdefs.IsInvalid(err) {
		t.Fatalf("short blob committed: %v", err)
	}

	// A reader that fails half way leaves nothing.
	_, err = s.Put(ctx, io.MultiReader(bytes.NewReader(good), errReader{}), "")
	if err == nil {
		t.Fatal("Put of a failing reader succeeded")
	}
	if n := countFiles(t, filepath.Join(root, "blobs", "sha256")) + countFiles(t, filepath.Join(root, "ingest")); n != 0 {
		t.Fatalf("%d files left after a failed Put", n)
	}

	// Bad digests are refused up front.
	for _, d := range []digest.Digest{"sha256:xyz", "md5:d41d8cd98f00b204e9800998ecf8427e", "nonsense"} {
		if _, err := s.Put(ctx, bytes.NewReader(good), d); !errdefs.IsInvalid(err) {
			t.Errorf("Put with digest %q: %v", d, err)
		}
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("network went away") }

func TestReadAllDetectsCorruption(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	info, err := s.PutBytes(ctx, []byte(`{"config":true}`), "")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := s.ReadAll(ctx, info.Digest); err != nil || string(b) != `{"config":true}` {
		t.Fatalf("ReadAll = %q, %v", b, err)
	}
	p := filepath.Join(root, "blobs", "sha256", info.Digest.Encoded())
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, []byte(`{"config":fals}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadAll(ctx, info.Digest); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("ReadAll of a corrupted blob: %v", err)
	}
}

func TestCrashLeftoversRemovedOnOpen(t *testing.T) {
	ctx := context.Background()
	s, root := newStore(t)
	w, err := s.Writer(ctx, "", -1)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("half a layer"))
	// No Commit, no Close: the process "crashed".
	if n := countFiles(t, filepath.Join(root, "ingest")); n != 1 {
		t.Fatalf("want 1 ingest file, have %d", n)
	}
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	if n := countFiles(t, filepath.Join(root, "ingest")); n != 0 {
		t.Fatalf("%d ingest files survived reopen", n)
	}
	w.Close()
}

func TestPutHonoursContext(t *testing.T) {
	s, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Put(ctx, strings.NewReader("x"), ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v", err)
	}
}
