package buildcontext

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func newTestContext(t *testing.T, specs ...string) *Context {
	t.Helper()
	dir := t.TempDir()
	mkfs(t, dir, specs...)
	c, err := FromDir(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestExcluded(t *testing.T) {
	tests := []struct {
		name     string
		ignore   string
		excluded []string
		included []string
	}{
		{
			name:     "plain names and directories",
			ignore:   "*.log\nbuild\n# a comment\n",
			excluded: []string{"a.log", "build", "build/x/y.txt"},
			included: []string{"a.txt", "sub/a.log", "builder"},
		},
		{
			name:     "exception",
			ignore:   "*.md\n!README.md\n",
			excluded: []string{"CHANGES.md"},
			included: []string{"README.md", "main.go"},
		},
		{
			name:     "exception below an excluded directory",
			ignore:   "docs\n!docs/keep.txt\n",
			excluded: []string{"docs", "docs/other.txt", "docs/sub/x"},
			included: []string{"docs/keep.txt"},
		},
		{
			name:     "double star",
			ignore:   "**/*.tmp\n**/node_modules\n",
			excluded: []string{"a.tmp", "x/y/z.tmp", "node_modules/a", "web/node_modules/b/c.js"},
			included: []string{"x/y/z.tmpl", "modules/a"},
		},
		{
			name:     "leading slash is stripped",
			ignore:   "/secret\n./other\n",
			excluded: []string{"secret", "secret/key", "other"},
			included: []string{"sub/secret"},
		},
		{
			name:     "Dockerfile and .dockerignore can be excluded",
			ignore:   "Dockerfile\n.dockerignore\n",
			excluded: []string{"Dockerfile", ".dockerignore"},
			included: []string{"Dockerfile.prod"},
		},
		{
			name:     "later pattern wins",
			ignore:   "!keep\nkeep\n",
			excluded: []string{"keep"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestContext(t, ".dockerignore="+tt.ignore, "Dockerfile=FROM scratch\n")
			for _, p := range tt.excluded {
				if !c.Excluded(p) {
					t.Errorf("Excluded(%q) = false, want true", p)
				}
			}
			for _, p := range tt.included {
				if c.Excluded(p) {
					t.Errorf("Excluded(%q) = true, want false", p)
				}
			}
			// Docker sends them anyway: the builder can always read them.
			if _, err := c.ReadFile("Dockerfile"); err != nil {
				t.Errorf("ReadFile(Dockerfile): %v", err)
			}
			if got, err := c.ReadFile(".dockerignore"); err != nil || string(got) != tt.ignore {
				t.Errorf("ReadFile(.dockerignore) = %q, %v", got, err)
			}
		})
	}
}

func TestReadFile(t *testing.T) {
	c := newTestContext(t, "Dockerfile=FROM busybox\n", "sub/", "df->Dockerfile", "escape->../../../etc/hostname")
	tests := []struct {
		name string
		want string
		kind errdefs.Kind
	}{
		{name: "Dockerfile", want: "FROM busybox\n"},
		{name: "/Dockerfile", want: "FROM busybox\n"},
		{name: "df", want: "FROM busybox\n"},
		{name: "missing", kind: errdefs.KindNotFound},
		{name: "../../../../etc/hostname", kind: errdefs.KindNotFound}, // confined: <root>/etc/hostname
		{name: "escape", kind: errdefs.KindNotFound},
		{name: "sub", kind: errdefs.KindInvalid},
	}
	for _, tt := range tests {
		got, err := c.ReadFile(tt.name)
		if tt.kind != errdefs.KindUnknown {
			if errdefs.KindOf(err) != tt.kind {
				t.Errorf("ReadFile(%q): err %v (kind %v), want kind %v", tt.name, err, errdefs.KindOf(err), tt.kind)
			}
			if tt.kind == errdefs.KindNotFound && !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("ReadFile(%q): %v is not fs.ErrNotExist", tt.name, err)
			}
			continue
		}
		if err != nil || string(got) != tt.want {
			t.Errorf("ReadFile(%q) = %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestSources(t *testing.T) {
	c := newTestContext(t,
		".dockerignore=*.log\n!keep.log\nsecret\nhidden/\n!hidden/visible.txt\n",
		"a.txt=a", "b.txt=b", "c.md=c", "x.log=x", "keep.log=k",
		"dir/one.txt=1", "dir/two.go=2", "dir/sub/three.txt=3", "other/one.txt=o",
		"secret/key=k", "hidden/visible.txt=v", "hidden/not.txt=n",
		"star*name=s",
		"link->dir", "abslink->/dir/one.txt", "outlink->../../../../etc", "badlink->nowhere",
		"secretlink->secret/key",
	)
	tests := []struct {
		patterns []string
		want     []string
		kind     errdefs.Kind
		msg      string
	}{
		{patterns: []string{"a.txt"}, want: []string{"a.txt"}},
		{patterns: []string{"/a.txt", "./b.txt"}, want: []string{"a.txt", "b.txt"}},
		{patterns: []string{"."}, want: []string{"."}},
		{patterns: []string{"/"}, want: []string{"."}},
		{patterns: []string{"dir/../a.txt"}, want: []string{"a.txt"}},
		{patterns: []string{"*.txt"}, want: []string{"a.txt", "b.txt"}},
		{patterns: []string{"?.md", "a.*"}, want: []string{"c.md", "a.txt"}},
		{patterns: []string{"[ab].txt"}, want: []string{"a.txt", "b.txt"}},
		{patterns: []string{"*/one.txt"}, want: []string{"dir/one.txt", "other/one.txt"}},
		{patterns: []string{"dir/*"}, want: []string{"dir/one.txt", "dir/sub", "dir/two.go"}},
		{patterns: []string{`star\*name`}, kind: errdefs.KindNotFound}, // no wildcard: a literal name with a backslash
		{patterns: []string{`star\**`}, want: []string{"star*name"}},
		{patterns: []string{"*.log"}, want: []string{"keep.log"}},
		{patterns: []string{"link"}, want: []string{"link"}},
		{patterns: []string{"link/sub/three.txt"}, want: []string{"link/sub/three.txt"}},
		{patterns: []string{"abslink"}, want: []string{"abslink"}},
		{patterns: []string{"hidden"}, want: []string{"hidden"}}, // excluded, but an exception keeps a file in it
		{patterns: []string{"hidden/visible.txt"}, want: []string{"hidden/visible.txt"}},
		{patterns: []string{"hidden/*"}, want: []string{"hidden/visible.txt"}},
		{patterns: []string{"*.none", "a.txt"}, want: []string{"a.txt"}},
		// Errors.
		{patterns: []string{"../x"}, kind: errdefs.KindInvalid, msg: "forbidden path outside the build context: ../x ()"},
		{patterns: []string{"dir/../../x"}, kind: errdefs.KindInvalid, msg: "forbidden path outside the build context: dir/../../x ()"},
		{patterns: []string{"/../x"}, kind: errdefs.KindInvalid},
		{patterns: []string{"missing"}, kind: errdefs.KindNotFound, msg: "file not found in build context or excluded by .dockerignore: stat missing: file does not exist"},
		{patterns: []string{"x.log"}, kind: errdefs.KindNotFound},
		{patterns: []string{"secret"}, kind: errdefs.KindNotFound},
		{patterns: []string{"secret/key"}, kind: errdefs.KindNotFound},
		{patterns: []string{"secretlink"}, kind: errdefs.KindNotFound}, // the link is there, its target is not
		{patterns: []string{"hidden/not.txt"}, kind: errdefs.KindNotFound},
		{patterns: []string{"badlink"}, kind: errdefs.KindNotFound},
		{patterns: []string{"outlink/hostname"}, kind: errdefs.KindNotFound}, // resolved inside: <root>/etc/hostname
		{patterns: []string{"*.none"}, kind: errdefs.KindNotFound, msg: "no source files were specified"},
	}
	for _, tt := range tests {
		got, err := c.Sources(tt.patterns)
		if tt.kind != errdefs.KindUnknown {
			if errdefs.KindOf(err) != tt.kind {
				t.Errorf("Sources(%q) = %q, %v (kind %v); want kind %v", tt.patterns, got, err, errdefs.KindOf(err), tt.kind)
			} else if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("Sources(%q): %q, want %q", tt.patterns, err, tt.msg)
			}
			continue
		}
		if err != nil || strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("Sources(%q) = %q, %v; want %q", tt.patterns, got, err, tt.want)
		}
	}
}

func TestExpandSources(t *testing.T) {
	root := t.TempDir()
	mkfs(t, root, "usr/local/bin/tool=t", "usr/local/bin/other=o", ".dockerignore=usr\n", "etc->usr/local")
	got, err := ExpandSources(root, []string{"/usr/local/bin/*", "etc/bin/tool"})
	if err != nil || strings.Join(got, ",") != "usr/local/bin/other,usr/local/bin/tool,etc/bin/tool" {
		t.Errorf("ExpandSources = %q, %v", got, err)
	}
	_, err = ExpandSources(root, []string{"nope"})
	if !errdefs.IsNotFound(err) || err.Error() != "stat nope: file does not exist" {
		t.Errorf("ExpandSources(nope): %v", err)
	}
}

// contextTar is a context as the docker CLI sends it.
func contextTar(t *testing.T) []byte {
	return mktar(t,
		tfile("Dockerfile", "FROM scratch\nCOPY . /\n", 0o644, 0),
		tfile(".dockerignore", "**/*.log\n", 0o644, 0),
		tdir("src/", 0o755, 0),
		tfile("src/main.go", "package main\n", 0o644, 0),
		tfile("src/debug.log", "noise", 0o644, 0),
		tfile(".wh.literal", "not a whiteout", 0o644, 0),
		tlink("src/link", "main.go"),
	)
}

func TestFromTar(t *testing.T) {
	plain := contextTar(t)
	var gz, xzb bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	xw, err := xz.NewWriter(&xzb)
	must(t, err)
	xw.Write(plain)
	xw.Close()

	// The same context as a directory: same checksum.
	dir := t.TempDir()
	mkfs(t, dir, "Dockerfile=FROM scratch\nCOPY . /\n", ".dockerignore=**/*.log\n", "src/", "src/main.go=package main\n",
		"src/debug.log=noise", ".wh.literal=not a whiteout", "src/link->main.go")
	dc, err := FromDir(dir, nil)
	must(t, err)
	defer dc.Close()
	wantSum, err := dc.Checksum(context.Background(), []string{"."})
	must(t, err)

	for _, tt := range []struct {
		name string
		data []byte
	}{{"plain", plain}, {"gzip", gz.Bytes()}, {"xz", xzb.Bytes()}} {
		t.Run(tt.name, func(t *testing.T) {
			tmp := filepath.Join(t.TempDir(), "tmp")
			c, err := FromTar(context.Background(), bytes.NewReader(tt.data), tmp, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(c.Root(), tmp+"/") {
				t.Errorf("Root() = %s, want under %s", c.Root(), tmp)
			}
			df, err := c.ReadFile("Dockerfile")
			if err != nil || string(df) != "FROM scratch\nCOPY . /\n" {
				t.Errorf("ReadFile(Dockerfile) = %q, %v", df, err)
			}
			if !c.Excluded("src/debug.log") {
				t.Error("src/debug.log not excluded")
			}
			srcs, err := c.Sources([]string{"src/*", ".wh.literal"})
			if err != nil || strings.Join(srcs, ",") != "src/link,src/main.go,.wh.literal" {
				t.Errorf("Sources = %q, %v", srcs, err)
			}
			sum, err := c.Checksum(context.Background(), []string{"."})
			if err != nil || sum != wantSum {
				t.Errorf("Checksum = %s, %v; want %s (as the same directory)", sum, err, wantSum)
			}
			must(t, c.Close())
			if _, err := os.Stat(c.Root()); !os.IsNotExist(err) {
				t.Errorf("context directory left after Close: %v", err)
			}
		})
	}

	t.Run("escaping entry", func(t *testing.T) {
		bad := mktar(t, tfile("../evil", "x", 0o644, 0))
		tmp := t.TempDir()
		_, err := FromTar(context.Background(), bytes.NewReader(bad), tmp, nil)
		if !errdefs.IsInvalid(err) {
			t.Errorf("FromTar(../evil): %v, want Invalid", err)
		}
		if ents, _ := os.ReadDir(tmp); len(ents) != 0 {
			t.Errorf("left behind: %v", ents)
		}
	})
}

func TestFromDirErrors(t *testing.T) {
	if _, err := FromDir(filepath.Join(t.TempDir(), "nope"), nil); !errdefs.IsNotFound(err) {
		t.Errorf("missing dir: %v", err)
	}
	f := filepath.Join(t.TempDir(), "file")
	must(t, os.WriteFile(f, nil, 0o644))
	if _, err := FromDir(f, nil); !errdefs.IsInvalid(err) {
		t.Errorf("file: %v", err)
	}
	d := t.TempDir()
	mkfs(t, d, ".dockerignore=!\n")
	if _, err := FromDir(d, nil); !errdefs.IsInvalid(err) {
		t.Errorf("bad .dockerignore: %v", err)
	}
}

// The parallel scan of Checksum and the walk of WriteLayer see the same
// entries in the same order.
func TestScanMatchesWalk(t *testing.T) {
	c := newTestContext(t,
		".dockerignore=**/*.log\nvendor\n!vendor/keep/\nempty\n!empty/nothing\n",
		"a/b/c/d.txt=1", "a/b/x.log=2", "a/z=3", "vendor/drop/f=4", "vendor/keep/f=5", "vendor/keep/sub/g=6",
		"empty/other=7", "l->a", "m.txt=8",
	)
	var serial []string
	w := &walker{ctx: context.Background(), exclude: c.ig.excluded}
	w.visit = func(n *node) error { serial = append(serial, n.out); return nil }
	must(t, w.walkSource(c.rootfd, ""))
	parallel, err := scanTree(context.Background(), c.rootfd, "", c.ig.excluded, c.ig.pruned,
		func(n *node) (string, bool, error) { return n.out, true, nil })
	must(t, err)
	if strings.Join(serial, ",") != strings.Join(parallel, ",") {
		t.Errorf("walk: %q\nscan: %q", serial, parallel)
	}
	want := ",.dockerignore,a,a/b,a/b/c,a/b/c/d.txt,a/z,l,m.txt,vendor,vendor/keep,vendor/keep/f,vendor/keep/sub,vendor/keep/sub/g"
	if got := strings.Join(parallel, ","); got != want {
		t.Errorf("scan:\n got %s\nwant %s", got, want)
	}
}
