package tests

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/crypto/bcrypt"
)

// testRegistry is Debian's docker-registry (the reference implementation)
// on 127.0.0.1 with its own storage and config.
type testRegistry struct {
	host    string // 127.0.0.1:PORT
	storage string
	cmd     *exec.Cmd
}

// startRegistry starts docker-registry; with user set it requires htpasswd
// basic auth for user/password.
func startRegistry(t *testing.T, user, password string) *testRegistry {
	t.Helper()
	return startRegistryTLS(t, user, password, "")
}

// startRegistryTLS is startRegistry with tlsYAML (the http.tls section of
// docker-registry's config, indented under http:) serving HTTPS.
func startRegistryTLS(t *testing.T, user, password, tlsYAML string) *testRegistry {
	t.Helper()
	bin, err := exec.LookPath("docker-registry")
	if err != nil {
		t.Fatalf("docker-registry not installed (%v): run hack/deps.sh (Debian package docker-registry)", err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	host := l.Addr().String()
	l.Close()
	r := &testRegistry{host: host, storage: filepath.Join(dir, "storage")}
	auth := ""
	if user != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(user+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: skiff-test\n    path: %s\n", htpasswd)
	}
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s
%s`, r.storage, host, tlsYAML, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "serve", cfgPath)
	r.cmd.Stdout, r.cmd.Stderr = logf, logf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		var err error
		if tlsYAML != "" {
			// HTTPS with client certificates: listening is enough.
			var c net.Conn
			if c, err = net.Dial("tcp", host); err == nil {
				c.Close()
				return r
			}
		} else {
			var resp *http.Response
			if resp, err = http.Get("http://" + host + "/v2/"); err == nil {
				resp.Body.Close()
				return r
			}
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
			t.Fatalf("docker-registry did not start: %v\n%s", err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeCompressed writes busyboxTar compressed with gzip or zstd.
func writeCompressed(t *testing.T, path, kind string) {
	t.Helper()
	src, err := os.ReadFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	var w io.WriteCloser
	if kind == "gzip" {
		w = gzip.NewWriter(&buf)
	} else {
		w, _ = zstd.NewWriter(&buf)
	}
	w.Write(src)
	w.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func countEntries(t *testing.T, dir string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return len(ents)
}

func TestRegistryPushPullRun(t *testing.T) {
	reg := startRegistry(t, "", "")
	d := startDaemon(t)
	d.importBusybox()
	dir := t.TempDir()
	gz, zst := filepath.Join(dir, "bb.tar.gz"), filepath.Join(dir, "bb.tar.zst")
	writeCompressed(t, gz, "gzip")
	writeCompressed(t, zst, "zstd")
	d.must("import", gz, "bbgz")
	d.must("import", zst, "bbzst")

	plain, gzRef, zstRef := reg.host+"/e2e/busybox:v1", reg.host+"/e2e/bbgz:latest", reg.host+"/e2e/bbzst:latest"
	d.must("tag", "busybox", plain)
	d.must("tag", "bbgz", gzRef)
	d.must("tag", "bbzst", zstRef)
	out := d.must("push", plain)
	if !strings.Contains(out, "The push refers to repository ["+reg.host+"/e2e/busybox]") || !strings.Contains(out, "v1: digest: sha256:") {
		t.Fatalf("push output:\n%s", out)
	}
	// Pushing again skips the blob the registry has.
	if out := d.must("push", plain); !strings.Contains(out, "Layer already exists") {
		t.Fatalf("second push:\n%s", out)
	}
	d.must("push", gzRef)
	d.must("push", zstRef)

	for _, r := range []string{"busybox", "bbgz", "bbzst", plain, gzRef, zstRef} {
		d.must("rmi", r)
	}
	if n := countEntries(t, filepath.Join(d.root, "data", "content", "blobs", "sha256")); n != 0 {
		t.Fatalf("%d blobs left after rmi", n)
	}

	out = d.must("pull", plain)
	for _, want := range []string{"Pulling from e2e/busybox", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + plain, "\n" + plain + "\n"} {
		if !strings.Contains("\n"+out, want) {
			t.Fatalf("pull output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("pull output:\n%s", out)
	if out := d.must("pull", plain); !strings.Contains(out, "Status: Image is up to date for "+plain) {
		t.Fatalf("second pull:\n%s", out)
	}
	if out := d.must("run", "--rm", plain, "echo", "pulled-ok"); out != "pulled-ok\n" {
		t.Fatalf("run: %q", out)
	}
	// An image on top of the pulled one: its base layer is not fetched again.
	twoRef := reg.host + "/e2e/two:v1"
	pushTwoLayerImage(t, plain, twoRef)
	out = d.must("pull", twoRef)
	if strings.Count(out, "Already exists") != 1 || strings.Count(out, "Pull complete") != 1 {
		t.Fatalf("pull of an image sharing a layer:\n%s", out)
	}
	if out := d.must("run", "--rm", twoRef, "cat", "/added.txt"); out != "second layer\n" {
		t.Fatalf("run two-layer image: %q", out)
	}
	d.must("rmi", twoRef)
	inspect := d.must("image", "inspect", "--format", "{{json .RepoDigests}}", plain)
	if !strings.Contains(inspect, reg.host+"/e2e/busybox@sha256:") {
		t.Fatalf("RepoDigests: %s", inspect)
	}
	// Pushing to another repository of the same registry mounts the layer.
	other := reg.host + "/e2e/copy:v1"
	d.must("tag", plain, other)
	if out := d.must("push", other); !strings.Contains(out, "Mounted from e2e/busybox") {
		t.Fatalf("cross-repository push:\n%s", out)
	}

	// run pulls a missing image by itself; gzip and zstd layers unpack.
	for _, r := range []string{gzRef, zstRef} {
		out, errOut, code := d.skiff("run", "--rm", r, "echo", "auto-pulled")
		if code != 0 || out != "auto-pulled\n" || !strings.Contains(errOut, "Unable to find image") {
			t.Fatalf("run %s: exit %d\nstdout: %s\nstderr: %s", r, code, out, errOut)
		}
	}

	// The real docker CLI pulls through skiff too.
	d.must("rmi", plain, other)
	dout, derr, code := d.docker("pull", plain)
	if code != 0 || !strings.Contains(dout, "Downloaded newer image") {
		t.Fatalf("docker pull: exit %d\n%s\n%s", code, dout, derr)
	}
	t.Logf("docker pull output:\n%s", dout)
	if out := d.must("run", "--rm", plain, "echo", "docker-pulled"); out != "docker-pulled\n" {
		t.Fatalf("run after docker pull: %q", out)
	}
	// Unknown tags are reported as docker does.
	_, errOut, code := d.skiff("pull", reg.host+"/e2e/busybox:nope")
	if code != 1 || !strings.Contains(errOut, "manifest unknown") {
		t.Fatalf("pull of an unknown tag: exit %d: %s", code, errOut)
	}
}

func TestRegistryAuthLoginLogout(t *testing.T) {
	reg := startRegistry(t, "skiffuser", "s3cret-pass")
	d := startDaemon(t)
	d.importBusybox()
	ref := reg.host + "/private/busybox:latest"
	d.must("tag", "busybox", ref)

	if _, errOut, code := d.skiff("push", ref); code == 0 {
		t.Fatalf("push without login succeeded: %s", errOut)
	}
	if _, errOut, code := d.skiffIn(strings.NewReader("wrong\n"), "login", "-u", "skiffuser", "--password-stdin", reg.host); code == 0 || !strings.Contains(strings.ToLower(errOut), "unauthorized") {
		t.Fatalf("login with a wrong password: exit %d: %s", code, errOut)
	}
	out, errOut, code := d.skiffIn(strings.NewReader("s3cret-pass\n"), "login", "-u", "skiffuser", "--password-stdin", reg.host)
	if code != 0 || !strings.Contains(out, "Login Succeeded") {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	cfg, err := os.ReadFile(filepath.Join(d.root, "dockercfg", "config.json"))
	if err != nil || !strings.Contains(string(cfg), reg.host) {
		t.Fatalf("config.json: %v\n%s", err, cfg)
	}
	d.must("push", ref)
	d.must("rmi", "busybox", ref)
	d.must("pull", ref)
	if out := d.must("run", "--rm", ref, "echo", "private-ok"); out != "private-ok\n" {
		t.Fatalf("run: %q", out)
	}
	d.must("rmi", ref)
	// The docker CLI sends the same credentials from the same config.
	if dout, derr, code := d.docker("pull", ref); code != 0 {
		t.Fatalf("docker pull with credentials: exit %d\n%s\n%s", code, dout, derr)
	}
	d.must("rmi", ref)

	if out := d.must("logout", reg.host); !strings.Contains(out, "Removing login credentials for "+reg.host) {
		t.Fatalf("logout: %s", out)
	}
	_, errOut, code = d.skiff("pull", ref)
	if code == 0 || !strings.Contains(errOut, "pull access denied") {
		t.Fatalf("pull after logout: exit %d: %s", code, errOut)
	}
}

func TestRegistryCorruptBlobStoresNothing(t *testing.T) {
	reg := startRegistry(t, "", "")
	d := startDaemon(t)
	d.importBusybox()
	ref := reg.host + "/e2e/corrupt:v1"
	d.must("tag", "busybox", ref)
	d.must("push", ref)
	d.must("rmi", "busybox", ref)

	// Flip bytes in the layer blob inside the registry's storage.
	blobs := filepath.Join(reg.storage, "docker", "registry", "v2", "blobs", "sha256")
	var biggest string
	var size int64
	filepath.Walk(blobs, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
		return nil
	})
	if biggest == "" {
		t.Fatal("no blob in the registry storage")
	}
	f, err := os.OpenFile(biggest, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("corrupted!"), size/2)
	f.Close()

	data := filepath.Join(d.root, "data")
	snapsBefore := countEntries(t, filepath.Join(data, "snapshots"))
	_, errOut, code := d.skiff("pull", ref)
	if code == 0 || !strings.Contains(errOut, "verif") {
		t.Fatalf("pull of a corrupt blob: exit %d: %s", code, errOut)
	}
	if out := d.must("images", "-q"); out != "" {
		t.Fatalf("images after a failed pull: %q", out)
	}
	if n := countEntries(t, filepath.Join(data, "content", "blobs", "sha256")); n != 0 {
		t.Fatalf("%d blobs stored by a failed pull", n)
	}
	if n := countEntries(t, filepath.Join(data, "snapshots")); n != snapsBefore {
		t.Fatalf("%d snapshots left by a failed pull", n)
	}
	// run of the corrupt image fails the same way, with exit 125.
	if _, _, code := d.skiff("run", "--rm", ref, "true"); code != 125 {
		t.Fatalf("run of a corrupt image: exit %d, want 125", code)
	}
}

// pushTwoLayerImage pushes base plus one layer holding /added.txt as ref,
// with go-containerregistry as a third-party client.
func pushTwoLayerImage(t *testing.T, base, ref string) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	body := "second layer\n"
	tw.WriteHeader(&tar.Header{Name: "added.txt", Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
	tw.Write([]byte(body))
	tw.Close()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(tb.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	bref, err := name.ParseReference(base)
	if err != nil {
		t.Fatal(err)
	}
	bimg, err := remote.Image(bref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(bimg, layer)
	if err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}
