package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cpuUsageNs reads a container's cumulative CPU time from its cgroup, on
// either hierarchy.
func cpuUsageNs(t *testing.T, d *daemon, id string) int64 {
	t.Helper()
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", d.cgParent, id, "cpuacct.usage")); err == nil {
		n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		return n
	}
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", d.cgParent, id, "cpu.stat"))
	if err != nil {
		t.Fatalf("no cpu accounting for %s: %v", id, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n * 1000
		}
	}
	t.Fatal("no usage_usec in cpu.stat")
	return 0
}

// The seed articles' example: a busy loop under --cpus 0.2 gets about 20% of a core.
func TestCPULimit(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	id := strings.TrimSpace(d.must("run", "-d", "--cpus", "0.2", "busybox", "sh", "-c", "while :; do :; done"))
	time.Sleep(300 * time.Millisecond)
	a := cpuUsageNs(t, d, id)
	start := time.Now()
	time.Sleep(2 * time.Second)
	used := float64(cpuUsageNs(t, d, id)-a) / float64(time.Since(start).Nanoseconds())
	if used < 0.12 || used > 0.28 {
		t.Errorf("busy loop under --cpus 0.2 used %.0f%% of a core", used*100)
	}
	d.must("rm", "-f", id)
	// The cgroup goes with the container.
	for _, ctrl := range []string{"cpu", "memory", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", ctrl, d.cgParent, id)); err == nil {
			t.Errorf("cgroup %s of %s still exists", ctrl, id)
		}
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	// tail buffers an endless line from /dev/zero until the limit kills it.
	_, _, code := d.skiff("run", "--name", "oom", "-m", "16m", "--memory-swap", "16m", "busybox", "sh", "-c", "tail /dev/zero")
	if code != 137 {
		t.Errorf("OOM run exited %d, want 137", code)
	}
	if out := d.must("inspect", "-f", "{{.State.OOMKilled}} {{.State.ExitCode}}", "oom"); out != "true 137\n" {
		t.Errorf("inspect after OOM: %q", out)
	}
	// Limits show up in the cgroup while running.
	id := strings.TrimSpace(d.must("run", "-d", "-m", "32m", "--pids-limit", "20", "--cpu-shares", "512", "busybox", "sleep", "60"))
	if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/memory", d.cgParent, id, "memory.limit_in_bytes")); err == nil {
		if strings.TrimSpace(string(b)) != strconv.Itoa(32<<20) {
			t.Errorf("memory.limit_in_bytes = %s", b)
		}
	} else if b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", d.cgParent, id, "memory.max")); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(32<<20) {
		t.Errorf("memory limit not applied: %q %v", b, err)
	}
	// Forks beyond the pids limit fail inside the container.
	out, _, _ := d.skiff("exec", id, "sh", "-c", "for i in $(seq 1 40); do sleep 5 & done 2>&1 | head -1; echo done")
	if !strings.Contains(out, "done") {
		t.Errorf("pids-limit exec: %q", out)
	}
	if b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/pids", d.cgParent, id, "pids.max")); len(b) > 0 && strings.TrimSpace(string(b)) != "20" {
		t.Errorf("pids.max = %s", b)
	}
}

func TestImages(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.must("import", "-c", "CMD [\"echo\", \"from-cmd\"]", "-c", "ENV GREETING=hi", "-c", "WORKDIR /tmp", "-c", "LABEL a=b", busyboxTar, "mybox:1")
	if out := d.must("run", "--rm", "mybox:1"); out != "from-cmd\n" {
		t.Errorf("CMD from --change: %q", out)
	}
	if out := d.must("run", "--rm", "mybox:1", "sh", "-c", "echo $GREETING $(pwd)"); out != "hi /tmp\n" {
		t.Errorf("ENV/WORKDIR from --change: %q", out)
	}
	// Import from stdin.
	f, _ := os.Open(busyboxTar)
	defer f.Close()
	if _, errOut, code := d.skiffIn(f, "import", "-", "stdinbox"); code != 0 {
		t.Fatalf("import -: %d %s", code, errOut)
	}
	d.must("tag", "mybox:1", "docker.io/library/other:2")
	out := d.must("images", "--format", "{{.Repository}}:{{.Tag}}")
	for _, want := range []string{"mybox:1", "other:2", "stdinbox:latest"} {
		if !strings.Contains(out, want) {
			t.Errorf("images lacks %s: %q", want, out)
		}
	}
	if out := d.must("image", "inspect", "-f", "{{.Config.Labels}}", "mybox:1"); !strings.Contains(out, "a:b") {
		t.Errorf("labels: %q", out)
	}
	if out := d.must("rmi", "other:2"); !strings.Contains(out, "Untagged: other:2") {
		t.Errorf("rmi of one tag: %q", out)
	}
	// An image in use can't be removed without -f.
	d.must("create", "--name", "user", "mybox:1")
	if _, errOut, code := d.skiff("rmi", "mybox:1"); code == 0 || !strings.Contains(errOut, "conflict") {
		t.Errorf("rmi in use: %d %q", code, errOut)
	}
	d.must("rm", "user")
	d.must("rmi", "mybox:1")
	if _, _, code := d.skiff("image", "inspect", "mybox:1"); code == 0 {
		t.Error("image still there after rmi")
	}
	if _, _, code := d.skiff("run", "--rm", "stdinbox", "true"); code != 0 {
		t.Error("the other image broke when its twin was removed")
	}
}

// On a pure cgroup v2 host (simulated: the daemon sees a cgroup2 mount at
// /sys/fs/cgroup, which is this host's unified hierarchy) containers run in
// a v2 cgroup, and limits the hierarchy can't enforce fail clearly.
func TestCgroupV2Host(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err != nil {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	d := startDaemonWith(t, true)
	d.importBusybox()
	if out := d.must("info", "--format", "{{.CgroupVersion}}"); out != "2\n" {
		t.Errorf("CgroupVersion %q, want 2", out)
	}
	if out := d.must("run", "--rm", "busybox", "sh", "-c", "grep '^0::' /proc/self/cgroup"); out != "0::/\n" {
		t.Errorf("cgroup inside the container: %q", out)
	}
	id := strings.TrimSpace(d.must("run", "-d", "busybox", "sleep", "60"))
	dir := filepath.Join("/sys/fs/cgroup/unified", d.cgParent, id)
	procs, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil || len(strings.Fields(string(procs))) == 0 {
		t.Errorf("container cgroup %s: %q %v", dir, procs, err)
	}
	// An exec is born in the container's cgroup too (outside it, its
	// cgroup namespace would show it above the root: 0::/../..).
	if out := d.must("exec", id, "grep", "^0::", "/proc/self/cgroup"); out != "0::/\n" {
		t.Errorf("cgroup of an exec: %q", out)
	}
	d.must("rm", "-f", id)
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("cgroup %s left after rm", dir)
	}
	ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	_, errOut, code := d.skiff("run", "--rm", "-m", "32m", "busybox", "true")
	if strings.Contains(string(ctrls), "memory") {
		if code != 0 {
			t.Errorf("-m on v2 with the memory controller: %d %q", code, errOut)
		}
	} else if code != 125 || !strings.Contains(errOut, "memory") {
		t.Errorf("-m without a v2 memory controller: exit %d %q, want 125 and a clear error", code, errOut)
	}
}
