package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"golang.org/x/sys/unix"
)

// canary is an absolute path outside any sandbox that seeds aim at. Apply
// must never create it.
var canary = filepath.Join(os.TempDir(), "skiff-fuzz-canary")

// FuzzApply feeds arbitrary archives to Apply and asserts that nothing ever
// lands outside the root, whatever Apply returns. Run it by hand:
//
//	go test ./internal/archive -run '^$' -fuzz FuzzApply -fuzztime 20s
func FuzzApply(f *testing.F) {
	seeds := [][]entry{
		{file("../escape", "x")},
		{file("a/../../escape", "x")},
		{file("/../../sibling", "x")},
		{symlink("l", "/"), file("l/victim", "x")},
		{symlink("l", "../.."), file("l/sibling", "x")},
		{symlink("l", canary), dir(canary + "/"), file("l/x", "x")},
		{symlink("l", filepath.Dir(canary)), file("l/skiff-fuzz-canary", "x")},
		{symlink("l", "../outside"), dir("outside/"), file("l/victim", "x")},
		{dir("a/"), symlink("a/up", ".."), symlink("a/up2", "up/../.."), file("a/up2/victim", "x")},
		{symlink("f", canary), file("f", "x")},
		{hardlink("h", "../outside/victim")},
		{hardlink("h", "/etc/passwd")},
		{symlink("s", canary), hardlink("h", "s"), file("h", "x")},
		{symlink("l", "../outside"), file("l/.wh.victim", "")},
		{symlink("l", filepath.Dir(canary)), file("l/.wh..wh..opq", "")},
		{file(".wh...", "")},
		{symlink("./", "/")},
		{entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}}},
		{dir("d/"), file("d/.wh..wh..opq", ""), file("d/f", "x"), file(".wh.d", "")},
		{file("a", "x"), dir("a/"), symlink("a", "/"), file("a/b", "x")},
	}
	for _, s := range seeds {
		data := mktar(f, s...)
		f.Add(data)
		var gz bytes.Buffer
		zw := gzip.NewWriter(&gz)
		zw.Write(data)
		zw.Close()
		f.Add(gz.Bytes())
	}
	passwd := lstat(f, "/etc/passwd")

	f.Fuzz(func(t *testing.T, data []byte) {
		s := newSandbox(t)
		modes := []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete, WhiteoutLiteral}
		// The property is confinement, not completion: a crafted sparse
		// entry may claim terabytes of holes.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		Apply(ctx, s.root, bytes.NewReader(data), WithWhiteouts(modes[len(data)%3]))
		s.checkUntouched(t)
		if _, err := os.Lstat(canary); err == nil {
			os.RemoveAll(canary)
			t.Fatalf("Apply created %s", canary)
		}
		var st unix.Stat_t
		if unix.Lstat("/etc/passwd", &st) == nil && (st.Nlink != passwd.Nlink || st.Mode != passwd.Mode || st.Uid != passwd.Uid) {
			t.Fatalf("/etc/passwd changed: %+v", st)
		}
	})
}
