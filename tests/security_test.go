package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// --security-opt: no-new-privileges applies; containers get Docker's
// default seccomp profile unless unconfined or privileged; a profile file
// (inlined by both CLIs) replaces it; a bad profile fails the run (125)
// with nothing created.
func TestSecurityOpts(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	if out := d.must("run", "--rm", "--security-opt", "no-new-privileges", "busybox", "grep", "NoNewPrivs", "/proc/self/status"); !strings.Contains(out, "NoNewPrivs:\t1") {
		t.Errorf("no-new-privileges: %q", out)
	}
	if out := d.must("info", "--format", "{{json .SecurityOptions}}"); !strings.Contains(out, "name=seccomp,profile=builtin") {
		t.Errorf("info security options: %q", out)
	}
	// A user namespace needs no capability: only the filter refuses it.
	probe := "grep '^Seccomp:' /proc/self/status; busybox unshare -U true && echo unshared || echo refused"
	dir := t.TempDir()
	noMkdir := filepath.Join(dir, "nomkdir.json")
	os.WriteFile(noMkdir, []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir","mkdirat"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"default", nil, "Seccomp:\t2\nrefused\n"},
		{"builtin", []string{"--security-opt", "seccomp=builtin"}, "Seccomp:\t2\nrefused\n"},
		{"unconfined", []string{"--security-opt", "seccomp=unconfined"}, "Seccomp:\t0\nunshared\n"},
		{"privileged", []string{"--privileged"}, "Seccomp:\t0\nunshared\n"},
	} {
		args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", probe)
		if out := d.must(args...); out != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, out, tc.want)
		}
	}
	// An exec'd process is filtered too.
	d.must("run", "-d", "--name", "sc", "busybox", "sleep", "60")
	if out := d.must("exec", "sc", "sh", "-c", probe); out != "Seccomp:\t2\nrefused\n" {
		t.Errorf("exec: %q", out)
	}
	d.must("rm", "-f", "sc")

	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"defaultAction":"SCMP_ACT_BOGUS"}`), 0o644)
	broken := filepath.Join(dir, "broken.json")
	os.WriteFile(broken, []byte(`{"defaultAction":`), 0o644)
	for _, cli := range []func(...string) (string, string, int){d.skiff, d.docker} {
		out, errOut, code := cli("run", "--rm", "--security-opt", "seccomp="+noMkdir, "busybox", "sh", "-c", "mkdir /x || echo refused; touch /y && echo touched")
		if code != 0 || out != "refused\ntouched\n" || !strings.Contains(errOut, "Operation not permitted") {
			t.Errorf("profile file: exit %d %q %q", code, out, errOut)
		}
		_, errOut, code = cli("run", "--rm", "--security-opt", "seccomp="+bad, "busybox", "true")
		if code != 125 || !strings.Contains(errOut, `unknown action "SCMP_ACT_BOGUS"`) {
			t.Errorf("bad profile: exit %d %q, want 125 and a clear error", code, errOut)
		}
		_, errOut, code = cli("run", "--rm", "--security-opt", "seccomp="+broken, "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "seccomp profile") {
			t.Errorf("broken profile: exit %d %q, want 125 and a clear error", code, errOut)
		}
	}
	if out := d.must("ps", "-aq"); out != "" {
		t.Errorf("refused runs left containers: %q", out)
	}
}

// Through the docker CLI: a pids limit below what skiff's own init needs
// still starts the container (and limits it), and --privileged runs on a
// host whose bounding set lacks a capability (this VM has no
// CAP_SYS_RESOURCE), unfiltered.
func TestDockerCLIPidsLimitAndPrivileged(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	out, errOut, code := d.docker("run", "--rm", "--pids-limit", "1", "busybox", "sh", "-c", "echo started; true & wait")
	// sh exits 2 on the refused fork, and run passes its status on.
	if code != 2 || out != "started\n" || !strings.Contains(errOut, "can't fork") {
		t.Errorf("--pids-limit 1: exit %d stdout %q stderr %q", code, out, errOut)
	}
	out, errOut, code = d.docker("run", "--rm", "--privileged", "busybox", "grep", "^Seccomp:", "/proc/self/status")
	if code != 0 || out != "Seccomp:\t0\n" {
		t.Errorf("--privileged: exit %d stdout %q stderr %q", code, out, errOut)
	}
}
