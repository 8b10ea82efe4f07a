package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"golang.org/x/sys/unix"
)

// smallFS is a small ext4 on a loop device, filled on demand by a file of
// its own (outside skiff's directories).
type smallFS struct {
	t   *testing.T
	dir string
}

// newSmallFS mounts a fresh ext4 of size bytes (no reserved blocks, so
// root sees what others see). Call it before starting the daemon that uses
// it: the unmount is registered first and so runs after the daemon's
// clean-up.
func newSmallFS(t *testing.T, size int64) *smallFS {
	t.Helper()
	base := t.TempDir()
	img, dir := filepath.Join(base, "fs.img"), filepath.Join(base, "mnt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, size); err != nil {
		os.WriteFile(img, nil, 0o600)
		if err := os.Truncate(img, size); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"mkfs.ext4", "-q", "-F", "-m", "0", img}, {"mount", "-o", "loop", img, dir}} {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
	}
	t.Cleanup(func() {
		for i := 0; ; i++ {
			err := unix.Unmount(dir, 0)
			if err == nil || i == 50 {
				if err != nil {
					t.Errorf("unmount %s: %v", dir, err)
				}
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return &smallFS{t: t, dir: dir}
}

func (f *smallFS) avail() int64 {
	var st unix.Statfs_t
	if err := unix.Statfs(f.dir, &st); err != nil {
		f.t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

// fill leaves about leave bytes free.
func (f *smallFS) fill(leave int64) {
	f.t.Helper()
	n := f.avail() - leave
	if n <= 0 {
		return
	}
	fd, err := os.OpenFile(filepath.Join(f.dir, "filler"), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fd.Close()
	st, _ := fd.Stat()
	if err := unix.Fallocate(int(fd.Fd()), 0, st.Size(), n); err != nil {
		f.t.Fatalf("fill: %v", err)
	}
}

// free gives the space back.
func (f *smallFS) free() {
	os.Remove(filepath.Join(f.dir, "filler"))
}

// assertENOSPC fails unless the command failed naming the full disk.
func assertENOSPC(t *testing.T, what, out, errOut string, code int) {
	t.Helper()
	if code == 0 {
		t.Errorf("%s succeeded on a full disk", what)
		return
	}
	t.Logf("%s on a full disk: %s", what, strings.TrimSpace(errOut))
	if !strings.Contains(strings.ToLower(out+errOut), "no space left on device") {
		t.Errorf("%s: the error does not name the full disk:\nstdout: %s\nstderr: %s", what, out, errOut)
	}
}

// checkConsistent asserts that every record names data that exists:
// every container inspects and has its directory, every image inspects,
// and busybox still runs.
func (d *daemon) checkConsistent() {
	d.t.Helper()
	for _, id := range strings.Fields(d.must("ps", "-aq", "--no-trunc")) {
		d.must("inspect", id)
		if _, err := os.Stat(filepath.Join(d.root, "data", "containers", id)); err != nil {
			d.t.Errorf("container %s has no directory: %v", id, err)
		}
	}
	for _, id := range strings.Fields(d.must("images", "-q")) {
		d.must("image", "inspect", id)
	}
	if out := d.must("run", "--rm", "busybox", "echo", "ok"); out != "ok\n" {
		d.t.Errorf("busybox after a full disk: %q", out)
	}
}

// A full disk under the data root: a pull, a build, a container's writes,
// its logs and a metadata write each fail naming it, leave no record of
// missing data, and work again once space is freed, with no engine
// restart.
func TestDiskFull(t *testing.T) {
	t.Parallel()
	reg := startRegistry(t, "", "")
	ref := reg.host + "/e2e/diskfull:v1"
	img, err := random.Image(6<<20, 3)
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
	fs := newSmallFS(t, 128<<20)
	d := startDaemonSetup(t, false, func(d *daemon) {
		if err := os.Symlink(fs.dir, filepath.Join(d.root, "data")); err != nil {
			t.Fatal(err)
		}
	})
	d.importBusybox()
	data := filepath.Join(d.root, "data")
	emptyDir := func(dir string) {
		t.Helper()
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s holds %d entries after the failure", dir, len(ents))
		}
	}

	// A pull: three 6 MiB layers with 8 MiB free.
	fs.fill(8 << 20)
	out, errOut, code := d.skiff("pull", ref)
	assertENOSPC(t, "pull", out, errOut, code)
	if _, _, code := d.skiff("image", "inspect", ref); code == 0 {
		t.Error("the failed pull left an image")
	}
	emptyDir(filepath.Join(data, "content", "ingest"))
	fs.free()
	d.checkConsistent()
	d.must("pull", ref)
	if out := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", ref); out != "3\n" {
		t.Errorf("layers after the pull on a freed disk: %q", out)
	}
	d.must("rmi", ref)

	// A build whose RUN step writes 8 MiB with 12 MiB free: the step's
	// layer does not fit.
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN head -c 8000000 /dev/urandom > /big\n"), 0o644)
	fs.fill(12 << 20)
	out, errOut, code = d.skiff("build", "-t", "big", ctxDir)
	assertENOSPC(t, "build", out, errOut, code)
	if _, _, code := d.skiff("image", "inspect", "big"); code == 0 {
		t.Error("the failed build left an image")
	}
	if out := d.must("ps", "-aq"); out != "" {
		t.Errorf("the failed build left containers: %s", out)
	}
	emptyDir(filepath.Join(data, "tmp", "build"))
	fs.free()
	d.checkConsistent()
	d.must("build", "-t", "big", ctxDir)
	d.must("rmi", "big")

	// A container's writes (its upper directory is on the same disk).
	fs.fill(4 << 20)
	out, errOut, code = d.skiff("run", "--name", "writer", "busybox", "sh", "-c", "dd if=/dev/urandom of=/big bs=1M count=20")
	assertENOSPC(t, "a container's write", out, errOut, code)
	d.must("rm", "writer")
	fs.free()
	d.checkConsistent()

	// Its logs: the log write fails, the monitor says why, the container
	// and the engine go on; removing it gives the space back.
	fs.fill(2 << 20)
	id := strings.TrimSpace(d.must("run", "-d", "--name", "chatty", "busybox", "sh", "-c",
		"while :; do head -c 100000 /dev/urandom | base64; done"))
	mlog := filepath.Join(d.root, "exec", "containers", id, "monitor.log")
	d.eventually("the monitor reports the full disk", func() (bool, string) {
		b, _ := os.ReadFile(mlog)
		return strings.Contains(string(b), "no space left on device"), string(b)
	})
	if out := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Running}}", "chatty")); out != "true" {
		t.Errorf("the container stopped when its log filled the disk: running=%s", out)
	}
	d.must("logs", "--tail", "1", "chatty")
	d.must("rm", "-f", "chatty")
	fs.free()
	d.checkConsistent()
	d.must("run", "--name", "logger", "busybox", "echo", "logged")
	if out := d.must("logs", "logger"); out != "logged\n" {
		t.Errorf("logs on a freed disk: %q", out)
	}
	d.must("rm", "logger")

	// A metadata write: 1.2 MiB of labels (in pieces: one argument may
	// hold 128 KiB) make the container's record grow bbolt's file past
	// the 256 KiB left.
	var labels []string
	for i := 0; i < 12; i++ {
		labels = append(labels, "--label", fmt.Sprintf("big%d=%s", i, strings.Repeat("x", 100<<10)))
	}
	create := append(append([]string{"create", "--name", "labelled"}, labels...), "busybox", "true")
	fs.fill(256 << 10)
	out, errOut, code = d.skiff(create...)
	assertENOSPC(t, "a metadata write", out, errOut, code)
	if _, _, code := d.skiff("inspect", "labelled"); code == 0 {
		t.Error("the failed create left a container")
	}
	emptyDir(filepath.Join(data, "containers"))
	fs.free()
	d.checkConsistent()
	d.must(create...)
	d.must("rm", "labelled")
	d.checkConsistent()
}
