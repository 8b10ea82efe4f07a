package buildcontext

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

// noRacyWindow trusts hashes of files changed just now, so tests need not
// wait for their fixtures to age.
func noRacyWindow(t testing.TB) {
	old := racyWindow
	racyWindow = 0
	t.Cleanup(func() { racyWindow = old })
}

func checksum(t testing.TB, c *Context, srcs ...string) digest.Digest {
	t.Helper()
	d, err := c.Checksum(context.Background(), srcs)
	if err != nil {
		t.Fatalf("Checksum(%q): %v", srcs, err)
	}
	return d
}

func TestChecksum(t *testing.T) {
	noRacyWindow(t)
	base := []string{".dockerignore=**/*.log\n", "src/", "src/a.txt=A", "src/sub/b.txt=B", "src/l->a.txt", "top.txt=T"}
	tests := []struct {
		name    string
		change  func(t *testing.T, dir string)
		srcs    []string
		changed bool
	}{
		{name: "nothing", change: func(*testing.T, string) {}},
		{name: "mtime only", change: func(t *testing.T, dir string) {
			now := time.Now()
			must(t, os.Chtimes(filepath.Join(dir, "src/a.txt"), now, now))
			must(t, os.Chtimes(filepath.Join(dir, "src/sub"), now, now))
		}},
		{name: "owner only", change: func(t *testing.T, dir string) {
			must(t, os.Lchown(filepath.Join(dir, "src/a.txt"), 1234, 1234))
		}},
		{name: "excluded file added", change: func(t *testing.T, dir string) {
			mkfs(t, dir, "src/debug.log=noise")
		}},
		{name: "other source changed", srcs: []string{"src"}, change: func(t *testing.T, dir string) {
			mkfs(t, dir, "top.txt=changed")
		}},
		{name: "content", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "src/sub/b.txt"), []byte("b"), 0o644))
		}},
		{name: "content, same size and mtime", changed: true, change: func(t *testing.T, dir string) {
			p := filepath.Join(dir, "src/a.txt")
			must(t, os.WriteFile(p, []byte("Z"), 0o644))
			must(t, os.Chtimes(p, testTime, testTime))
		}},
		{name: "mode", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.Chmod(filepath.Join(dir, "src/a.txt"), 0o600))
		}},
		{name: "directory mode", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.Chmod(filepath.Join(dir, "src/sub"), 0o700))
		}},
		{name: "link target", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "src/l")))
			must(t, os.Symlink("sub", filepath.Join(dir, "src/l")))
		}},
		{name: "file added", changed: true, change: func(t *testing.T, dir string) {
			mkfs(t, dir, "src/new=")
		}},
		{name: "file renamed", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.Rename(filepath.Join(dir, "src/sub/b.txt"), filepath.Join(dir, "src/sub/c.txt")))
		}},
		{name: "file removed", changed: true, change: func(t *testing.T, dir string) {
			must(t, os.Remove(filepath.Join(dir, "top.txt")))
			mkfs(t, dir, "top.txt/") // a directory of the same name
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mkfs(t, dir, base...)
			srcs := tt.srcs
			if srcs == nil {
				srcs = []string{"src", "top.txt"}
			}
			hc, err := NewHashCache(nil)
			must(t, err)
			c, err := FromDir(dir, hc)
			must(t, err)
			defer c.Close()
			before := checksum(t, c, srcs...)
			if again := checksum(t, c, srcs...); again != before {
				t.Fatalf("not stable: %s then %s", before, again)
			}
			tt.change(t, dir)
			after := checksum(t, c, srcs...)
			if (after != before) != tt.changed {
				t.Errorf("changed = %v, want %v", after != before, tt.changed)
			}
		})
	}
}

func TestChecksumNames(t *testing.T) {
	noRacyWindow(t)
	c := newTestContext(t, "a/f=1", "b/f=1", "a2/f=1")
	// The same content under another source name copies to another place.
	if checksum(t, c, "a") == checksum(t, c, "b") {
		t.Error("sources a and b hash the same")
	}
	if checksum(t, c, "a", "b") == checksum(t, c, "b", "a") {
		t.Error("source order does not count")
	}
	_, err := c.Checksum(context.Background(), []string{"missing"})
	if !errdefs.IsNotFound(err) {
		t.Errorf("missing source: %v", err)
	}
}

func TestHashCacheNoRereads(t *testing.T) {
	noRacyWindow(t)
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta.db"))
	must(t, err)
	defer db.Close()
	dir := t.TempDir()
	var specs []string
	for i := range 50 {
		specs = append(specs, fmt.Sprintf("d%d/f%d=content %d", i%5, i, i))
	}
	mkfs(t, dir, specs...)

	hc, err := NewHashCache(db)
	must(t, err)
	c, err := FromDir(dir, hc)
	must(t, err)
	first := checksum(t, c, ".")
	if n := hc.reads.Load(); n != 50 {
		t.Errorf("first checksum read %d files, want 50", n)
	}
	if again := checksum(t, c, "."); again != first || hc.reads.Load() != 50 {
		t.Errorf("second checksum: %s (want %s), %d reads in all (want 50)", again, first, hc.reads.Load())
	}
	c.Close()

	// A new daemon: the cache comes back from bbolt, nothing is read.
	hc2, err := NewHashCache(db)
	must(t, err)
	c2, err := FromDir(dir, hc2)
	must(t, err)
	defer c2.Close()
	if got := checksum(t, c2, "."); got != first || hc2.reads.Load() != 0 {
		t.Errorf("after restart: %s (want %s), %d files read (want 0)", got, first, hc2.reads.Load())
	}
	// Touching one file reads that one only.
	p := filepath.Join(dir, "d1/f6")
	now := time.Now()
	must(t, os.Chtimes(p, now, now))
	if got := checksum(t, c2, "."); got != first || hc2.reads.Load() != 1 {
		t.Errorf("after touch: %s (want %s), %d files read (want 1)", got, first, hc2.reads.Load())
	}
}

// Clear (builder prune -a) forgets every hash, on disk too.
func TestHashCacheClear(t *testing.T) {
	noRacyWindow(t)
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta.db"))
	must(t, err)
	defer db.Close()
	dir := t.TempDir()
	mkfs(t, dir, "a=1", "b=2", "c/d=3")
	hc, err := NewHashCache(db)
	must(t, err)
	c, err := FromDir(dir, hc)
	must(t, err)
	defer c.Close()
	first := checksum(t, c, ".")
	must(t, hc.Clear())
	if got := checksum(t, c, "."); got != first || hc.reads.Load() != 6 {
		t.Errorf("after Clear: %s (want %s), %d reads in all (want 6: every file again)", got, first, hc.reads.Load())
	}
	must(t, hc.Clear())
	hc2, err := NewHashCache(db)
	must(t, err)
	c2, err := FromDir(dir, hc2)
	must(t, err)
	defer c2.Close()
	if got := checksum(t, c2, "."); got != first || hc2.reads.Load() != 3 {
		t.Errorf("a new cache after Clear: %s, %d reads (want 3: nothing left in bbolt)", got, hc2.reads.Load())
	}
}

func TestHashCacheRacy(t *testing.T) {
	old := racyWindow
	racyWindow = time.Hour // every file is "just changed"
	defer func() { racyWindow = old }()
	hc, err := NewHashCache(nil)
	must(t, err)
	dir := t.TempDir()
	mkfs(t, dir, "a=1", "b=2")
	c, err := FromDir(dir, hc)
	must(t, err)
	defer c.Close()
	checksum(t, c, ".")
	checksum(t, c, ".")
	if n := hc.reads.Load(); n != 4 {
		t.Errorf("%d reads, want 4: a hash of a file changed just now must not be kept", n)
	}
}

func TestHashCacheConcurrent(t *testing.T) {
	noRacyWindow(t)
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta.db"))
	must(t, err)
	defer db.Close()
	hc, err := NewHashCache(db)
	must(t, err)
	var dirs []string
	for i := range 4 {
		dir := t.TempDir()
		mkfs(t, dir, "x=1", "y/z=2", fmt.Sprintf("n=%d", i))
		dirs = append(dirs, dir)
	}
	var wg sync.WaitGroup
	sums := make([]digest.Digest, 16)
	errs := make([]error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := FromDir(dirs[i%4], hc)
			if err != nil {
				errs[i] = err
				return
			}
			defer c.Close()
			sums[i], errs[i] = c.Checksum(context.Background(), []string{"."})
		}()
	}
	wg.Wait()
	for i := range 16 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if sums[i] != sums[i%4] {
			t.Errorf("build %d: %s, want %s", i, sums[i], sums[i%4])
		}
	}
	if sums[0] == sums[1] {
		t.Error("different contexts hash the same")
	}
}

// benchTree makes n small files in a few directories under a fresh
// directory (on /dev/shm when there is one: this disk is slow to create
// files on after deletions).
func benchTree(b *testing.B, n int) string {
	b.Helper()
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "buildcontext-bench-")
	must(b, err)
	b.Cleanup(func() { os.RemoveAll(dir) })
	body := make([]byte, 4096)
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("d%02d/s%02d/f%05d", i%20, i%7, i))
		must(b, os.MkdirAll(filepath.Dir(p), 0o755))
		body[0] = byte(i)
		must(b, os.WriteFile(p, body, 0o644))
	}
	return dir
}

func BenchmarkChecksumCached(b *testing.B) {
	noRacyWindow(b)
	dir := benchTree(b, 4000)
	hc, err := NewHashCache(nil)
	must(b, err)
	c, err := FromDir(dir, hc)
	must(b, err)
	defer c.Close()
	checksum(b, c, ".")
	b.ResetTimer()
	for b.Loop() {
		checksum(b, c, ".")
	}
	if hc.reads.Load() != 4000 {
		b.Fatalf("%d reads, want 4000 (the first pass only)", hc.reads.Load())
	}
}

func BenchmarkChecksumUncached(b *testing.B) {
	dir := benchTree(b, 4000)
	for b.Loop() {
		c, err := FromDir(dir, nil)
		must(b, err)
		checksum(b, c, ".")
		c.Close()
	}
}

func BenchmarkWriteLayer(b *testing.B) {
	dir := benchTree(b, 4000)
	for b.Loop() {
		var n countWriter
		if err := WriteLayer(context.Background(), &n, dir, []string{"."}, CopyOptions{Dest: "/usr/local/go"}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(n))
	}
}

type countWriter int64

func (w *countWriter) Write(p []byte) (int, error) { *w += countWriter(len(p)); return len(p), nil }

// BenchmarkChecksumCachedDir re-hashes a real tree with a warm cache: the
// issue's rebuild case with SKIFF_BENCH_CONTEXT=$(go env GOROOT) (a Go
// toolchain, ~15,000 files).
func BenchmarkChecksumCachedDir(b *testing.B) {
	dir := os.Getenv("SKIFF_BENCH_CONTEXT")
	if dir == "" {
		b.Skip("SKIFF_BENCH_CONTEXT not set")
	}
	noRacyWindow(b)
	hc, err := NewHashCache(nil)
	must(b, err)
	c, err := FromDir(dir, hc)
	must(b, err)
	defer c.Close()
	checksum(b, c, ".")
	reads := hc.reads.Load()
	for b.Loop() {
		checksum(b, c, ".")
	}
	if hc.reads.Load() != reads {
		b.Fatalf("cached checksums read %d files", hc.reads.Load()-reads)
	}
}
