package runtime

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/skiff-dev/skiff/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
)

// shimPath is a skiff-shim built for these tests (TestMain), so they drive
// the real init and exec.
var shimPath string

func TestMain(m *testing.M) {
	code := func() int {
		if os.Geteuid() == 0 {
			dir, err := os.MkdirTemp("", "skiff-runtime-test-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			shimPath = filepath.Join(dir, "skiff-shim")
			out, err := exec.Command("go", "build", "-o", shimPath, "github.com/skiff-dev/skiff/cmd/skiff-shim").CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "build skiff-shim: %v\n%s", err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// busyboxRoot is testutil.BusyboxRoot, named for this package's tests.
func busyboxRoot(t testing.TB) string { return testutil.BusyboxRoot(t) }

var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// testSpec is a spec like the one the engine builds for `docker run`, with
// its own cgroup path (removed with the test).
func testSpec(t testing.TB, root string, args ...string) *specs.Spec {
	t.Helper()
	parent := "/skiff-test-" + randSuffix()
	t.Cleanup(func() { removeCgroupParent(parent) })
	return &specs.Spec{
		Version:  specs.Version,
		Hostname: "testhost",
		Root:     &specs.Root{Path: root},
		Process: &specs.Process{
			Args:         args,
			Env:          []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cwd:          "/",
			Capabilities: &specs.LinuxCapabilities{Bounding: defaultCaps, Effective: defaultCaps, Permitted: defaultCaps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=67108864"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: parent + "/" + strings.ReplaceAll(t.Name(), "/", "_"),
			Resources:   &specs.LinuxResources{},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}, {Type: specs.NetworkNamespace},
			},
			MaskedPaths: []string{
				"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
				"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
			},
			ReadonlyPaths: []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"},
		},
		Annotations: map[string]string{},
	}
}

// removeCgroupParent removes a test's parent cgroup directory in every
// hierarchy (the runtime removes only the container's own).
func removeCgroupParent(parent string) {
	if hs, err := cgroups.V1Hierarchies(); err == nil {
		for _, h := range hs {
			os.Remove(filepath.Join(h.Mountpoint, parent))
		}
	}
	os.Remove(filepath.Join(cgroups.DefaultRoot, parent))
}

type result struct {
	stdout, stderr string
	status         ExitStatus
	startErr       error
}

// runContainer creates, starts and waits for a container, collects its
// output and destroys it, then checks nothing is left behind.
func runContainer(t *testing.T, spec *specs.Spec) result {
	t.Helper()
	c, outR, errR := createContainer(t, spec)
	var res result
	var wg sync.WaitGroup
	var stdout, stderr bytes.Buffer
	wg.Add(2)
	go func() { defer wg.Done(); io.Copy(&stdout, outR) }()
	go func() { defer wg.Done(); io.Copy(&stderr, errR) }()
	res.startErr = c.Start()
	st, err := c.Wait()
	if err != nil {
		t.Fatalf("wait: %v", err)
	}
	res.status = st
	destroy(t, c, spec)
	wg.Wait()
	res.stdout, res.stderr = stdout.String(), stderr.String()
	return res
}

// createContainer creates a container with stdout and stderr on pipes.
func createContainer(t *testing.T, spec *specs.Spec) (*Container, *os.File, *os.File) {
	t.Helper()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c, err := Create(ctx, CreateOpts{Spec: spec, ShimPath: shimPath, Stdout: outW, Stderr: errW})
	outW.Close()
	errW.Close()
	if err != nil {
		outR.Close()
		errR.Close()
		t.Fatalf("create: %v", err)
	}
	t.Cleanup(func() { outR.Close(); errR.Close() })
	return c, outR, errR
}

// destroy destroys c and checks that its cgroup directories and mounts are
// gone from the host.
func destroy(t testing.TB, c *Container, spec *specs.Spec) {
	t.Helper()
	if err := c.Destroy(); err != nil {
		t.Errorf("destroy: %v", err)
	}
	if cg := c.Cgroup(); cg != nil {
		for name, dir := range cg.Dirs() {
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("cgroup %s directory %s left behind", name, dir)
			}
		}
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), spec.Root.Path) {
		t.Errorf("mount under %s left on the host", spec.Root.Path)
	}
}
