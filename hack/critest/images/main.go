// Command images pushes look-alikes of the images critest v1.37.0 pulls
// to a local registry, under the repository paths and tags critest names
// (registry.k8s.io/e2e-test-images/busybox:1.29-2 is REGISTRY/e2e-test-
// images/busybox:1.29-2, gcr.io/k8s-staging-cri-tools/test-image-1 is
// REGISTRY/k8s-staging-cri-tools/test-image-1, registry.k8s.io/pause and
// k8s.gcr.io/pause are both REGISTRY/pause). hack/critest.sh then sends
// those registries to it through certs.d hosts.toml files.
//
// Each image is busybox plus what critest's
// specs look at: the USER of the image-user images (cri-tools'
// images/image-user, image-predefined-group), a marker file per test
// image (images/image-test), the same image under several tags
// (test-image-tags, test-image-tag), and the lookalike binary standing in
// for nginx (port 80; hostnet-nginx on 12003), httpd and nonewprivs.
// Layers and configs have fixed times, so a run pushes the same digests
// as the last. The digest-pinned test-image-digest@sha256:9700... cannot
// be reproduced: its look-alike is pushed by tag only.
//
// The busybox is Debian's dynamic one (package busybox, with the host's
// libc beside it), not busybox-static: the static build's shell runs
// applets without exec'ing /bin/NAME, so a masked /bin/ls (critest's
// MaskedPaths spec) would not stop `sh -c ls`, as it does in the real
// busybox images. Applets are hard links, as there.
//
// Usage: images REGISTRY BUSYBOX_BINARY LOOKALIKE_BINARY
//
// It is not part of skiff.
package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var epoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

type file struct {
	path string
	mode int64
	data []byte
	link string // a symbolic link to this
}

// layer is a tar layer of files (parent directories added).
func layer(files ...file) v1.Layer {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dirs := map[string]bool{}
	for _, f := range files {
		for d := parentDirs(f.path); len(d) > 0; d = d[1:] {
			if !dirs[d[0]] {
				dirs[d[0]] = true
				tw.WriteHeader(&tar.Header{Name: d[0] + "/", Mode: 0o755, Typeflag: tar.TypeDir, ModTime: epoch})
			}
		}
		if f.link != "" {
			tw.WriteHeader(&tar.Header{Name: f.path, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: f.link, ModTime: epoch})
			continue
		}
		tw.WriteHeader(&tar.Header{Name: f.path, Mode: f.mode, Size: int64(len(f.data)), Typeflag: tar.TypeReg, ModTime: epoch})
		tw.Write(f.data)
	}
	tw.Close()
	data := b.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	if err != nil {
		panic(err)
	}
	return l
}

func parentDirs(p string) []string {
	var out []string
	for i := 0; i < len(p); i++ {
		if p[i] == '/' && i > 0 {
			out = append(out, p[:i])
		}
	}
	return out
}

// busybox:1.37's /etc/passwd and /etc/group (www-data is uid 33).
const passwd = `root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
sync:x:4:100:sync:/bin:/bin/sync
mail:x:8:8:mail:/var/spool/mail:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
operator:x:37:37:Operator:/var:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
`
const group = `root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
adm:x:4:
tty:x:5:
disk:x:6:
lp:x:7:
mail:x:8:
kmem:x:9:
wheel:x:10:root
cdrom:x:11:
dialout:x:18:
floppy:x:19:
video:x:28:
audio:x:29:
tape:x:32:
www-data:x:33:
operator:x:37:
utmp:x:43:
users:x:100:
staff:x:50:
nogroup:x:65534:
`

type image struct {
	repo   string
	tags   []string
	files  []file
	cmd    []string
	user   string
	ports  []string
	etcAdd [2]string // lines added to passwd, group
}

func main() {
	if len(os.Args) != 4 {
		fmt.Fprintln(os.Stderr, "usage: images REGISTRY BUSYBOX_BINARY LOOKALIKE_BINARY")
		os.Exit(2)
	}
	reg, bbPath, lookPath := os.Args[1], os.Args[2], os.Args[3]
	look, err := os.ReadFile(lookPath)
	if err != nil {
		fail(err)
	}
	base, err := busyboxLayer(bbPath)
	if err != nil {
		fail(err)
	}
	const staging = "k8s-staging-cri-tools/"
	marker := func(n string) []file { return []file{{path: n, mode: 0o644}} }
	images := []image{
		// busybox images have pgrep and ipcs, which critest runs and
		// Debian's busybox-static lacks.
		{repo: "e2e-test-images/busybox", tags: []string{"1.29-2"}, cmd: []string{"sh"}, files: []file{
			{path: "usr/libexec/lookalike", mode: 0o755, data: look},
			{path: "usr/bin/pgrep", link: "/usr/libexec/lookalike"},
			{path: "usr/bin/ipcs", link: "/usr/libexec/lookalike"}}},
		{repo: "e2e-test-images/nginx", tags: []string{"1.14-2"}, cmd: []string{"nginx", "-g", "daemon off;"}, ports: []string{"80/tcp"},
			files: []file{{path: "usr/sbin/nginx", mode: 0o755, data: look}}},
		{repo: "e2e-test-images/httpd", tags: []string{"2.4.39-4"}, cmd: []string{"httpd-foreground"}, ports: []string{"80/tcp"},
			files: []file{{path: "usr/local/bin/httpd-foreground", mode: 0o755, data: look}}},
		{repo: "e2e-test-images/nonewprivs", tags: []string{"1.3"}, cmd: []string{"nnp"},
			files: []file{{path: "usr/local/bin/nnp", mode: 0o4755, data: look}}},
		{repo: "pause", tags: []string{"3.9"}, cmd: []string{"/pause"},
			files: []file{{path: "pause", mode: 0o755, data: look}}},
		{repo: staging + "hostnet-nginx-" + runtime.GOARCH, tags: []string{"latest"}, cmd: []string{"nginx", "-port", "12003"},
			ports: []string{"12003/tcp"}, files: []file{{path: "usr/sbin/nginx", mode: 0o755, data: look}}},
		{repo: staging + "test-image-user-uid", tags: []string{"latest"}, user: "1002"},
		{repo: staging + "test-image-user-username", tags: []string{"latest"}, user: "www-data"},
		{repo: staging + "test-image-user-uid-group", tags: []string{"latest"}, user: "1003:1004"},
		{repo: staging + "test-image-user-username-group", tags: []string{"latest"}, user: "www-data:1004"},
		{repo: staging + "test-image-predefined-group", tags: []string{"latest"}, user: "1000",
			etcAdd: [2]string{"default-user:x:1000:1000:Linux User,,,:/home/default-user:/bin/sh\n",
				"default-user:x:1000:\ngroup-defined-in-image:x:50000:default-user\n"}},
		{repo: staging + "test-image-tags", tags: []string{"1", "2", "3"}, files: marker("same-image")},
		{repo: staging + "test-image-tag", tags: []string{"test", "all"}, files: marker("test-image-tag")},
	}
	for _, n := range []string{"test-image-1", "test-image-2", "test-image-3", "test-image-latest", "test-image-digest"} {
		images = append(images, image{repo: staging + n, tags: []string{"latest"}, files: marker(n)})
	}
	for _, im := range images {
		if err := push(reg, base, im); err != nil {
			fail(fmt.Errorf("%s: %w", im.repo, err))
		}
	}
}

func push(reg string, base v1.Layer, im image) error {
	layers := []v1.Layer{base, layer(
		file{path: "etc/passwd", mode: 0o644, data: []byte(passwd + im.etcAdd[0])},
		file{path: "etc/group", mode: 0o644, data: []byte(group + im.etcAdd[1])},
		file{path: "var/run/.keep", mode: 0o644},
	)}
	if len(im.files) > 0 {
		layers = append(layers, layer(im.files...))
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return err
	}
	cmd := im.cmd
	if cmd == nil {
		cmd = []string{"sh"}
	}
	cfg := v1.Config{
		Env:  []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
		Cmd:  cmd,
		User: im.user,
	}
	if len(im.ports) > 0 {
		cfg.ExposedPorts = map[string]struct{}{}
		for _, p := range im.ports {
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return err
	}
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Created = v1.Time{Time: epoch}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	for _, tag := range im.tags {
		ref, err := name.NewTag(reg+"/"+im.repo+":"+tag, name.Insecure)
		if err != nil {
			return err
		}
		if err := remote.Write(ref, img); err != nil {
			return err
		}
		fmt.Printf("%s %s\n", ref, d)
	}
	return nil
}

// busyboxLayer is a root filesystem of the busybox binary at path, its
// applets as hard links in /bin, the shared libraries it needs (from the
// host, found with ldd) and the usual empty directories.
func busyboxLayer(path string) (v1.Layer, error) {
	bb, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	list, err := exec.Command(path, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", path, err)
	}
	ldd, err := exec.Command("ldd", path).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", path, err)
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Name: name + "/", Mode: mode, Typeflag: tar.TypeDir, ModTime: epoch})
	}
	reg := func(name string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: epoch})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "dev", "etc", "home", "lib", "lib64", "proc", "root", "sbin", "sys", "usr", "usr/bin", "usr/sbin", "usr/lib", "var", "var/www"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	dir("var/tmp", 0o1777)
	reg("bin/busybox", 0o755, bb)
	for _, a := range strings.Fields(string(list)) {
		if a != "busybox" {
			tw.WriteHeader(&tar.Header{Name: "bin/" + a, Mode: 0o755, Typeflag: tar.TypeLink, Linkname: "bin/busybox", ModTime: epoch})
		}
	}
	// "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and the
	// loader's "/lib64/ld-linux-x86-64.so.2 (0x...)".
	dirs := map[string]bool{}
	for _, line := range strings.Split(string(ldd), "\n") {
		f := strings.Fields(line)
		lib := ""
		switch {
		case len(f) >= 3 && f[1] == "=>":
			lib = f[2]
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			lib = f[0]
		}
		if lib == "" {
			continue
		}
		data, err := os.ReadFile(lib) // follows the symlink
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(lib, "/")
		for _, d := range parentDirs(name) {
			if !dirs[d] && d != "lib" && d != "lib64" {
				dirs[d] = true
				dir(d, 0o755)
			}
		}
		reg(name, 0o755, data)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	data := b.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "images:", err)
	os.Exit(1)
}
