package archive

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// entry is one crafted tar entry.
type entry struct {
	tar.Header
	body string
}

func file(name, body string) entry {
	return entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}
func dir(name string) entry {
	return entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}
func symlink(name, target string) entry {
	return entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func hardlink(name, target string) entry {
	return entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

var testTime = time.Date(2020, 5, 4, 3, 2, 1, 0, time.UTC)

func mktar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		if h.ModTime.IsZero() {
			h.ModTime = testTime
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// sandbox is a temp dir holding the apply target ("root") and things that
// must never change ("outside/victim", "sibling").
type sandbox struct {
	base, root, outside string
}

const victimContent = "do not touch"

func newSandbox(t testing.TB) *sandbox {
	t.Helper()
	base := t.TempDir()
	s := &sandbox{base: base, root: filepath.Join(base, "root"), outside: filepath.Join(base, "outside")}
	for _, d := range []string{s.root, s.outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(s.outside, "victim"), []byte(victimContent), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "sibling"), []byte(victimContent), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// checkUntouched fails when anything outside root changed.
func (s *sandbox) checkUntouched(t testing.TB) {
	t.Helper()
	if got := names(t, s.base); !slices.Equal(got, []string{"outside", "root", "sibling"}) {
		t.Errorf("the sandbox now holds %v", got)
	}
	if got := names(t, s.outside); !slices.Equal(got, []string{"victim"}) {
		t.Errorf("outside/ now holds %v", got)
	}
	for _, p := range []string{filepath.Join(s.outside, "victim"), filepath.Join(s.base, "sibling")} {
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Mode&0o7777 != 0o644 || st.Uid != 0 || st.Nlink != 1 {
			t.Errorf("%s changed: %+v %v", p, st, err)
		}
		if b, _ := os.ReadFile(p); string(b) != victimContent {
			t.Errorf("%s now holds %q", p, b)
		}
	}
	if st, err := os.Lstat(s.root); err != nil || !st.IsDir() {
		t.Errorf("root is no longer a directory: %v", err)
	}
}

func names(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// tree lists every path under root with its type, for comparisons.
func tree(t testing.TB, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		kind := "f"
		switch {
		case fi.IsDir():
			kind = "d"
		case fi.Mode()&os.ModeSymlink != 0:
			kind = "l"
		case fi.Mode()&os.ModeCharDevice != 0:
			kind = "c"
		case fi.Mode()&os.ModeDevice != 0:
			kind = "b"
		case fi.Mode()&os.ModeNamedPipe != 0:
			kind = "p"
		}
		out = append(out, kind+" "+filepath.ToSlash(rel))
		return nil
	})
	return out
}

func openFDs(t testing.TB) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return st
}

func getxattr(p, name string) string {
	buf := make([]byte, 256)
	n, err := unix.Lgetxattr(p, name, buf)
	if err != nil {
		return ""
	}
	return string(buf[:n])
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if strings.EqualFold(l, s) {
			return true
		}
	}
	return false
}
