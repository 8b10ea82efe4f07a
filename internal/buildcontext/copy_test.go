package buildcontext

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func modePtr(m os.FileMode) *os.FileMode { return &m }

func TestWriteLayer(t *testing.T) {
	ctxFiles := []string{
		".dockerignore=**/*.log\n!src/keep.log\n",
		"src/", "src/a.txt=A", "src/run.sh=#!/bin/sh:0755", "src/sub/", "src/sub/b.txt=B",
		"src/link->a.txt", "src/evil->/etc/shadow", "src/up->../../..",
		"src/noise.log=n", "src/keep.log=k",
		"f.txt=F", "g.txt=G", "secret.txt=S:0600",
		"lnk->src/sub", "outside->../../../../etc/passwd",
	}
	// The image the layer goes on.
	imageFiles := []string{
		"usr/:0750", "usr/lib/", "lib->usr/lib", "tmp/:01777", "etc/", "etc/passwd=root:x:0:0::/root:/bin/sh",
		"opt/existing/:0700", "afile=x",
	}
	tests := []struct {
		name  string
		srcs  []string
		opts  CopyOptions
		image bool // DestRoot: the image above
		want  []string
		kind  errdefs.Kind
	}{
		{
			name: "directory copies its contents",
			srcs: []string{"src"},
			opts: CopyOptions{Dest: "/app"},
			want: []string{
				"app/ d 0755 0:0",
				"app/a.txt f 0644 0:0 =A",
				"app/evil l 0777 0:0 ->/etc/shadow",
				"app/keep.log f 0644 0:0 =k",
				"app/link l 0777 0:0 ->a.txt",
				"app/run.sh f 0755 0:0 =#!/bin/sh",
				"app/sub/ d 0755 0:0",
				"app/sub/b.txt f 0644 0:0 =B",
				"app/up l 0777 0:0 ->../../..",
			},
		},
		{
			name: "missing parents of dest are root 0755, chown and chmod apply to the copy",
			srcs: []string{"src/sub"},
			opts: CopyOptions{Dest: "/opt/x/app", UID: 1000, GID: 1001, Chmod: modePtr(0o700)},
			want: []string{
				"opt/ d 0755 0:0",
				"opt/x/ d 0755 0:0",
				"opt/x/app/ d 0700 1000:1001",
				"opt/x/app/b.txt f 0700 1000:1001 =B",
			},
		},
		{
			name: "file to a directory",
			srcs: []string{"f.txt"},
			opts: CopyOptions{Dest: "/x/", DestIsDir: true},
			want: []string{"x/ d 0755 0:0", "x/f.txt f 0644 0:0 =F"},
		},
		{
			name: "file to a file",
			srcs: []string{"f.txt"},
			opts: CopyOptions{Dest: "/x/y.txt"},
			want: []string{"x/ d 0755 0:0", "x/y.txt f 0644 0:0 =F"},
		},
		{
			name: "file with chown: created parents belong to the owner too",
			srcs: []string{"secret.txt"},
			opts: CopyOptions{Dest: "/home/u/s", UID: 1000, GID: 1000},
			want: []string{"home/ d 0755 1000:1000", "home/u/ d 0755 1000:1000", "home/u/s f 0600 1000:1000 =S"},
		},
		{
			name: "several sources",
			srcs: []string{"f.txt", "g.txt", "src/sub"},
			opts: CopyOptions{Dest: "/d/", DestIsDir: true},
			want: []string{"d/ d 0755 0:0", "d/f.txt f 0644 0:0 =F", "d/g.txt f 0644 0:0 =G", "d/b.txt f 0644 0:0 =B"},
		},
		{
			name: "several sources need a directory",
			srcs: []string{"f.txt", "g.txt"},
			opts: CopyOptions{Dest: "/d"},
			kind: errdefs.KindInvalid,
		},
		{
			name: "a source symlink is followed inside the root, keeping its own name",
			srcs: []string{"lnk", "src/link"},
			opts: CopyOptions{Dest: "/d/", DestIsDir: true},
			want: []string{"d/ d 0755 0:0", "d/b.txt f 0644 0:0 =B", "d/link f 0644 0:0 =A"},
		},
		{
			name: "a source symlink pointing outside stays inside",
			srcs: []string{"outside"},
			opts: CopyOptions{Dest: "/d/", DestIsDir: true},
			kind: errdefs.KindNotFound, // <root>/etc/passwd
		},
		{
			name: "root of the context",
			srcs: []string{"src/up"},
			opts: CopyOptions{Dest: "/", DestIsDir: true, ExcludeFn: func(rel string) bool { return rel != "f.txt" && rel != "src/up" }},
			// src is excluded, but src/up is not: src comes along.
			want: []string{"f.txt f 0644 0:0 =F", "src/ d 0755 0:0", "src/up l 0777 0:0 ->../../.."},
		},
		{
			name: "missing source",
			srcs: []string{"nope"},
			opts: CopyOptions{Dest: "/d"},
			kind: errdefs.KindNotFound,
		},
		{
			name: "relative dest",
			srcs: []string{"f.txt"},
			opts: CopyOptions{Dest: "d"},
			kind: errdefs.KindInvalid,
		},
		{
			name:  "existing parents keep their metadata",
			srcs:  []string{"f.txt"},
			opts:  CopyOptions{Dest: "/tmp/", DestIsDir: true, UID: 5, GID: 5},
			image: true,
			want:  []string{"tmp/ d 1777 0:0", "tmp/f.txt f 0644 5:5 =F"},
		},
		{
			name:  "dest through a symlink of the image",
			srcs:  []string{"f.txt"},
			opts:  CopyOptions{Dest: "/lib/"},
			image: true,
			want:  []string{"usr/ d 0750 0:0", "usr/lib/ d 0755 0:0", "usr/lib/f.txt f 0644 0:0 =F"},
		},
		{
			name:  "an existing directory is copied into",
			srcs:  []string{"f.txt"},
			opts:  CopyOptions{Dest: "/opt/existing"},
			image: true,
			want:  []string{"opt/ d 0755 0:0", "opt/existing/ d 0700 0:0", "opt/existing/f.txt f 0644 0:0 =F"},
		},
		{
			name:  "an existing dest directory keeps its owner",
			srcs:  []string{"src/sub"},
			opts:  CopyOptions{Dest: "/opt/existing", UID: 7, GID: 7},
			image: true,
			want:  []string{"opt/ d 0755 0:0", "opt/existing/ d 0700 0:0", "opt/existing/b.txt f 0644 7:7 =B"},
		},
		{
			name:  "a directory onto a file",
			srcs:  []string{"src/sub"},
			opts:  CopyOptions{Dest: "/afile"},
			image: true,
			kind:  errdefs.KindInvalid,
		},
	}
	ctxDir := t.TempDir()
	mkfs(t, ctxDir, ctxFiles...)
	c, err := FromDir(ctxDir, nil)
	must(t, err)
	defer c.Close()
	imageDir := t.TempDir()
	mkfs(t, imageDir, imageFiles...)
	must(t, os.Chown(filepath.Join(imageDir, "opt/existing"), 0, 0))

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := tt.opts
			if opts.ExcludeFn == nil {
				opts.ExcludeFn = c.Excluded
			}
			if tt.image {
				opts.DestRoot = imageDir
			}
			data, err := layer(t, ctxDir, tt.srcs, opts)
			if tt.kind != errdefs.KindUnknown {
				if errdefs.KindOf(err) != tt.kind {
					t.Fatalf("err = %v (kind %v), want kind %v", err, errdefs.KindOf(err), tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equalLines(t, "layer", layerEntries(t, data), tt.want)
		})
	}
}

func TestWriteLayerKeepsMtimes(t *testing.T) {
	dir := t.TempDir()
	mkfs(t, dir, "d/", "d/f=1")
	must(t, os.Chtimes(filepath.Join(dir, "d/f"), testTime, testTime))
	must(t, os.Chtimes(filepath.Join(dir, "d"), testTime, testTime))
	data, err := layer(t, dir, []string{"."}, CopyOptions{Dest: "/"})
	must(t, err)
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if !hdr.ModTime.Equal(testTime) {
			t.Errorf("%s: mtime %v, want %v", hdr.Name, hdr.ModTime, testTime)
		}
	}
}

// bzip2Tar is a bzip2-compressed tar (Go has no bzip2 writer) of one file:
// hello.txt, 0640, 1000:1000, "hello bzip2\n".
const bzip2Tar = "QlpoOTFBWSZTWRAjj/wAAHb7gMIQAQBAAX+AAIByZN5QCAggAHQaaiepoDQaA00eoJKamQGgABoPu6RkIIPQhFXUE1rPQIdFjki+8nYg4MmRwOrgSFfF4mb1MoAiGEqiogo0x6DbNMUAp58ze/RbNEQD8XckU4UJAQI4/8A="

func TestAddExtract(t *testing.T) {
	archive := mktar(t,
		tdir("./", 0o750, 0),
		tdir("top/", 0o700, 7),
		tfile("top/f.txt", "data", 0o640, 1000),
		tlink("top/l", "f.txt"),
		thard("top/h", "top/f.txt"),
		tfile(".wh.gone", "", 0o600, 0),
		tfile("/abs/x", "rooted", 0o644, 0),
		tfile("./dot/../y", "cleaned", 0o644, 0),
	)
	wantArchive := []string{
		"dst/ d 0755 0:0",
		"dst/ d 0750 0:0",
		"dst/top/ d 0700 7:7",
		"dst/top/f.txt f 0640 1000:1000 =data",
		"dst/top/l l 0777 0:0 ->f.txt",
		"dst/top/h h 0644 0:0 ->dst/top/f.txt",
		"dst/.wh.gone f 0600 0:0 =",
		"dst/abs/ d 0755 0:0",
		"dst/abs/x f 0644 0:0 =rooted",
		"dst/y f 0644 0:0 =cleaned",
	}
	var gz, xzb, zst bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(archive)
	zw.Close()
	xw, err := xz.NewWriter(&xzb)
	must(t, err)
	xw.Write(archive)
	xw.Close()
	sw, err := zstd.NewWriter(&zst)
	must(t, err)
	sw.Write(archive)
	sw.Close()
	bz, err := base64.StdEncoding.DecodeString(bzip2Tar)
	must(t, err)

	tests := []struct {
		name    string
		content []byte
		extract bool
		dest    string
		want    []string
		kind    errdefs.Kind
	}{
		{name: "plain", content: archive, extract: true, dest: "/dst", want: wantArchive},
		{name: "gzip", content: gz.Bytes(), extract: true, dest: "/dst", want: wantArchive},
		{name: "xz", content: xzb.Bytes(), extract: true, dest: "/dst", want: wantArchive},
		{name: "zstd", content: zst.Bytes(), extract: true, dest: "/dst", want: wantArchive},
		{name: "bzip2", content: bz, extract: true, dest: "/dst/",
			want: []string{"dst/ d 0755 0:0", "dst/hello.txt f 0640 1000:1000 =hello bzip2\n"}},
		// Anything else is copied as a file, with --chown.
		{name: "COPY does not extract", content: bz, dest: "/dst/",
			want: []string{"dst/ d 0755 33:33", "dst/src.bin f 0644 33:33 =" + string(bz)}},
		{name: "not an archive", content: []byte("just text\n"), extract: true, dest: "/dst/",
			want: []string{"dst/ d 0755 33:33", "dst/src.bin f 0644 33:33 =just text\n"}},
		{name: "gzip of something else", content: gzipOf(t, "not a tar"), extract: true, dest: "/f",
			want: []string{"f f 0644 33:33 =" + string(gzipOf(t, "not a tar"))}},
		{name: "escaping entry", content: mktar(t, tfile("a", "1", 0o644, 0), tfile("../../evil", "x", 0o644, 0)),
			extract: true, dest: "/dst", kind: errdefs.KindInvalid},
		{name: "escaping hardlink", content: mktar(t, thard("a", "../../etc/passwd")),
			extract: true, dest: "/dst", kind: errdefs.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.WriteFile(filepath.Join(dir, "src.bin"), tt.content, 0o644))
			// --chown does not apply to what an archive holds.
			opts := CopyOptions{Dest: tt.dest, DestIsDir: strings.HasSuffix(tt.dest, "/"), Extract: tt.extract, UID: 33, GID: 33}
			data, err := layer(t, dir, []string{"src.bin"}, opts)
			if tt.kind != errdefs.KindUnknown {
				if errdefs.KindOf(err) != tt.kind {
					t.Fatalf("err = %v (kind %v), want kind %v", err, errdefs.KindOf(err), tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			equalLines(t, "layer", layerEntries(t, data), tt.want)
		})
	}
}

func gzipOf(t *testing.T, s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	must(t, zw.Close())
	return b.Bytes()
}

func TestWriteFileLayer(t *testing.T) {
	mtime := time.Date(2021, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name string
		body string
		size int64
		opts CopyOptions
		want []string
		kind errdefs.Kind
	}{
		{name: "default mode 0600", body: "payload", size: 7, opts: CopyOptions{Dest: "/dl/file.tgz"},
			want: []string{"dl/ d 0755 0:0", "dl/file.tgz f 0600 0:0 =payload"}},
		{name: "chmod and chown", body: "payload", size: 7, opts: CopyOptions{Dest: "/f", UID: 1, GID: 2, Chmod: modePtr(0o755)},
			want: []string{"f f 0755 1:2 =payload"}},
		{name: "short body", body: "pay", size: 7, opts: CopyOptions{Dest: "/f"}, kind: errdefs.KindInvalid},
		{name: "root", body: "", size: 0, opts: CopyOptions{Dest: "/"}, kind: errdefs.KindInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := WriteFileLayer(&buf, strings.NewReader(tt.body), tt.size, mtime, tt.opts)
			if tt.kind != errdefs.KindUnknown {
				if errdefs.KindOf(err) != tt.kind {
					t.Fatalf("err = %v, want kind %v", err, tt.kind)
				}
				return
			}
			must(t, err)
			equalLines(t, "layer", layerEntries(t, buf.Bytes()), tt.want)
			tr := tar.NewReader(&buf)
			for hdr, err := tr.Next(); err == nil; hdr, err = tr.Next() {
				if hdr.Typeflag == tar.TypeReg && !hdr.ModTime.Equal(mtime) {
					t.Errorf("mtime %v, want %v", hdr.ModTime, mtime)
				}
			}
		})
	}
}

func TestWriteLayerCanceled(t *testing.T) {
	dir := t.TempDir()
	mkfs(t, dir, "a/", "a/b/", "a/b/c=1")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var buf bytes.Buffer
	if err := WriteLayer(ctx, &buf, dir, []string{"a"}, CopyOptions{Dest: "/a"}); err != context.Canceled {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// KeepOwners (COPY --from without --chown) writes the source's owners;
// without it everything is UID:GID.
func TestWriteLayerKeepOwners(t *testing.T) {
	dir := t.TempDir()
	mkfs(t, dir, "d/", "d/f=1", "d/g=2")
	must(t, os.Lchown(filepath.Join(dir, "d"), 7, 8))
	must(t, os.Lchown(filepath.Join(dir, "d/f"), 1000, 1001))
	for _, tt := range []struct {
		name string
		opts CopyOptions
		want []string
	}{
		{"keep", CopyOptions{Dest: "/x/", DestIsDir: true, KeepOwners: true}, []string{"x/f 1000:1001", "x/g 0:0"}},
		{"chown", CopyOptions{Dest: "/x/", DestIsDir: true, UID: 5, GID: 6}, []string{"x/f 5:6", "x/g 5:6"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := layer(t, dir, []string{"d"}, tt.opts)
			must(t, err)
			got := map[string]string{}
			tr := tar.NewReader(bytes.NewReader(data))
			for {
				hdr, err := tr.Next()
				if err != nil {
					break
				}
				got[hdr.Name] = fmt.Sprintf("%s %d:%d", hdr.Name, hdr.Uid, hdr.Gid)
			}
			for _, w := range tt.want {
				name, _, _ := strings.Cut(w, " ")
				if got[name] != w {
					t.Errorf("%s: got %q, want %q (all: %v)", name, got[name], w, got)
				}
			}
		})
	}
}
