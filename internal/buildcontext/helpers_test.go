package buildcontext

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var testTime = time.Date(2020, 5, 4, 3, 2, 1, 0, time.UTC)

// mkfs creates entries under root. Each spec is one of
//
//	"dir/"            a directory (0755)
//	"path=content"    a regular file (0644)
//	"path->target"    a symlink
//	"path:0600"       a suffix that sets the mode of any of the above but a symlink
//
// Parents are created as needed. Every file gets mtime testTime.
func mkfs(t testing.TB, root string, specs ...string) {
	t.Helper()
	for _, spec := range specs {
		mode := os.FileMode(0)
		if i := strings.LastIndex(spec, ":0"); i >= 0 && !strings.Contains(spec[i:], "/") {
			var m uint32
			if _, err := fmt.Sscanf(spec[i+1:], "%o", &m); err != nil {
				t.Fatalf("bad mode in %q", spec)
			}
			mode = os.FileMode(m&0o777) | unixModeBits(m)
			spec = spec[:i]
		}
		var name string
		switch {
		case strings.Contains(spec, "->"):
			name, target, _ := strings.Cut(spec, "->")
			p := filepath.Join(root, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.Symlink(target, p))
			continue
		case strings.HasSuffix(spec, "/"):
			name = strings.TrimSuffix(spec, "/")
			must(t, os.MkdirAll(filepath.Join(root, name), 0o755))
			if mode == 0 {
				mode = 0o755
			}
		default:
			var body string
			name, body, _ = strings.Cut(spec, "=")
			p := filepath.Join(root, name)
			must(t, os.MkdirAll(filepath.Dir(p), 0o755))
			must(t, os.WriteFile(p, []byte(body), 0o644))
			if mode == 0 {
				mode = 0o644
			}
		}
		p := filepath.Join(root, name)
		must(t, os.Chmod(p, mode))
		must(t, os.Chtimes(p, testTime, testTime))
	}
}

func unixModeBits(m uint32) os.FileMode {
	var out os.FileMode
	if m&0o4000 != 0 {
		out |= os.ModeSetuid
	}
	if m&0o2000 != 0 {
		out |= os.ModeSetgid
	}
	if m&0o1000 != 0 {
		out |= os.ModeSticky
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// layerEntries renders a layer tar as one line per entry:
// "name type mode uid:gid" plus " =body" for files, " ->target" for links.
func layerEntries(t testing.TB, data []byte) []string {
	t.Helper()
	var out []string
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read layer: %v", err)
		}
		line := fmt.Sprintf("%s %c %04o %d:%d", hdr.Name, typeChar(hdr.Typeflag), hdr.Mode, hdr.Uid, hdr.Gid)
		switch hdr.Typeflag {
		case tar.TypeReg:
			body, err := io.ReadAll(tr)
			must(t, err)
			line += " =" + string(body)
		case tar.TypeSymlink, tar.TypeLink:
			line += " ->" + hdr.Linkname
		}
		out = append(out, line)
	}
}

func typeChar(t byte) byte {
	switch t {
	case tar.TypeReg:
		return 'f'
	case tar.TypeDir:
		return 'd'
	case tar.TypeSymlink:
		return 'l'
	case tar.TypeLink:
		return 'h'
	case tar.TypeFifo:
		return 'p'
	case tar.TypeChar:
		return 'c'
	case tar.TypeBlock:
		return 'b'
	}
	return '?'
}

// tarEntry is one crafted entry of a test archive.
type tarEntry struct {
	tar.Header
	body string
}

func tfile(name, body string, mode int64, uid int) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(len(body))}, body: body}
}
func tdir(name string, mode int64, uid int) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: uid}}
}
func tlink(name, target string) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}
func thard(name, target string) tarEntry {
	return tarEntry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

func mktar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.Header
		h.ModTime = testTime
		must(t, tw.WriteHeader(&h))
		_, err := tw.Write([]byte(e.body))
		must(t, err)
	}
	must(t, tw.Close())
	return buf.Bytes()
}

// layer runs WriteLayer into memory.
func layer(t testing.TB, srcRoot string, srcs []string, opts CopyOptions) ([]byte, error) {
	t.Helper()
	var buf bytes.Buffer
	err := WriteLayer(context.Background(), &buf, srcRoot, srcs, opts)
	return buf.Bytes(), err
}

func equalLines(t testing.TB, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
