package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func richLayer(t testing.TB) []byte {
	setuid := file("bin/su", "#!/bin/true\n")
	setuid.Mode = 0o4755
	private := file("etc/shadow", "root:*:1::::::\n")
	private.Mode = 0o600
	owned := file("home/user/notes", "mine")
	owned.Uid, owned.Gid = 1000, 1001
	home := dir("home/user/")
	home.Uid, home.Gid, home.Mode = 1000, 1001, 0o700
	home.ModTime = time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
	tmp := dir("tmp/")
	tmp.Mode = 0o1777
	xf := file("xattr", "x")
	xf.PAXRecords = map[string]string{
		"SCHILY.xattr.user.skiff":             "yes",
		"SCHILY.xattr.trusted.overlay.opaque": "y", // must be ignored
	}
	null := entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	loop := entry{Header: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop9", Mode: 0o660, Devmajor: 7, Devminor: 9}}
	fifo := entry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o620}}
	lnk := symlink("bin/sh", "busybox")
	lnk.Uid = 1000
	return mktar(t,
		entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}},
		dir("bin/"), file("bin/busybox", "BUSYBOX"), lnk, hardlink("bin/ls", "bin/busybox"), setuid,
		dir("etc/"), private,
		dir("home/"), home, owned,
		tmp, xf, null, loop, fifo,
		file("implicit/parent/dirs/f", "deep"),
		hardlink("/abs-link", "/bin/busybox"),
	)
}

func TestApplyEntryTypesAndMetadata(t *testing.T) {
	s := newSandbox(t)
	layer := richLayer(t)
	before := openFDs(t)
	size, err := Apply(context.Background(), s.root, bytes.NewReader(layer))
	if err != nil {
		t.Fatal(err)
	}
	if n := openFDs(t); n != before {
		t.Errorf("Apply leaked %d fds", n-before)
	}
	if want := int64(len("BUSYBOX#!/bin/true\nroot:*:1::::::\nminexdeep")); size != want {
		t.Errorf("size = %d, want %d", size, want)
	}
	r := s.root
	p := func(n string) string { return filepath.Join(r, n) }

	if b, _ := os.ReadFile(p("bin/busybox")); string(b) != "BUSYBOX" {
		t.Errorf("bin/busybox = %q", b)
	}
	if target, _ := os.Readlink(p("bin/sh")); target != "busybox" {
		t.Errorf("bin/sh -> %q", target)
	}
	if st := lstat(t, p("bin/sh")); st.Uid != 1000 {
		t.Errorf("symlink owner %d, want 1000 (lchown)", st.Uid)
	}
	bb, ls, abs := lstat(t, p("bin/busybox")), lstat(t, p("bin/ls")), lstat(t, p("abs-link"))
	if bb.Ino != ls.Ino || bb.Ino != abs.Ino || bb.Nlink != 3 {
		t.Errorf("hardlinks not linked: inodes %d %d %d nlink %d", bb.Ino, ls.Ino, abs.Ino, bb.Nlink)
	}

	modes := []struct {
		path     string
		mode     uint32
		uid, gid uint32
	}{
		{"bin/su", unix.S_IFREG | 0o4755, 0, 0},
		{"etc/shadow", unix.S_IFREG | 0o600, 0, 0},
		{"home/user", unix.S_IFDIR | 0o700, 1000, 1001},
		{"home/user/notes", unix.S_IFREG | 0o644, 1000, 1001},
		{"tmp", unix.S_IFDIR | 0o1777, 0, 0},
		{"dev/null", unix.S_IFCHR | 0o666, 0, 0},
		{"dev/loop9", unix.S_IFBLK | 0o660, 0, 0},
		{"run/fifo", unix.S_IFIFO | 0o620, 0, 0},
		{"implicit/parent/dirs", unix.S_IFDIR | 0o755, 0, 0},
	}
	for _, m := range modes {
		st := lstat(t, p(m.path))
		if st.Mode != m.mode || st.Uid != m.uid || st.Gid != m.gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", m.path, st.Mode, st.Uid, st.Gid, m.mode, m.uid, m.gid)
		}
	}
	if st := lstat(t, p("dev/null")); unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		t.Errorf("dev/null is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}
	if st := lstat(t, p("dev/loop9")); unix.Major(st.Rdev) != 7 || unix.Minor(st.Rdev) != 9 {
		t.Errorf("dev/loop9 is %d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	}

	// Directory mtimes survive the creation of their content.
	if st := lstat(t, p("home/user")); st.Mtim.Sec != time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Unix() {
		t.Errorf("home/user mtime %v", time.Unix(st.Mtim.Sec, 0).UTC())
	}
	for _, n := range []string{"bin", "bin/busybox", "bin/sh", "etc/shadow", "dev/null", "."} {
		if st := lstat(t, p(n)); st.Mtim.Sec != testTime.Unix() {
			t.Errorf("%s mtime %v, want %v", n, time.Unix(st.Mtim.Sec, 0).UTC(), testTime)
		}
	}

	if v := getxattr(p("xattr"), "user.skiff"); v != "yes" {
		t.Errorf("user.skiff xattr = %q", v)
	}
	if v := getxattr(p("xattr"), "trusted.overlay.opaque"); v != "" {
		t.Errorf("an archive set trusted.overlay.opaque = %q", v)
	}
	s.checkUntouched(t)
}

func TestApplyCompressedAndReadsToEnd(t *testing.T) {
	layer := richLayer(t)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(layer)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(layer)
	zw.Close()

	var want []string
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"plain", layer},
		{"plain with trailing zero blocks", append(append([]byte{}, layer...), make([]byte, 10240)...)},
		{"gzip", gz.Bytes()},
		{"zstd", zs.Bytes()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			r := bytes.NewReader(tc.data)
			if _, err := Apply(context.Background(), s.root, r); err != nil {
				t.Fatal(err)
			}
			if r.Len() != 0 {
				t.Errorf("Apply left %d bytes unread", r.Len())
			}
			got := tree(t, s.root)
			if want == nil {
				want = got
			} else if !slices.Equal(got, want) {
				t.Errorf("tree differs from the plain layer's:\n%v\n%v", got, want)
			}
		})
	}
}

func TestApplyOverlayWhiteouts(t *testing.T) {
	s := newSandbox(t)
	opq := file("dir/.wh..wh..opq", "")
	layer := mktar(t,
		dir("dir/"), opq, file("dir/new", "n"),
		file(".wh.gone", ""),
		file("sub/.wh.deep", ""), // parent not listed: created
		file(".wh..wh.plnk", ""), // aufs metadata: skipped
		file(".wh..wh..opq", ""), // opaque root
	)
	if _, err := Apply(context.Background(), s.root, bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"gone", "sub/deep"} {
		st := lstat(t, filepath.Join(s.root, n))
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
			t.Errorf("%s is not an overlay whiteout: mode %o rdev %d", n, st.Mode, st.Rdev)
		}
	}
	if v := getxattr(filepath.Join(s.root, "dir"), "trusted.overlay.opaque"); v != "y" {
		t.Errorf("dir opaque xattr = %q", v)
	}
	if v := getxattr(s.root, "trusted.overlay.opaque"); v != "y" {
		t.Errorf("root opaque xattr = %q", v)
	}
	if got := tree(t, s.root); !slices.Equal(got, []string{"d dir", "f dir/new", "c gone", "d sub", "c sub/deep"}) {
		t.Errorf("tree = %v", got)
	}
}

func TestApplyDeleteWhiteouts(t *testing.T) {
	s := newSandbox(t)
	for _, f := range []string{"gone/x", "dir/old", "keep"} {
		os.MkdirAll(filepath.Dir(filepath.Join(s.root, f)), 0o755)
		os.WriteFile(filepath.Join(s.root, f), nil, 0o644)
	}
	layer := mktar(t,
		dir("dir/"), file("dir/new", "n"), file("dir/.wh..wh..opq", ""),
		file(".wh.gone", ""), file(".wh.missing", ""),
	)
	if _, err := Apply(context.Background(), s.root, bytes.NewReader(layer), WithWhiteouts(WhiteoutDelete)); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, s.root); !slices.Equal(got, []string{"d dir", "f dir/new", "f keep"}) {
		t.Errorf("tree = %v", got)
	}

	s2 := newSandbox(t)
	if _, err := Apply(context.Background(), s2.root, bytes.NewReader(layer), WithWhiteouts(WhiteoutLiteral)); err != nil {
		t.Fatal(err)
	}
	if got := tree(t, s2.root); !slices.Equal(got, []string{"f .wh.gone", "f .wh.missing", "d dir", "f dir/.wh..wh..opq", "f dir/new"}) {
		t.Errorf("literal tree = %v", got)
	}
}

func TestApplyReplacesExisting(t *testing.T) {
	s := newSandbox(t)
	layer1 := mktar(t, dir("a/"), file("a/f", "1"), file("b", "file"), symlink("c", "/outside"), dir("d/"))
	d2 := dir("d/")
	d2.Mode = 0o700
	layer2 := mktar(t,
		file("a", "a is a file now"), // directory replaced by a file
		dir("b/"), file("b/x", "x"),  // file replaced by a directory
		file("c", "no longer a link"), // symlink replaced, not followed
		d2,                            // directory merged, metadata updated
		file("d/y", "y"),
	)
	for _, l := range [][]byte{layer1, layer2} {
		if _, err := Apply(context.Background(), s.root, bytes.NewReader(l), WithWhiteouts(WhiteoutDelete)); err != nil {
			t.Fatal(err)
		}
	}
	if got := tree(t, s.root); !slices.Equal(got, []string{"f a", "d b", "f b/x", "f c", "d d", "f d/y"}) {
		t.Errorf("tree = %v", got)
	}
	if st := lstat(t, filepath.Join(s.root, "d")); st.Mode&0o777 != 0o700 {
		t.Errorf("merged dir mode %o", st.Mode&0o777)
	}
	s.checkUntouched(t)
}

// TestApplyConfinement is the safety suite: each crafted archive either
// fails with a clear error or lands inside the root, and nothing outside the
// root ever changes.
func TestApplyConfinement(t *testing.T) {
	type check func(t *testing.T, s *sandbox, mode WhiteoutMode)
	exists := func(rel string) check {
		return func(t *testing.T, s *sandbox, _ WhiteoutMode) {
			if _, err := os.Lstat(filepath.Join(s.root, rel)); err != nil {
				t.Errorf("%s not created inside the root: %v", rel, err)
			}
		}
	}
	tests := []struct {
		name    string
		layer   func(s *sandbox) []byte
		prepare func(s *sandbox)
		wantErr string // "" when the archive must apply (confined)
		check   check
	}{
		{name: "dot-dot", wantErr: "escapes", layer: func(s *sandbox) []byte {
			return mktar(t, file("../outside/victim", "pwned"))
		}},
		{name: "dot-dot in the middle", wantErr: "escapes", layer: func(s *sandbox) []byte {
			return mktar(t, file("a/../../sibling", "pwned"))
		}},
		{name: "absolute name is rooted", check: exists("outside/victim"), layer: func(s *sandbox) []byte {
			return mktar(t, file("/outside/victim", "inside"))
		}},
		{name: "absolute dot-dot is rooted", check: exists("sibling"), layer: func(s *sandbox) []byte {
			return mktar(t, file("/../../sibling", "inside"))
		}},
		{name: "absolute symlink in the path", check: exists("victim"), layer: func(s *sandbox) []byte {
			return mktar(t, symlink("link", "/"), file("link/victim", "inside"))
		}},
		{name: "absolute symlink to the real outside", wantErr: "symlink to a directory that does not exist", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("link", s.outside), file("link/victim", "pwned"))
		}},
		{name: "absolute symlink to the outside, mirrored inside", layer: func(s *sandbox) []byte {
			return mktar(t, dir(s.outside+"/"), symlink("link", s.outside), file("link/victim", "inside"))
		}, check: func(t *testing.T, s *sandbox, _ WhiteoutMode) {
			if b, err := os.ReadFile(filepath.Join(s.root, s.outside, "victim")); err != nil || string(b) != "inside" {
				t.Errorf("write through an absolute symlink did not land inside the root: %q %v", b, err)
			}
		}},
		{name: "relative symlink climbing out", check: exists("outside/victim"), layer: func(s *sandbox) []byte {
			return mktar(t, symlink("link", "../../../outside"), dir("outside/"), file("link/victim", "inside"))
		}},
		{name: "symlink chain climbing out", check: exists("victim"), layer: func(s *sandbox) []byte {
			return mktar(t, dir("a/"), symlink("a/up", ".."), symlink("a/up2", "up/../.."), file("a/up2/victim", "inside"))
		}},
		{name: "dangling symlink already on disk", wantErr: "symlink to a directory that does not exist", prepare: func(s *sandbox) {
			os.Symlink("../outside", filepath.Join(s.root, "evil"))
		}, layer: func(s *sandbox) []byte {
			return mktar(t, file("evil/victim", "inside"))
		}},
		{name: "symlink already on disk", check: exists("outside/victim"), prepare: func(s *sandbox) {
			os.Symlink("../outside", filepath.Join(s.root, "evil"))
			os.Mkdir(filepath.Join(s.root, "outside"), 0o755)
		}, layer: func(s *sandbox) []byte {
			return mktar(t, file("evil/victim", "inside"))
		}},
		{name: "symlink as final component is replaced", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("f", filepath.Join(s.outside, "victim")), file("f", "replaced"))
		}, check: func(t *testing.T, s *sandbox, _ WhiteoutMode) {
			if st := lstat(t, filepath.Join(s.root, "f")); st.Mode&unix.S_IFMT != unix.S_IFREG {
				t.Errorf("f is not a regular file")
			}
		}},
		{name: "directory over a symlink to outside", layer: func(s *sandbox) []byte {
			d := dir("d/")
			d.Mode = 0o777
			return mktar(t, symlink("d", s.outside), d)
		}, check: func(t *testing.T, s *sandbox, _ WhiteoutMode) {
			if st := lstat(t, filepath.Join(s.root, "d")); st.Mode&unix.S_IFMT != unix.S_IFDIR {
				t.Errorf("d is not a directory")
			}
		}},
		{name: "hardlink dot-dot", wantErr: "escapes", layer: func(s *sandbox) []byte {
			return mktar(t, hardlink("h", "../outside/victim"))
		}},
		{name: "hardlink absolute to host file", wantErr: "not in the layer", layer: func(s *sandbox) []byte {
			return mktar(t, hardlink("h", filepath.Join(s.outside, "victim")))
		}},
		{name: "hardlink through a symlink", wantErr: "not in the layer", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("l", s.outside), hardlink("h", "l/victim"))
		}},
		{name: "hardlink to a symlink pointing out", check: exists("h"), layer: func(s *sandbox) []byte {
			return mktar(t, symlink("s", filepath.Join(s.outside, "victim")), hardlink("h", "s"), file("h", "replaced"))
		}},
		{name: "whiteout of dot-dot", wantErr: "bad whiteout", layer: func(s *sandbox) []byte {
			return mktar(t, file(".wh...", ""))
		}},
		{name: "whiteout through a symlink", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("l", "../outside"), dir("outside/"), file("outside/victim", ""), file("l/.wh.victim", ""))
		}, check: func(t *testing.T, s *sandbox, mode WhiteoutMode) {
			_, err := os.Lstat(filepath.Join(s.root, "outside/victim"))
			if (mode == WhiteoutOverlay) != (err == nil) {
				t.Errorf("mode %d: root/outside/victim: %v", mode, err)
			}
		}},
		{name: "opaque through a symlink", wantErr: "symlink to a directory that does not exist", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("l", s.outside), file("l/.wh..wh..opq", ""))
		}},
		{name: "opaque through a symlink, mirrored inside", layer: func(s *sandbox) []byte {
			return mktar(t, dir(s.outside+"/"), file(s.outside+"/victim", "x"), symlink("l", s.outside), file("l/.wh..wh..opq", ""))
		}, check: func(t *testing.T, s *sandbox, mode WhiteoutMode) {
			_, err := os.Lstat(filepath.Join(s.root, s.outside, "victim"))
			if (mode == WhiteoutOverlay) != (err == nil) {
				t.Errorf("mode %d: victim mirrored inside: %v", mode, err)
			}
		}},
		{name: "root replaced by a symlink", wantErr: "root must be a directory", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("./", s.outside))
		}},
		{name: "root replaced by a file", wantErr: "root must be a directory", layer: func(s *sandbox) []byte {
			return mktar(t, file(".", "x"))
		}},
		{name: "device over a symlink", layer: func(s *sandbox) []byte {
			return mktar(t, symlink("null", filepath.Join(s.outside, "victim")),
				entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: "null", Mode: 0o666, Devmajor: 1, Devminor: 3}})
		}, check: exists("null")},
	}
	for _, tc := range tests {
		for _, mode := range []WhiteoutMode{WhiteoutOverlay, WhiteoutDelete} {
			t.Run(tc.name, func(t *testing.T) {
				s := newSandbox(t)
				if tc.prepare != nil {
					tc.prepare(s)
				}
				before := openFDs(t)
				_, err := Apply(context.Background(), s.root, bytes.NewReader(tc.layer(s)), WithWhiteouts(mode))
				if n := openFDs(t); n != before {
					t.Errorf("Apply leaked %d fds", n-before)
				}
				switch {
				case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
					t.Errorf("Apply: %v, want an error containing %q", err, tc.wantErr)
				case tc.wantErr != "" && !errdefs.IsInvalid(err):
					t.Errorf("Apply: %v is not an Invalid error", err)
				case tc.wantErr == "" && err != nil:
					t.Errorf("Apply: %v", err)
				}
				s.checkUntouched(t)
				if err == nil && tc.check != nil {
					tc.check(t, s, mode)
				}
			})
		}
	}
}

func TestApplyErrors(t *testing.T) {
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"truncated file", mktar(t, file("f", "0123456789"))[:512+5], "read layer archive"},
		{"garbage", bytes.Repeat([]byte("garbage!"), 200), "read layer archive"},
		{"hardlink to missing", mktar(t, hardlink("h", "missing")), "not in the layer"},
		{"hardlink to a directory", mktar(t, dir("d/"), hardlink("h", "d")), "archive entry \"h\""},
		{"empty name", mktar(t, entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: "x"}})[:0], ""},
		{"unknown type", mktar(t, entry{Header: tar.Header{Typeflag: 'Z', Name: "z"}}), "unsupported tar entry type"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newSandbox(t)
			_, err := Apply(context.Background(), s.root, bytes.NewReader(tc.data))
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v, want %q", err, tc.want)
			}
			s.checkUntouched(t)
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s := newSandbox(t)
	if _, err := Apply(ctx, s.root, bytes.NewReader(mktar(t, file("f", "x")))); err != context.Canceled {
		t.Fatalf("Apply with a cancelled context: %v", err)
	}
	if _, err := Apply(context.Background(), filepath.Join(s.base, "missing"), bytes.NewReader(nil)); err == nil {
		t.Fatal("Apply into a missing directory succeeded")
	}
}

func TestDecompressStream(t *testing.T) {
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write([]byte("hello"))
	gw.Close()
	for _, tc := range []struct {
		in   []byte
		want Compression
		err  bool
	}{
		{[]byte("hello"), Uncompressed, false},
		{nil, Uncompressed, false},
		{gz.Bytes(), Gzip, false},
		{[]byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, Xz, true},
	} {
		rc, c, err := DecompressStream(bytes.NewReader(tc.in))
		if c != tc.want || (err != nil) != tc.err {
			t.Errorf("%q: %v %v", tc.in, c, err)
			continue
		}
		if err == nil {
			b, _ := io.ReadAll(rc)
			rc.Close()
			if len(tc.in) > 0 && string(b) != "hello" {
				t.Errorf("%v: read %q", c, b)
			}
		}
	}
}

// ustarBlock encodes one ustar header block by hand (archive/tar refuses to
// write PAX headers itself, and it cannot write sparse entries).
func ustarBlock(name string, typ byte, size int) []byte {
	b := make([]byte, 512)
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], fmt.Sprintf("%011o\x00", testTime.Unix()))
	b[156] = typ
	copy(b[257:265], "ustar\x0000")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func pad512(b []byte) []byte {
	if r := len(b) % 512; r != 0 {
		b = append(b, make([]byte, 512-r)...)
	}
	return b
}

// sparseLayer holds a 1 GiB sparse file whose only data is its last 4 bytes
// (GNU sparse format 1.0 in PAX records), as GNU tar --sparse writes it.
func sparseLayer(t *testing.T) []byte {
	t.Helper()
	const real = 1 << 30
	var rec strings.Builder
	for _, kv := range [][2]string{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.name", "sparse"}, {"GNU.sparse.realsize", strconv.Itoa(real)}} {
		line := " " + kv[0] + "=" + kv[1] + "\n"
		for l := len(line) + 1; ; l++ {
			if len(strconv.Itoa(l))+len(line) == l {
				rec.WriteString(strconv.Itoa(l) + line)
				break
			}
		}
	}
	smap := pad512([]byte("1\n" + strconv.Itoa(real-4) + "\n4\n"))
	body := append(smap, "data"...)
	var out []byte
	out = append(out, ustarBlock("PaxHeaders/sparse", tar.TypeXHeader, rec.Len())...)
	out = append(out, pad512([]byte(rec.String()))...)
	out = append(out, ustarBlock("GNUSparseFile.0/sparse", tar.TypeReg, len(body))...)
	out = append(out, pad512(body)...)
	return append(out, make([]byte, 1024)...)
}

func TestApplySparseFileSeeksOverHoles(t *testing.T) {
	s := newSandbox(t)
	layer := sparseLayer(t)
	start := time.Now()
	if _, err := Apply(context.Background(), s.root, bytes.NewReader(layer)); err != nil {
		t.Fatal(err)
	}
	st := lstat(t, filepath.Join(s.root, "sparse"))
	if st.Size != 1<<30 {
		t.Fatalf("sparse file size %d", st.Size)
	}
	if st.Blocks*512 > 1<<20 {
		t.Errorf("sparse file takes %d bytes on disk: holes were written", st.Blocks*512)
	}
	f, _ := os.Open(filepath.Join(s.root, "sparse"))
	tail := make([]byte, 4)
	f.ReadAt(tail, 1<<30-4)
	f.Close()
	if string(tail) != "data" {
		t.Errorf("sparse tail = %q", tail)
	}
	t.Logf("1 GiB sparse file applied in %v", time.Since(start))
}

func TestApplyCompressedErrorStopsReadahead(t *testing.T) {
	big := strings.Repeat("0123456789abcdef", 1<<19) // 8 MiB: more than the readahead holds
	layer := mktar(t, file("big", big), file("../escape", "x"), file("more", big))
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	before := runtime.NumGoroutine()
	s := newSandbox(t)
	_, err := Apply(context.Background(), s.root, bytes.NewReader(gz.Bytes()))
	if err == nil || !strings.Contains(err.Error(), "escapes") {
		t.Fatalf("Apply: %v", err)
	}
	// Goroutines of earlier tests may still be winding down: give them
	// a moment before calling anything a leak.
	for i := 0; i < 100 && runtime.NumGoroutine() > before; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left running:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
	s.checkUntouched(t)
}
