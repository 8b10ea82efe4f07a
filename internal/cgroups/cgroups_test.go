package cgroups

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func testPath(t *testing.T) string {
	b := make([]byte, 4)
	rand.Read(b)
	return "/skiff-test-" + hex.EncodeToString(b) + "/" + t.Name()
}

// sleeper starts a process to put into cgroups; it is killed with the test.
func sleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func readTrim(t *testing.T, p string) string {
	t.Helper()
	s, err := readFile(filepath.Dir(p), filepath.Base(p))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestV1OnHost(t *testing.T) {
	requireRoot(t)
	unified, err := IsUnified()
	if err != nil || unified {
		t.Skip("host is not cgroup v1")
	}
	path := testPath(t)
	t.Cleanup(func() {
		hs, _ := V1Hierarchies()
		for _, h := range hs {
			os.Remove(filepath.Join(h.Mountpoint, filepath.Dir(path)))
		}
	})
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Reservation: ptr(int64(32 << 20))},
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(512)), Quota: ptr(int64(20000)), Period: ptr(uint64(100000)), Cpus: "0"},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(20))},
	}
	m, err := New(path, r)
	if err != nil {
		t.Fatal(err)
	}
	if m.Unified() {
		t.Fatal("v1 host gave a v2 manager")
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	dirs := m.Dirs()
	for file, want := range map[string]string{
		"memory/memory.limit_in_bytes":      "67108864",
		"memory/memory.soft_limit_in_bytes": "33554432",
		"cpu/cpu.shares":                    "512",
		"cpu/cpu.cfs_quota_us":              "20000",
		"cpuset/cpuset.cpus":                "0",
		"pids/pids.max":                     "20",
	} {
		if got := readTrim(t, filepath.Join(dirs[filepath.Dir(file)], filepath.Base(file))); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
	// The parent cpuset got its values copied, or no task could join.
	if got := readTrim(t, filepath.Join(filepath.Dir(dirs["cpuset"]), "cpuset.mems")); got == "" {
		t.Error("parent cpuset.mems left empty")
	}

	cmd := sleeper(t)
	if err := m.Enter(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	procs, err := m.Procs()
	if err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
		t.Fatalf("procs %v %v", procs, err)
	}
	st, err := m.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// (Memory charged before Enter stays where it was: usage may be 0.)
	if st.PidsCurrent != 1 || st.PidsLimit != 20 || st.MemoryLimit != 64<<20 {
		t.Errorf("stats %+v", st)
	}
	if n, err := m.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("oom kills %d %v", n, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if s := readTrim(t, filepath.Join(dirs["freezer"], "freezer.state")); s != "FROZEN" {
		t.Errorf("freezer.state %q", s)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := m.Update(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(128 << 20))}}); err != nil {
		t.Fatal(err)
	}
	if got := readTrim(t, filepath.Join(dirs["memory"], "memory.limit_in_bytes")); got != "134217728" {
		t.Errorf("updated limit %s", got)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		t.Error("the process in the cgroup survived Destroy")
	}
	for name, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: %s still exists", name, d)
		}
	}
	if err := m.Destroy(); err != nil {
		t.Errorf("second destroy: %v", err)
	}
}

// A failed Create (the kernel refuses a value) leaves nothing behind.
func TestV1CreateFailureCleansUp(t *testing.T) {
	requireRoot(t)
	if unified, _ := IsUnified(); unified {
		t.Skip("host is not cgroup v1")
	}
	path := testPath(t)
	t.Cleanup(func() {
		hs, _ := V1Hierarchies()
		for _, h := range hs {
			os.Remove(filepath.Join(h.Mountpoint, filepath.Dir(path)))
		}
	})
	m, err := New(path, &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "4096"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err == nil {
		t.Fatal("cpuset 4096 accepted")
	}
	for name, d := range m.Dirs() {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s: %s left behind", name, d)
		}
	}
}

// cgroup2Root mounts a cgroup2 file system on a temp dir and returns a
// fresh cgroup in it for the test to use as its root: managers enable
// controllers from their root down, and the real root of the (host's)
// hierarchy is not the test's to change. On a hybrid host this is the
// nearly controller-less unified hierarchy.
func cgroup2Root(t *testing.T) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("none", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("cannot mount cgroup2: %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	root := filepath.Join(mnt, "skiff-test-"+hex.EncodeToString(b))
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(root); err != nil {
			t.Errorf("remove test cgroup: %v", err)
		}
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmount: %v", err)
		}
	})
	return root
}

func TestV2OnOwnMount(t *testing.T) {
	requireRoot(t)
	mnt := cgroup2Root(t)
	path := "/" + t.Name() + "/c"
	t.Cleanup(func() { os.Remove(filepath.Join(mnt, filepath.Dir(path))) })
	m, err := NewV2(mnt, path, &specs.LinuxResources{})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	dir := m.Dirs()[""]
	if dir != filepath.Join(mnt, path) {
		t.Fatalf("dir %s", dir)
	}

	// CLONE_INTO_CGROUP: the process is born in the cgroup.
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(d.Fd())}
	err = cmd.Start()
	d.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	procs, err := m.Procs()
	if err != nil || len(procs) != 1 || procs[0] != cmd.Process.Pid {
		t.Fatalf("procs %v %v, want [%d]", procs, err, cmd.Process.Pid)
	}
	other := sleeper(t)
	if err := m.Enter(other.Process.Pid); err != nil {
		t.Fatal(err)
	}
	if procs, _ := m.Procs(); len(procs) != 2 {
		t.Fatalf("procs after Enter: %v", procs)
	}
	time.Sleep(20 * time.Millisecond)
	st, err := m.Stats()
	if err != nil || st.CPUUsageNs == 0 {
		t.Fatalf("stats %+v %v", st, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if n, _ := keyedValue(dir, "cgroup.events", "frozen"); n != 1 {
		t.Fatal("not frozen")
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if err := m.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*exec.Cmd{cmd, other} {
		if err := c.Wait(); err == nil || c.ProcessState.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("process %d: %v", c.Process.Pid, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("%s still exists", dir)
	}
}

// A resource this host's cgroup2 has no controller for fails with a clear
// error, and the half-made cgroup is removed.
func TestV2MissingControllerIsAnError(t *testing.T) {
	requireRoot(t)
	mnt := cgroup2Root(t)
	if b, _ := os.ReadFile(filepath.Join(mnt, "cgroup.controllers")); strings.Contains(string(b), "pids") {
		t.Skip("this cgroup2 has the pids controller")
	}
	path := "/" + t.Name() + "/c"
	t.Cleanup(func() { os.Remove(filepath.Join(mnt, filepath.Dir(path))) })
	m, err := NewV2(mnt, path, &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr(int64(10))}})
	if err != nil {
		t.Fatal(err)
	}
	err = m.Create()
	if !errdefs.IsInvalid(err) || err.Error() != "cgroups: cannot set pids.max=10: not supported on this host ("+filepath.Join(mnt, path, "pids.max")+" does not exist)" {
		t.Fatalf("error %v", err)
	}
	if _, err := os.Stat(m.Dirs()[""]); !os.IsNotExist(err) {
		t.Fatal("cgroup left behind")
	}
}

func TestNewRejectsRoot(t *testing.T) {
	requireRoot(t)
	for _, p := range []string{"/", "", "/.."} {
		if _, err := New(p, nil); !errdefs.IsInvalid(err) {
			t.Errorf("New(%q): %v", p, err)
		}
	}
}
