package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

type tarEntry struct {
	name     string
	typ      byte
	linkname string
	body     string
	pax      map[string]string
}

func readTar(t *testing.T, data []byte) []tarEntry {
	t.Helper()
	var out []tarEntry
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		out = append(out, tarEntry{name: h.Name, typ: h.Typeflag, linkname: h.Linkname, body: string(b), pax: h.PAXRecords})
	}
}

// makeUpper builds what overlay leaves in an upper dir after a container
// changed things.
func makeUpper(t *testing.T) string {
	t.Helper()
	up := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(up, "etc"), 0o755))
	must(os.WriteFile(filepath.Join(up, "etc", "hostname"), []byte("box\n"), 0o644))
	must(os.Link(filepath.Join(up, "etc", "hostname"), filepath.Join(up, "etc", "hostname.bak")))
	must(unix.Mknod(filepath.Join(up, "etc", "removed"), unix.S_IFCHR, 0))
	must(os.MkdirAll(filepath.Join(up, "var", "cache"), 0o755))
	must(unix.Setxattr(filepath.Join(up, "var", "cache"), "trusted.overlay.opaque", []byte("y"), 0))
	must(unix.Setxattr(filepath.Join(up, "var", "cache"), "trusted.overlay.origin", []byte("xx"), 0))
	must(os.WriteFile(filepath.Join(up, "var", "cache", "fresh"), []byte("fresh"), 0o600))
	must(os.Symlink("/etc/hostname", filepath.Join(up, "link")))
	must(unix.Mknod(filepath.Join(up, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(unix.Mkfifo(filepath.Join(up, "fifo"), 0o600))
	// The newer form of whiteout: an empty file marked with an xattr.
	must(os.WriteFile(filepath.Join(up, "xwhiteout"), nil, 0o644))
	must(unix.Setxattr(filepath.Join(up, "xwhiteout"), "trusted.overlay.whiteout", nil, 0))
	must(unix.Setxattr(filepath.Join(up, "etc", "hostname"), "user.note", []byte("kept"), 0))
	must(os.Chown(filepath.Join(up, "var", "cache", "fresh"), 33, 33))
	return up
}

func TestDiffConvertsOverlayToOCI(t *testing.T) {
	up := makeUpper(t)
	var buf bytes.Buffer
	if err := Diff(context.Background(), up, &buf); err != nil {
		t.Fatal(err)
	}
	got := readTar(t, buf.Bytes())
	var summary []string
	for _, e := range got {
		summary = append(summary, string(e.typ)+" "+e.name)
		for k := range e.pax {
			if k == "SCHILY.xattr.trusted.overlay.opaque" || k == "SCHILY.xattr.trusted.overlay.origin" {
				t.Errorf("%s carries overlay xattr %s", e.name, k)
			}
		}
	}
	want := []string{
		"5 etc/",
		"0 etc/hostname",
		"1 etc/hostname.bak",
		"0 etc/.wh.removed",
		"6 fifo",
		"2 link",
		"3 null",
		"5 var/",
		"5 var/cache/",
		"0 var/cache/.wh..wh..opq",
		"0 var/cache/fresh",
		"0 .wh.xwhiteout",
	}
	if !slices.Equal(summary, want) {
		t.Fatalf("Diff entries:\n%v\nwant\n%v", summary, want)
	}
	for _, e := range got {
		switch e.name {
		case "etc/hostname":
			if e.body != "box\n" || e.pax["SCHILY.xattr.user.note"] != "kept" {
				t.Errorf("etc/hostname: %q %v", e.body, e.pax)
			}
		case "etc/hostname.bak":
			if e.linkname != "etc/hostname" {
				t.Errorf("hardlink points at %q", e.linkname)
			}
		case "link":
			if e.linkname != "/etc/hostname" {
				t.Errorf("symlink points at %q", e.linkname)
			}
		}
	}

	// Deterministic: the same tree gives the same bytes.
	var again bytes.Buffer
	Diff(context.Background(), up, &again)
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two diffs of the same tree differ")
	}

	// Round trip: applying the diff into an empty layer dir rebuilds the
	// upper dir (with the standard whiteout form).
	dst := t.TempDir()
	if _, err := Apply(context.Background(), dst, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	want = tree(t, up)
	for i, s := range want {
		if s == "f xwhiteout" {
			want[i] = "c xwhiteout" // the xattr form comes back as the device form
		}
	}
	if got := tree(t, dst); !slices.Equal(got, want) {
		t.Errorf("round trip:\n%v\nwant\n%v", got, want)
	}
	if v := getxattr(filepath.Join(dst, "var", "cache"), "trusted.overlay.opaque"); v != "y" {
		t.Errorf("opaque lost in the round trip: %q", v)
	}
	st := lstat(t, filepath.Join(dst, "var", "cache", "fresh"))
	if st.Uid != 33 || st.Mode&0o777 != 0o600 {
		t.Errorf("fresh: owner %d mode %o", st.Uid, st.Mode&0o777)
	}
	if a, b := lstat(t, filepath.Join(dst, "etc/hostname")), lstat(t, filepath.Join(dst, "etc/hostname.bak")); a.Ino != b.Ino {
		t.Error("hardlink lost in the round trip")
	}
}

func TestTarKeepsDevices(t *testing.T) {
	up := makeUpper(t)
	var buf bytes.Buffer
	if err := Tar(context.Background(), up, &buf); err != nil {
		t.Fatal(err)
	}
	types := map[string]byte{}
	for _, e := range readTar(t, buf.Bytes()) {
		types[e.name] = e.typ
		if e.name == "var/cache/.wh..wh..opq" {
			t.Error("Tar converted an opaque dir")
		}
	}
	if types["etc/removed"] != tar.TypeChar || types["xwhiteout"] != tar.TypeReg || types["null"] != tar.TypeChar {
		t.Errorf("Tar entry types: %v", types)
	}
}

func TestDiffTimesAreSeconds(t *testing.T) {
	up := t.TempDir()
	p := filepath.Join(up, "f")
	os.WriteFile(p, []byte("x"), 0o644)
	mt := time.Date(2021, 1, 2, 3, 4, 5, 678_000_000, time.UTC)
	os.Chtimes(p, mt, mt)
	var buf bytes.Buffer
	if err := Diff(context.Background(), up, &buf); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	if !h.ModTime.Equal(mt.Truncate(time.Second)) || !h.AccessTime.IsZero() || h.Uname != "" {
		t.Errorf("header times/names: mtime %v atime %v uname %q", h.ModTime, h.AccessTime, h.Uname)
	}
}
