package tests

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/client"
)

// TestExecStartFails: an exec whose program cannot be started behaves as
// against dockerd. Attached, the daemon writes the error into the exec's
// stdout stream (dockerd's postContainerExecStart does), the exec's
// ExitCode is 127 (not found) or 126 (cannot be run), and the docker CLI
// exits with it; detached (-d), the start itself is refused (400) and the
// CLI exits 1 with "Error response from daemon: ...".
func TestExecStartFails(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		name := "cgroup-v1"
		if v2 {
			name = "cgroup-v2"
		}
		t.Run(name, func(t *testing.T) { testExecStartFails(t, startDaemonWith(t, v2)) })
	}
}

func testExecStartFails(t *testing.T, d *daemon) {
	d.importBusybox()
	d.must("run", "-d", "--name", "xs", "busybox", "sleep", "300")
	cases := []struct {
		name string
		args []string // exec flags, then the command
		cmd  []string
		user string
		dir  string
		code int
		msg  string
	}{
		{"absent path", nil, []string{"/nonexistent"}, "", "", 127, `exec: "/nonexistent": stat /nonexistent: no such file or directory`},
		{"not in PATH", nil, []string{"nosuchcmd", "arg"}, "", "", 127, `exec: "nosuchcmd": executable file not found in $PATH`},
		{"not executable", nil, []string{"/etc/passwd"}, "", "", 126, `exec: "/etc/passwd": permission denied`},
		{"unknown user", []string{"-u", "nobodyx"}, []string{"true"}, "nobodyx", "", 126, "unable to find user nobodyx: no matching entries in passwd file"},
		{"missing workdir", []string{"-w", "/nowhere"}, []string{"true"}, "", "/nowhere", 127, `chdir to cwd ("/nowhere") set in config.json failed: no such file or directory`},
	}
	for _, tc := range cases {
		args := append(append(append([]string{"exec"}, tc.args...), "xs"), tc.cmd...)
		for _, front := range []string{"docker", "skiff"} {
			run := d.skiff
			if front == "docker" {
				run = d.docker
			}
			out, errOut, code := run(args...)
			if code != tc.code || out != tc.msg+"\r\n" || errOut != "" {
				t.Errorf("%s %s: exit %d stdout %q stderr %q; want exit %d, stdout %q", front, tc.name, code, out, errOut, tc.code, tc.msg+"\r\n")
			}
			dargs := append(append(append([]string{"exec", "-d"}, tc.args...), "xs"), tc.cmd...)
			out, errOut, code = run(dargs...)
			if code != 1 || out != "" || !strings.Contains(errOut, "Error response from daemon: "+tc.msg) {
				t.Errorf("%s -d %s: exit %d stdout %q stderr %q; want exit 1 and the error", front, tc.name, code, out, errOut)
			}
		}

		// The moby Go client: attached, the error is the output and
		// ExitCode says why; detached, ExecStart fails as invalid.
		ctx := context.Background()
		so, se, ins := d.apiExec(ctx, "xs", client.ExecCreateOptions{Cmd: tc.cmd, User: tc.user, WorkingDir: tc.dir})
		if so.String() != tc.msg+"\r\n" || se.Len() != 0 || ins.ExitCode != tc.code || ins.Running {
			t.Errorf("API %s: stdout %q stderr %q inspect exit %d running %v", tc.name, so.String(), se.String(), ins.ExitCode, ins.Running)
		}
		ex, err := d.cli.ExecCreate(ctx, "xs", client.ExecCreateOptions{Cmd: tc.cmd, User: tc.user, WorkingDir: tc.dir})
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.cli.ExecStart(ctx, ex.ID, client.ExecStartOptions{Detach: true})
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), "Error response from daemon") {
			t.Errorf("API detached %s: %v", tc.name, err)
		}
		if ins, err := d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil || ins.ExitCode != tc.code {
			t.Errorf("API detached %s: inspect exit %d, %v", tc.name, ins.ExitCode, err)
		}
	}
	// A program that runs and fails is not a start failure.
	for _, front := range []string{"docker", "skiff"} {
		run := d.skiff
		if front == "docker" {
			run = d.docker
		}
		if out, errOut, code := run("exec", "xs", "sh", "-c", "echo o; echo e >&2; exit 127"); code != 127 || out != "o\n" || errOut != "e\n" {
			t.Errorf("%s exec exit 127: exit %d stdout %q stderr %q", front, code, out, errOut)
		}
		if _, errOut, code := run("exec", "-d", "xs", "sh", "-c", "exit 3"); code != 0 || errOut != "" {
			t.Errorf("%s exec -d: exit %d stderr %q", front, code, errOut)
		}
	}
	d.must("rm", "-f", "xs")
}
