package runtime

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// runningContainer starts `sleep 30` with a bound /etc/hostname and returns
// it with its spec; it is killed and destroyed with the test.
func runningContainer(t *testing.T) (*Container, *specs.Spec) {
	t.Helper()
	root := busyboxRoot(t)
	spec := testSpec(t, root, "sleep", "30")
	hostname := filepath.Join(filepath.Dir(root), "hostname-"+randSuffix())
	if err := os.WriteFile(hostname, []byte("execbox\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: hostname, Options: []string{"rbind", "rprivate"}})
	spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(int64(50))}
	return startedContainer(t, spec), spec
}

// startedContainer creates and starts spec's container; it is killed and
// destroyed with the test.
func startedContainer(t *testing.T, spec *specs.Spec) *Container {
	t.Helper()
	c, _, _ := createContainer(t, spec)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Signal(syscall.SIGKILL)
		c.Wait()
		destroy(t, c, spec)
	})
	return c
}

// runExecIn runs p in c; start is why it could not be started (the
// engine's error, as ExecCmd.Started gives it), "" when it ran.
func runExecIn(t *testing.T, c *Container, spec *specs.Spec, p specs.Process) (stdout, stderr, start string, code int) {
	t.Helper()
	if p.Env == nil {
		p.Env = spec.Process.Env
	}
	cmd, err := ExecCommand(ExecOpts{ShimPath: shimPath, ContainerPid: c.Pid(), Spec: spec, Process: p})
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Close()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Started(); err != nil {
		start = err.Error()
		// The kind decides the exit status the engine reports.
		if want := map[errdefs.Kind]int{errdefs.KindCommandNotFound: 127, errdefs.KindCannotInvoke: 126}[errdefs.KindOf(err)]; want == 0 {
			t.Errorf("start error %v of kind %v", err, errdefs.KindOf(err))
		}
	}
	err = cmd.Wait()
	code = 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), start, code
}

func TestExec(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	c, spec := runningContainer(t)
	tests := []struct {
		name   string
		p      specs.Process
		stdout string
		stderr string
		start  string // the start error (nothing on stderr then)
		code   int
	}{
		{name: "hostname file", p: specs.Process{Args: []string{"cat", "/etc/hostname"}}, stdout: "execbox\n"},
		{name: "uts namespace", p: specs.Process{Args: []string{"hostname"}}, stdout: "testhost\n"},
		{name: "user", p: specs.Process{Args: []string{"sh", "-c", "id -u; id -G; echo $HOME"}, User: specs.User{Username: "nobody"}}, stdout: "65534\n65534 29\n/nonexistent\n"},
		// $$ names us in the container's /proc only if we are in its pid namespace.
		{name: "pid namespace", p: specs.Process{Args: []string{"sh", "-c", "cat /proc/1/cmdline; echo; cat /proc/$$/comm; true"}}, stdout: "sleep\x0030\x00\nsh\n"},
		{name: "exit code", p: specs.Process{Args: []string{"sh", "-c", "exit 7"}}, code: 7},
		{name: "cwd", p: specs.Process{Args: []string{"pwd"}, Cwd: "/etc"}, stdout: "/etc\n"},
		{name: "env", p: specs.Process{Args: []string{"sh", "-c", "echo $FOO"}, Env: []string{"PATH=/bin", "FOO=bar"}}, stdout: "bar\n"},
		{name: "capabilities", p: specs.Process{Args: []string{"grep", "CapBnd", "/proc/self/status"}}, stdout: "CapBnd:\t00000000a80425fb\n"},
		{name: "not found", p: specs.Process{Args: []string{"nosuchcmd"}}, start: "exec: \"nosuchcmd\": executable file not found in $PATH", code: 127},
		{name: "not executable", p: specs.Process{Args: []string{"/etc/notexec"}}, start: "exec: \"/etc/notexec\": permission denied", code: 126},
		{name: "missing cwd", p: specs.Process{Args: []string{"true"}, Cwd: "/nowhere"}, start: "chdir to cwd (\"/nowhere\") set in config.json failed: no such file or directory", code: 127},
		{name: "unknown user", p: specs.Process{Args: []string{"true"}, User: specs.User{Username: "xyz"}}, start: "unable to find user xyz: no matching entries in passwd file", code: 126},
		{name: "killed", p: specs.Process{Args: []string{"sh", "-c", "kill -9 $$"}}, code: 137},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, start, code := runExecIn(t, c, spec, tt.p)
			if stdout != tt.stdout || stderr != tt.stderr || start != tt.start || code != tt.code {
				t.Fatalf("stdout %q stderr %q start %q code %d; want %q %q %q %d", stdout, stderr, start, code, tt.stdout, tt.stderr, tt.start, tt.code)
			}
		})
	}
}

// The exec'd process is in the container's cgroup, and the waiting parent
// passes a SIGTERM on to it.
func TestExecCgroupAndSignals(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	c, spec := runningContainer(t)
	cmd, err := ExecCommand(ExecOpts{ShimPath: shimPath, ContainerPid: c.Pid(), Spec: spec,
		Process: specs.Process{Args: []string{"sh", "-c", "trap 'echo got TERM; exit 5' TERM; echo ready; while :; do sleep 1; done"}, Env: spec.Process.Env}})
	if err != nil {
		t.Fatal(err)
	}
	defer cmd.Close()
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	cmd.Stdout = outW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	buf := make([]byte, 64)
	n, _ := outR.Read(buf)
	if string(buf[:n]) != "ready\n" {
		t.Fatalf("exec said %q", buf[:n])
	}
	cg, _ := cgroups.New(spec.Linux.CgroupsPath, nil)
	procs, err := cg.Procs()
	if err != nil {
		t.Fatal(err)
	}
	// sleep 30 (init), the waiting exec parent, sh, and its sleep 1.
	if len(procs) < 3 || !containsPid(procs, cmd.Process.Pid) {
		t.Fatalf("cgroup holds %v; want the exec process %d among them", procs, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() != 5 {
			t.Fatalf("exec ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("exec did not end after SIGTERM")
	}
	rest := make([]byte, 64)
	m, _ := outR.Read(rest)
	if !strings.Contains(string(rest[:m]), "got TERM") {
		t.Fatalf("exec output %q", rest[:m])
	}
}

func containsPid(pids []int, pid int) bool {
	for _, p := range pids {
		if p == pid {
			return true
		}
	}
	return false
}

// A namespace with a path is joined (docker run --net container:A --pid container:A).
func TestJoinNamespacesByPath(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	a, _ := runningContainer(t)
	netns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", a.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "readlink /proc/self/ns/net; cat /proc/1/cmdline")
	for i, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.NetworkNamespace:
			spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", a.Pid())
		case specs.PIDNamespace:
			spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", a.Pid())
		}
	}
	res := runContainer(t, spec)
	if res.startErr != nil || res.status.Code != 0 {
		t.Fatalf("start %v status %+v stderr %q", res.startErr, res.status, res.stderr)
	}
	if want := netns + "\nsleep\x0030\x00"; res.stdout != want {
		t.Fatalf("stdout %q, want %q", res.stdout, want)
	}
}

// The engine reads the container's /etc/passwd to resolve an exec's user:
// one that is not a regular file (a FIFO would block the engine forever)
// fails the exec at once, 126 with a message.
func TestExecRefusesSpecialUserFiles(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	c, spec := runningContainer(t)
	passwd := filepath.Join(spec.Root.Path, "etc", "passwd")
	if err := os.Remove(passwd); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(passwd, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var stderr string
	var code int
	go func() {
		defer close(done)
		_, _, stderr, code = runExecIn(t, c, spec, specs.Process{Args: []string{"true"}, User: specs.User{Username: "nobody"}})
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("exec hung on a FIFO /etc/passwd")
	}
	if code != 126 || !strings.Contains(stderr, "/etc/passwd: not a regular file") {
		t.Errorf("exec with a FIFO passwd: code %d stderr %q", code, stderr)
	}
}
