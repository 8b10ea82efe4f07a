package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestRunEchoAndExitCodes(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()

	cases := []struct {
		name     string
		args     []string
		code     int
		stdout   string
		stderrIn string
	}{
		{"echo", []string{"run", "--rm", "busybox", "echo", "hello"}, 0, "hello\n", ""},
		{"own exit code", []string{"run", "--rm", "busybox", "sh", "-c", "exit 3"}, 3, "", ""},
		{"stderr stays apart", []string{"run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2"}, 0, "out\n", "err"},
		{"command not found", []string{"run", "--rm", "busybox", "nonexistent-cmd"}, 127, "", "nonexistent-cmd"},
		{"cannot invoke", []string{"run", "--rm", "busybox", "/etc/notexec"}, 126, "", "permission denied"},
		{"unknown image", []string{"run", "--rm", "no-such-image"}, 125, "", "no-such-image"},
		{"bad flag", []string{"run", "--no-such-flag", "busybox"}, 125, "", "unknown flag"},
		{"bad memory", []string{"run", "--rm", "-m", "12x", "busybox", "true"}, 125, "", "invalid"},
		{"memory too small", []string{"run", "--rm", "-m", "1m", "busybox", "true"}, 125, "", "Minimum memory limit"},
		{"too many cpus", []string{"run", "--rm", "--cpus", "64", "busybox", "true"}, 125, "", "Range of CPUs"},
		{"env and workdir", []string{"run", "--rm", "-e", "FOO=bar", "-w", "/tmp", "busybox", "sh", "-c", "echo $FOO $(pwd)"}, 0, "bar /tmp\n", ""},
		{"user", []string{"run", "--rm", "-u", "nobody", "busybox", "id", "-u"}, 0, "65534\n", ""},
		{"user:group", []string{"run", "--rm", "-u", "1:50", "busybox", "sh", "-c", "id -u; id -g"}, 0, "1\n50\n", ""},
		{"hostname", []string{"run", "--rm", "-h", "boat", "busybox", "hostname"}, 0, "boat\n", ""},
		{"pid 1", []string{"run", "--rm", "busybox", "sh", "-c", "echo $$"}, 0, "1\n", ""},
		{"entrypoint", []string{"run", "--rm", "--entrypoint", "echo", "busybox", "a", "b"}, 0, "a b\n", ""},
		{"net none has loopback only, up", []string{"run", "--rm", "--net", "none", "busybox", "sh", "-c", "ls /sys/class/net; ip link show lo | grep -c LOOPBACK,UP"}, 0, "lo\n1\n", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out, errOut, code := d.skiff(c.args...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout: %q\nstderr: %q", code, c.code, out, errOut)
			}
			if c.stdout != "" && out != c.stdout {
				t.Errorf("stdout %q, want %q", out, c.stdout)
			}
			if c.stderrIn != "" && !strings.Contains(errOut, c.stderrIn) {
				t.Errorf("stderr %q does not mention %q", errOut, c.stderrIn)
			}
		})
	}
	// --rm removed every container, even the ones that failed to start.
	if out := d.must("ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after --rm runs: %q", out)
	}
}

func TestContainerLifecycle(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()

	id := strings.TrimSpace(d.must("run", "-d", "--name", "web", "-l", "app=demo", "busybox", "sh", "-c", "echo started; trap 'echo bye; exit 0' TERM; while :; do sleep 0.1; done"))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want a full id", id)
	}
	waitFor(t, func() bool { return strings.Contains(d.must("logs", "web"), "started") }, "log line")

	if out := d.must("ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "web Up") {
		t.Errorf("ps: %q", out)
	}
	if out := d.must("ps", "-q", "--filter", "label=app=demo"); strings.TrimSpace(out) != id[:12] {
		t.Errorf("ps filter label: %q", out)
	}
	if out := d.must("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.Name}}", "web"); out != "running true /web\n" {
		t.Errorf("inspect: %q", out)
	}
	pid := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "web"))
	if n, _ := strconv.Atoi(pid); n <= 0 {
		t.Errorf("State.Pid = %q", pid)
	}

	// exec runs inside the container's namespaces, as another user, with env and cwd.
	if out := d.must("exec", "-u", "nobody", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", "echo $X $(id -u) $(pwd) $(hostname)"); out != "1 65534 /tmp "+id[:12]+"\n" {
		t.Errorf("exec: %q", out)
	}
	if _, _, code := d.skiff("exec", "web", "sh", "-c", "exit 7"); code != 7 {
		t.Errorf("exec exit code %d, want 7", code)
	}
	if _, _, code := d.skiff("exec", "web", "no-such-cmd"); code != 127 {
		t.Errorf("exec missing command: exit %d, want 127", code)
	}

	// Name conflict, rm of a running container, kill of a stopped one.
	if _, errOut, code := d.skiff("run", "-d", "--name", "web", "busybox", "true"); code != 125 || !strings.Contains(errOut, "already in use") {
		t.Errorf("name conflict: exit %d, %q", code, errOut)
	}
	if _, errOut, code := d.skiff("rm", "web"); code == 0 || !strings.Contains(errOut, "running") {
		t.Errorf("rm running: exit %d, %q", code, errOut)
	}

	d.must("stop", "-t", "5", "web")
	if out := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "web"); out != "exited 0\n" {
		t.Errorf("after stop: %q", out)
	}
	if logs := d.must("logs", "web"); !strings.Contains(logs, "bye") {
		t.Errorf("logs after stop: %q", logs)
	}
	if _, errOut, code := d.skiff("kill", "web"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("kill stopped: exit %d, %q", code, errOut)
	}
	d.must("start", "web")
	if out := d.must("inspect", "-f", "{{.State.Running}}", "web"); out != "true\n" {
		t.Errorf("after start: %q", out)
	}
	d.must("kill", "-s", "KILL", "web")
	if out := d.must("wait", "web"); out != "137\n" {
		t.Errorf("wait after kill: %q", out)
	}
	d.must("rm", "web")
	if _, errOut, code := d.skiff("inspect", "web"); code == 0 || !strings.Contains(errOut, "No such") {
		t.Errorf("inspect removed: exit %d, %q", code, errOut)
	}
}

func TestLogsOptions(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "--name", "lg", "--log-opt", "max-size=1k", "--log-opt", "max-file=2", "busybox", "sh", "-c", "for i in $(seq 1 200); do echo line$i; done; echo oops >&2")
	out := d.must("logs", "--tail", "3", "lg")
	// stderr goes to the CLI's stderr, so stdout has the last stdout lines.
	if !strings.Contains(out, "line200") {
		t.Errorf("tail: %q", out)
	}
	// stderr records come back on stderr (a separate container: with
	// rotation above, which records survive depends on read order).
	d.must("run", "--name", "se", "busybox", "sh", "-c", "echo out; echo oops >&2")
	if out, errOut, _ := d.skiff("logs", "se"); out != "out\n" || errOut != "oops\n" {
		t.Errorf("logs split: stdout %q stderr %q", out, errOut)
	}
	// The last record is line200 or oops, whichever pipe the monitor read
	// last: it comes on stdout or stderr.
	tsOut, tsErr, _ := d.skiff("logs", "-t", "--tail", "1", "lg")
	ts := tsOut + tsErr
	if _, err := time.Parse(time.RFC3339Nano, strings.Fields(ts + " x")[0]); err != nil {
		t.Errorf("timestamps: %q", ts)
	}
	// Rotation kept at most two files of about 1k each.
	logPath := strings.TrimSpace(d.must("inspect", "-f", "{{.LogPath}}", "lg"))
	files, _ := filepath.Glob(logPath + "*")
	if len(files) == 0 || len(files) > 2 {
		t.Errorf("log files: %v", files)
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var rec struct{ Log, Stream, Time string }
			if err := json.Unmarshal([]byte(line), &rec); err != nil || rec.Stream == "" || rec.Time == "" {
				t.Fatalf("not a json-file record: %q", line)
			}
		}
		if st, _ := os.Stat(f); st.Size() > 2048 {
			t.Errorf("%s is %d bytes, over max-size", f, st.Size())
		}
	}
	// --since in the future shows nothing.
	if out := d.must("logs", "--since", strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10), "lg"); out != "" {
		t.Errorf("since future: %q", out)
	}
}

func TestDockerCLICompat(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	if out, errOut, code := d.docker("run", "--rm", "busybox", "echo", "hi"); code != 0 || out != "hi\n" {
		t.Fatalf("docker run: %d %q %q", code, out, errOut)
	}
	if _, _, code := d.docker("run", "--rm", "busybox", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("docker run exit code %d, want 5", code)
	}
	if _, _, code := d.docker("run", "--rm", "busybox", "nope-not-here"); code != 127 {
		t.Errorf("docker run missing command: %d, want 127", code)
	}
	d.docker("run", "-d", "--name", "bg", "busybox", "sleep", "60")
	if out, _, _ := d.docker("ps", "--format", "{{.Names}}"); out != "bg\n" {
		t.Errorf("docker ps: %q", out)
	}
	if out, _, _ := d.docker("exec", "bg", "echo", "inside"); out != "inside\n" {
		t.Errorf("docker exec: %q", out)
	}
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Running}} {{.Config.Image}}", "bg"); out != "true busybox\n" {
		t.Errorf("docker inspect: %q", out)
	}
	if out, errOut, code := d.docker("images", "--format", "{{.Repository}}:{{.Tag}}"); code != 0 || !strings.Contains(out, "busybox:latest") {
		t.Errorf("docker images: %d %q %q", code, out, errOut)
	}
	if _, _, code := d.docker("rm", "-f", "bg"); code != 0 {
		t.Errorf("docker rm -f: %d", code)
	}
	if out, errOut, code := d.docker("version", "--format", "{{.Server.APIVersion}}"); code != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("docker version: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := d.docker("info"); code != 0 {
		t.Errorf("docker info: %d %q", code, errOut)
	}
}

// The official Go client sees the same engine third-party tools see.
func TestGoClient(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	ctx := context.Background()
	cr, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "exit 4"}},
		Name:   "gc",
	})
	if err != nil {
		t.Fatal(err)
	}
	wait := d.cli.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := d.cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-wait.Result:
		if r.StatusCode != 4 {
			t.Errorf("wait status %d, want 4", r.StatusCode)
		}
	case err := <-wait.Error:
		t.Fatal(err)
	case <-time.After(20 * time.Second):
		t.Fatal("wait timed out")
	}
	insp, err := d.cli.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if insp.Container.State.ExitCode != 4 || insp.Container.State.Status != container.StateExited {
		t.Errorf("state %+v", insp.Container.State)
	}
	if _, err := d.cli.ContainerRemove(ctx, cr.ID, client.ContainerRemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.ContainerInspect(ctx, cr.ID, client.ContainerInspectOptions{}); err == nil {
		t.Error("inspect after remove succeeded")
	}
}

// Containers outlive the engine, kill -9 included, and an exit while the
// engine is down is recorded with its code.
func TestEngineRestartKeepsContainers(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "-d", "--name", "long", "busybox", "sh", "-c", "i=0; while :; do i=$((i+1)); echo tick$i; sleep 0.2; done")
	d.must("run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; exit 42")
	pid := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "long"))
	shortPid, _ := strconv.Atoi(strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", "short")))

	ticksBefore := strings.Count(d.must("logs", "long"), "tick")

	d.kill9()
	time.Sleep(1500 * time.Millisecond) // "long" writes while nobody reads
	// "short" exits while nobody watches (on a loaded machine its sleep
	// may end later than that: wait for it).
	waitFor(t, func() bool { return syscall.Kill(shortPid, 0) != nil }, "short's process to exit")
	n, _ := strconv.Atoi(pid)
	if err := syscall.Kill(n, 0); err != nil {
		t.Fatalf("container process %d died with the engine: %v", n, err)
	}
	d.start()

	if out := d.must("inspect", "-f", "{{.State.Status}} {{.State.Pid}}", "long"); out != "running "+pid+"\n" {
		t.Errorf("long after restart: %q", out)
	}
	// Its monitor may still be finishing (draining output, writing
	// exit.json) when the engine comes back; the engine then waits for it.
	d.eventually("short to be recorded as exited 42", func() (bool, string) {
		out := d.must("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "short")
		return out == "exited 42\n", out
	})
	if out := d.must("exec", "long", "echo", "still here"); out != "still here\n" {
		t.Errorf("exec after restart: %q", out)
	}
	// Output written while the engine was down is in the log.
	if logs := d.must("logs", "long"); !strings.Contains(logs, fmt.Sprintf("tick%d\n", ticksBefore+3)) {
		t.Errorf("logs after restart lack output from the outage: %q", logs[max(0, len(logs)-200):])
	}
	d.must("stop", "-t", "1", "long")
	if out := d.must("inspect", "-f", "{{.State.Status}}", "long"); out != "exited\n" {
		t.Errorf("stop after restart: %q", out)
	}
	// A graceful restart too.
	d.must("start", "long")
	d.stop()
	d.start()
	if out := d.must("ps", "--format", "{{.Names}}"); out != "long\n" {
		t.Errorf("ps after graceful restart: %q", out)
	}
	d.must("rm", "-f", "long", "short")
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// A --rm container's root is a volatile overlay (nothing of it needs to
// reach the disk), and a restart, which mounts it again, still works; other
// containers' roots are not volatile.
func TestAutoRemoveRootIsVolatile(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	rootOpts := func(name string) string {
		return d.must("exec", name, "sh", "-c", "grep '^overlay / ' /proc/mounts")
	}
	d.must("run", "-d", "--rm", "--name", "vol", "busybox", "sleep", "600")
	if o := rootOpts("vol"); !strings.Contains(o, "volatile") {
		t.Errorf("--rm root: %q, want volatile", o)
	}
	d.must("exec", "vol", "sh", "-c", "echo kept > /data")
	// A restart mounts the volatile overlay again (docker CLI here).
	if _, errOut, code := d.docker("restart", "-t", "0", "vol"); code != 0 {
		t.Fatalf("docker restart of a --rm container: %d %s", code, errOut)
	}
	if out := d.must("exec", "vol", "cat", "/data"); out != "kept\n" {
		t.Errorf("after restart: %q", out)
	}
	if o := rootOpts("vol"); !strings.Contains(o, "volatile") {
		t.Errorf("--rm root after restart: %q, want volatile", o)
	}
	d.must("run", "-d", "--name", "plain", "busybox", "sleep", "600")
	if o := rootOpts("plain"); strings.Contains(o, "volatile") {
		t.Errorf("root of a container that stays: %q", o)
	}
	d.must("rm", "-f", "vol", "plain")
}
