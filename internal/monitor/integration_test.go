package monitor

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/skiff-dev/skiff/internal/testutil"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// shimPath is a skiff-shim built by buildShim (as root only): the
// integration tests run the real monitor, runtime and init. When it does
// not build, those tests fail with shimErr and the others still run.
var (
	shimPath string
	shimErr  error
)

func buildShim() (cleanup func(), err error) {
	if os.Geteuid() != 0 {
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "skiff-monitor-test-")
	if err != nil {
		return nil, err
	}
	shimPath = filepath.Join(dir, "skiff-shim")
	out, err := exec.Command("go", "build", "-o", shimPath, "github.com/skiff-dev/skiff/cmd/skiff-shim").CombinedOutput()
	if err != nil {
		shimErr = fmt.Errorf("build skiff-shim: %v\n%s", err, out)
	}
	return func() { os.RemoveAll(dir) }, nil
}

func requireShim(t testing.TB) {
	t.Helper()
	if shimPath == "" {
		t.Skip("needs root (to build and run skiff-shim containers)")
	}
	if shimErr != nil {
		t.Fatal(shimErr)
	}
}

func randSuffix() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// busyboxRoot is testutil.BusyboxRoot, named for this package's tests.
func busyboxRoot(t testing.TB) string { return testutil.BusyboxRoot(t) }

// realBundle writes config.json (a container like `docker run` makes, in a
// cgroup of its own) and monitor.json; it checks at the end of the test that
// the cgroup is gone and removes its parent.
func realBundle(t testing.TB, root string, cfg Config, args ...string) string {
	t.Helper()
	dir := t.TempDir()
	parent := "skiff-monitor-test-" + randSuffix()
	cgPath := "/" + parent + "/" + strings.ReplaceAll(t.Name(), "/", "_")
	t.Cleanup(func() {
		hs, _ := filepath.Glob("/sys/fs/cgroup/*")
		for _, h := range hs {
			if _, err := os.Stat(filepath.Join(h, cgPath)); err == nil {
				t.Errorf("cgroup %s left behind", filepath.Join(h, cgPath))
				os.Remove(filepath.Join(h, cgPath))
			}
			os.Remove(filepath.Join(h, parent))
		}
	})
	caps := []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_SETGID", "CAP_SETUID", "CAP_KILL"}
	spec := &specs.Spec{
		Version:  specs.Version,
		Hostname: "monitortest",
		Root:     &specs.Root{Path: root},
		Process: &specs.Process{
			Args: args, Cwd: "/",
			Env:          []string{"PATH=/bin"},
			Capabilities: &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755", "size=65536k"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: cgPath,
			Resources:   &specs.LinuxResources{},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.NetworkNamespace},
			},
		},
	}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(dir, "c-json.log")
	}
	if cfg.LogMaxFiles == 0 {
		cfg.LogMaxFiles = 1
	}
	cfg.ShimPath = shimPath
	b, _ = json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// spawnReal spawns the real monitor and makes sure it is gone at the end.
func spawnReal(t testing.TB, bundle string) *os.Process {
	t.Helper()
	proc, err := Spawn(ctxT(t), shimPath, bundle)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if c, err := Dial(bundle); err == nil {
			c.Kill(context.Background(), syscall.SIGKILL)
		}
		done := make(chan struct{})
		go func() { proc.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("monitor still running")
			proc.Kill()
		}
	})
	return proc
}

func monitorExited(t testing.TB, proc *os.Process) {
	t.Helper()
	st, err := proc.Wait()
	if err != nil || !st.Success() {
		t.Errorf("monitor exit: %v %v", st, err)
	}
}

func TestRealContainer(t *testing.T) {
	requireShim(t)
	bundle := realBundle(t, busyboxRoot(t), Config{ID: "real"}, "sh", "-c", "echo hello; echo oops >&2; exit 3")
	proc := spawnReal(t, bundle)
	c, err := Dial(bundle)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctxT(t), false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if pid, err := c.Start(ctxT(t)); err != nil || pid <= 0 {
		t.Fatalf("start: %d %v", pid, err)
	}
	out, errOut, err := demux(conn)
	if err != nil || string(out) != "hello\n" || string(errOut) != "oops\n" {
		t.Errorf("attached: %q %q %v", out, errOut, err)
	}
	ex, err := c.Wait(ctxT(t))
	if err != nil || ex.ExitCode != 3 {
		t.Errorf("wait: %+v %v", ex, err)
	}
	monitorExited(t, proc)
	if rec, err := ReadExit(bundle); err != nil || rec != ex {
		t.Errorf("exit.json %+v %v", rec, err)
	}
	b, _ := os.ReadFile(filepath.Join(bundle, "c-json.log"))
	if !bytes.Contains(b, []byte(`{"log":"hello\n","stream":"stdout","time":"`)) ||
		!bytes.Contains(b, []byte(`{"log":"oops\n","stream":"stderr","time":"`)) {
		t.Errorf("log:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(bundle, SocketFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket: %v", err)
	}
}

func TestRealStartFailure(t *testing.T) {
	requireShim(t)
	bundle := realBundle(t, busyboxRoot(t), Config{}, "/no/such/program")
	proc := spawnReal(t, bundle)
	c, _ := Dial(bundle)
	_, err := c.Start(ctxT(t))
	var se *StartError
	if !errors.As(err, &se) || errdefs.KindOf(err) != errdefs.KindCommandNotFound || se.ExitCode != 127 {
		t.Fatalf("start: %v", err)
	}
	monitorExited(t, proc)
	if ex, err := ReadExit(bundle); err != nil || ex.ExitCode != 127 || ex.Error == "" {
		t.Errorf("exit.json %+v %v", ex, err)
	}
}

func TestRealStdinAndKill(t *testing.T) {
	requireShim(t)
	bundle := realBundle(t, busyboxRoot(t), Config{OpenStdin: true}, "cat")
	proc := spawnReal(t, bundle)
	c, _ := Dial(bundle)
	conn, err := c.Attach(ctxT(t), true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ping\n"))
	frame := make([]byte, 8+5)
	if _, err := io.ReadFull(conn, frame); err != nil || string(frame[8:]) != "ping\n" {
		t.Fatalf("echo: %q %v", frame, err)
	}
	// cat is pid 1 of its namespace: SIGTERM without a handler is ignored
	// there; SIGKILL from outside is not.
	if err := c.Kill(ctxT(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != 137 {
		t.Errorf("wait: %+v %v", ex, err)
	}
	monitorExited(t, proc)
}

// The monitor and its container outlive the process that spawned them.
func TestRealMonitorSurvivesSpawner(t *testing.T) {
	requireShim(t)
	bundle := realBundle(t, busyboxRoot(t), Config{}, "sh", "-c", "echo up; exec sleep 100")
	mpid := spawnOrphan(t, "MONITOR_TEST_BUNDLE="+bundle, "MONITOR_TEST_SHIM="+shimPath)
	c, err := Dial(bundle)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctxT(t), false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 8+3)
	if _, err := io.ReadFull(conn, frame); err != nil || string(frame[8:]) != "up\n" {
		t.Fatalf("output: %q %v", frame, err)
	}
	if err := c.Kill(ctxT(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != 137 {
		t.Errorf("wait: %+v %v", ex, err)
	}
	waitOrphan(t, mpid)
	if b, _ := os.ReadFile(filepath.Join(bundle, "c-json.log")); !bytes.Contains(b, []byte(`"log":"up\n"`)) {
		t.Errorf("log: %s", b)
	}
}

// BenchmarkRealStartupTime reports the monitor's share of `run --rm
// busybox true`: spawn (monitor + init set up), start, wait until the
// monitor is gone.
func BenchmarkRealStartupTime(b *testing.B) {
	t := b
	requireShim(t)
	root := busyboxRoot(t)
	var best time.Duration
	var phases string
	for i := 0; b.Loop(); i++ {
		bundle := realBundle(t, root, Config{}, "true")
		t0 := time.Now()
		proc, err := Spawn(ctxT(t), shimPath, bundle)
		if err != nil {
			t.Fatal(err)
		}
		t1 := time.Now()
		c, _ := Dial(bundle)
		conn, err := c.Attach(ctxT(t), false, true, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		t2 := time.Now()
		io.Copy(io.Discard, conn)
		if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != 0 {
			t.Fatalf("wait %+v %v", ex, err)
		}
		t3 := time.Now()
		monitorExited(t, proc)
		t4 := time.Now()
		if d := t4.Sub(t0); i == 0 || d < best {
			best = d
			phases = fmt.Sprintf("spawn %v, attach+start %v, output+wait %v, monitor exit %v", t1.Sub(t0), t2.Sub(t1), t3.Sub(t2), t4.Sub(t3))
		}
	}
	b.ReportMetric(float64(best.Microseconds())/1000, "best-ms/run")
	b.Logf("%s: total %v", phases, best)
}

// BenchmarkRealMonitorMemory runs several containers and reports the
// monitors' proportional set size (the target is at most 2 MiB each with 50
// running; bench/run.sh measures that side by side).
func BenchmarkRealMonitorMemory(b *testing.B) {
	t := b
	requireShim(t)
	n := 10
	if v, _ := strconv.Atoi(os.Getenv("MONITOR_TEST_COUNT")); v > 0 {
		n = v
	}
	root := busyboxRoot(t)
	var pids []int
	var firstBundle string
	for i := 0; i < n; i++ {
		bundle := realBundle(t, root, Config{}, "sh", "-c", "echo started; exec sleep 100")
		if i == 0 {
			firstBundle = bundle
		}
		proc := spawnReal(t, bundle)
		c, _ := Dial(bundle)
		if _, err := c.Start(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, proc.Pid)
	}
	time.Sleep(500 * time.Millisecond) // let them settle (the monitor frees set-up garbage after 200ms)
	var total, maxPss, maxRss int
	for _, pid := range pids {
		pss, rss := smapsRollup(t, pid)
		total += pss
		maxPss = max(maxPss, pss)
		maxRss = max(maxRss, rss)
	}
	avg := total / n
	if os.Getenv("MONITOR_TEST_SMAPS") != "" {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pids[0]))
		st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pids[0]))
		t.Logf("%s\n%s", st, b)
		ml, _ := os.ReadFile(filepath.Join(firstBundle, MonitorLog))
		t.Logf("monitor.log: %s", ml)
	}
	b.ReportMetric(float64(avg), "PSS-KiB/monitor")
	b.Logf("%d monitors: PSS avg %d KiB, max %d KiB; RSS max %d KiB", n, avg, maxPss, maxRss)
	for b.Loop() {
	}
}

func smapsRollup(t testing.TB, pid int) (pss, rss int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, _ := strconv.Atoi(f[1])
		switch f[0] {
		case "Pss:":
			pss = v
		case "Rss:":
			rss = v
		}
	}
	return pss, rss
}
