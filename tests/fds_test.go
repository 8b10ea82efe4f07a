package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// startDaemonHoldingFds starts a daemon the way a careless parent would:
// holding the write end of a pipe at fds 3 and 251 and /dev/null at fd 4,
// none of them close-on-exec. It returns the daemon and the pipe's write end.
func startDaemonHoldingFds(t *testing.T) (*daemon, *os.File) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close(); null.Close() })
	root, err := os.MkdirTemp("", "skiff-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	d := &daemon{
		t: t, root: root, sock: filepath.Join(root, "skiff.sock"),
		cgParent: fmt.Sprintf("/skiff-e2e-%d-%s", os.Getpid(), name),
	}
	d.host = "unix://" + d.sock
	d.prepare = func(cmd *exec.Cmd) {
		// ExtraFiles land at 3 and 4 without close-on-exec; the shell
		// adds 251, as `exec 251>&3` in a user's shell would.
		cmd.ExtraFiles = []*os.File{w, null}
		cmd.Args = append([]string{"bash", "-c", `exec 251>&3; exec "$@"`, "bash"}, cmd.Args...)
		cmd.Path = "/bin/bash"
	}
	d.start()
	t.Cleanup(func() { d.cleanup() })
	return d, w
}

// A container's processes start with fds 0, 1 and 2 only, whatever the
// engine inherited: its first process and every exec, through skiff's CLI,
// the docker CLI and the raw API.
func TestNoInheritedFds(t *testing.T) {
	t.Parallel()
	d, pipeW := startDaemonHoldingFds(t)
	d.importBusybox()
	// The engine does hold them (close-on-exec).
	for _, fd := range []string{"3", "4", "251"} {
		if _, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", d.cmd.Process.Pid, fd)); err != nil {
			t.Fatalf("the daemon does not hold fd %s: %v", fd, err)
		}
	}
	// ls itself opens /proc/self/fd as 3.
	const self, pid1 = "0 1 2 3", "0 1 2"
	fields := func(s string) string { return strings.Join(strings.Fields(s), " ") }

	if out := d.must("run", "--rm", "busybox", "ls", "/proc/self/fd"); fields(out) != self {
		t.Errorf("skiff run: fds %q, want %q", fields(out), self)
	}
	if out, errOut, code := d.docker("run", "--rm", "busybox", "ls", "/proc/self/fd"); code != 0 || fields(out) != self {
		t.Errorf("docker run: fds %q (exit %d %s), want %q", fields(out), code, errOut, self)
	}
	id := strings.TrimSpace(d.must("run", "-d", "busybox", "sleep", "60"))
	for _, tc := range []struct{ cli, path, want string }{
		{"skiff", "/proc/1/fd", pid1}, {"skiff", "/proc/self/fd", self},
		{"docker", "/proc/1/fd", pid1}, {"docker", "/proc/self/fd", self},
	} {
		var out, errOut string
		var code int
		if tc.cli == "skiff" {
			out, errOut, code = d.skiff("exec", id, "ls", tc.path)
		} else {
			out, errOut, code = d.docker("exec", id, "ls", tc.path)
		}
		if code != 0 || fields(out) != tc.want {
			t.Errorf("%s exec ls %s: %q (exit %d %s), want %q", tc.cli, tc.path, fields(out), code, errOut, tc.want)
		}
	}
	// With a terminal too.
	if out := d.must("exec", "-t", id, "ls", "/proc/self/fd"); fields(out) != self {
		t.Errorf("exec -t: fds %q, want %q", fields(out), self)
	}

	// The raw API: create + start, logs; exec create + attach.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config: &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", "ls /proc/self/fd; ls /proc/1/fd; sleep 60"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	var logs string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		rc, err := d.cli.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			t.Fatal(err)
		}
		var so, se bytes.Buffer
		stdcopy.StdCopy(&so, &se, rc)
		rc.Close()
		if logs = fields(so.String() + se.String()); strings.Count(logs, "0 1 2") == 2 {
			break
		}
	}
	// ls of its own fds, then of sh's (PID 1).
	if logs != self+" "+pid1 {
		t.Errorf("API container: fds %q, want %q", logs, self+" "+pid1)
	}
	for _, path := range []string{"/proc/1/fd", "/proc/self/fd"} {
		so, se, _ := d.apiExec(ctx, cr.ID, client.ExecCreateOptions{Cmd: []string{"ls", path}})
		want := self
		if path == "/proc/1/fd" {
			want = pid1 // sh
		}
		if fields(so.String()) != want {
			t.Errorf("API exec ls %s: %q %q, want %q", path, so.String(), se.String(), want)
		}
	}
	// Nobody but the daemon (and this test) holds the pipe: no monitor,
	// no init, no exec helper, no container process.
	link, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", pipeW.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, p := range fds {
		pid := strings.Split(p, "/")[2]
		if pid == fmt.Sprint(os.Getpid()) || pid == fmt.Sprint(d.cmd.Process.Pid) {
			continue
		}
		if l, err := os.Readlink(p); err == nil && l == link {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", pid, "cmdline"))
			t.Errorf("%s (%s) holds the daemon's inherited pipe", p, strings.Fields(string(bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))))
		}
	}
}
