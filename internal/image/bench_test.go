package image

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

var (
	benchOnce          sync.Once
	benchTar, benchTgz []byte
)

// benchRootfs is a 270 MB, 16,000-file root filesystem of real binaries.
func benchRootfs(b *testing.B) {
	benchOnce.Do(func() {
		var pool []byte
		for _, dir := range []string{"/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib"} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if len(pool) >= 16<<20 {
					break
				}
				if data, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
					pool = append(pool, data...)
				}
			}
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for len(pool) < 16<<20 {
			pool = append(pool, byte(rng.IntN(256)))
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		remaining := 270 << 20
		for d := 0; d < 800; d++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("usr/lib/d%03d/", d), Mode: 0o755})
		}
		for i := 0; i < 16000; i++ {
			size := 4096 + rng.IntN(8192)
			if i%200 == 0 {
				size = 3 << 20
			}
			if i == 15999 || size > remaining {
				size = max(remaining, 0)
			}
			remaining -= size
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/d%03d/f%05d.so", i%800, i), Mode: 0o644, Size: int64(size)})
			off := rng.IntN(len(pool) - size)
			tw.Write(pool[off : off+size])
		}
		tw.Close()
		benchTar = buf.Bytes()
		benchTgz = gzipped(benchTar)
	})
}

// go test ./internal/image -run '^$' -bench Import -benchtime 3x
// (SKIFF_BENCH_DIR=/dev/shm to leave the disk out)
func BenchmarkImport(b *testing.B) {
	benchRootfs(b)
	for _, tc := range []struct {
		name string
		data *[]byte
	}{{"tar", &benchTar}, {"tar.gz", &benchTgz}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(benchTar)))
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root, err := os.MkdirTemp(os.Getenv("SKIFF_BENCH_DIR"), "skiff-bench-")
				if err != nil {
					b.Fatal(err)
				}
				db, _ := meta.Open(filepath.Join(root, "meta.db"))
				cs, _ := content.New(filepath.Join(root, "content"))
				sn, _ := snapshot.New(filepath.Join(root, "snapshots"), db)
				s, err := NewStore(db, cs, sn)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if _, err := s.Import(context.Background(), bytes.NewReader(*tc.data), ImportOptions{Ref: "big"}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				db.Close()
				os.RemoveAll(root)
			}
		})
	}
}
