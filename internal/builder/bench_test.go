package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// BenchmarkRebuildCached is the rebuild goal on a fake backend: a
// FROM + COPY of a tree + RUN Dockerfile whose steps are all cached must
// start no container and store nothing; its cost is the context's
// checksum (through the hash cache) and the cache lookups.
func BenchmarkRebuildCached(b *testing.B) {
	e := newTestEnv(b)
	// Big scratch trees go to /dev/shm when there is one (see the disk
	// note in the test rules).
	dir, err := os.MkdirTemp("/dev/shm", "skiff-bench-")
	if err != nil {
		dir = b.TempDir()
	} else {
		b.Cleanup(func() { os.RemoveAll(dir) })
	}
	e.dir = dir
	for i := range 2000 {
		p := filepath.Join(dir, "go", fmt.Sprintf("d%02d", i%40), fmt.Sprintf("f%04d", i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(fmt.Sprintf("file %d\n", i)), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	e.be.run = func(*container.Config) (string, int, map[string]string) {
		return "", 0, map[string]string{"built": "built\n"}
	}
	df := "FROM busybox\nCOPY go /usr/local/go\nRUN echo built > /built\n"
	if _, out, err := e.build(df, Options{}); err != nil {
		b.Fatalf("%v\n%s", err, out)
	}
	runs, adds, _ := e.be.counts()
	for b.Loop() {
		if _, _, err := e.build(df, Options{}); err != nil {
			b.Fatal(err)
		}
	}
	if r, a, _ := e.be.counts(); r != runs || a != adds {
		b.Fatalf("cached rebuilds ran %d containers and stored %d layers", r-runs, a-adds)
	}
}
