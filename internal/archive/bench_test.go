package archive

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

	"github.com/klauspost/compress/gzip"
)

var (
	benchOnce           sync.Once
	benchTar, benchTgz  []byte
	benchFiles, benchSz int
)

// benchLayer builds a layer shaped like a big image layer: 16,000 files in
// 800 directories, 270 MB, content that compresses about 3:1.
func benchLayer(b *testing.B) {
	benchOnce.Do(func() {
		rng := rand.New(rand.NewPCG(1, 2))
		// Real binaries and libraries, so gzip works as hard as on a
		// real layer.
		var pool []byte
		for _, dir := range []string{"/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib", "/bin"} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if len(pool) >= 16<<20 {
					break
				}
				if b, err := os.ReadFile(filepath.Join(dir, e.Name())); err == nil {
					pool = append(pool, b...)
				}
			}
		}
		for len(pool) < 16<<20 {
			pool = append(pool, byte(rng.IntN(256)))
		}
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		const files, total = 16000, 270 << 20
		remaining := total
		for d := 0; d < 800; d++ {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: fmt.Sprintf("usr/lib/d%03d/", d), Mode: 0o755, ModTime: testTime})
		}
		for i := 0; i < files; i++ {
			size := 4096 + rng.IntN(8192)
			if i%200 == 0 {
				size = 3 << 20
			}
			if i == files-1 || size > remaining {
				size = max(remaining, 0)
			}
			remaining -= size
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: fmt.Sprintf("usr/lib/d%03d/f%05d.so", i%800, i), Mode: 0o644, Size: int64(size), ModTime: testTime})
			off := rng.IntN(len(pool) - size)
			tw.Write(pool[off : off+size])
			benchSz += size
		}
		tw.Close()
		benchFiles = files
		benchTar = buf.Bytes()
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.DefaultCompression)
		zw.Write(benchTar)
		zw.Close()
		benchTgz = gz.Bytes()
	})
}

func benchmarkApply(b *testing.B, data []byte) {
	benchLayer(b)
	b.SetBytes(int64(benchSz))
	b.ReportMetric(float64(benchFiles), "files")
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		// SKIFF_BENCH_DIR picks the filesystem (the data root's, or
		// /dev/shm to measure Apply without the disk).
		dir, err := os.MkdirTemp(os.Getenv("SKIFF_BENCH_DIR"), "skiff-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := Apply(context.Background(), dir, bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(dir)
		b.StartTimer()
	}
}

// go test ./internal/archive -run '^$' -bench Apply -benchtime 3x
func BenchmarkApplyTar(b *testing.B)   { benchmarkApply(b, benchTarData(b)) }
func BenchmarkApplyTarGz(b *testing.B) { benchmarkApply(b, benchTgzData(b)) }

func benchTarData(b *testing.B) []byte { benchLayer(b); return benchTar }
func benchTgzData(b *testing.B) []byte { benchLayer(b); return benchTgz }
