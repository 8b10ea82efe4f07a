package tests

import (
	"strings"
	"testing"
)

func TestInitStopSignalStopTimeout(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()

	// --init: our init is PID 1, the program its child.
	out, errOut, code := d.docker("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args")
	if code != 0 || !strings.Contains(out, "1 /sbin/docker-init -- ps -o pid,args") {
		t.Fatalf("run --init ps: %d %q %s", code, out, errOut)
	}
	// It reaps orphans and forwards the stop signal.
	d.must("run", "-d", "--name", "in", "--init", "busybox", "sh", "-c",
		`trap "echo got TERM; exit 3" TERM; trap "echo got HUP" HUP; for i in 1 2 3; do (sleep 0.1 &); done; while true; do sleep 0.1; done`)
	d.eventually("orphans reaped", func() (bool, string) {
		out, _, _ := d.docker("exec", "in", "ps", "-o", "stat,args")
		return !strings.Contains(out, "sleep 0.1\n") || !strings.Contains(out, "Z "), out
	})
	out, _, _ = d.docker("exec", "in", "ps", "-o", "stat,args")
	if strings.Contains(out, "\nZ ") {
		t.Errorf("zombies left:\n%s", out)
	}
	// kill -s HUP reaches the program through the init.
	d.must("kill", "-s", "HUP", "in")
	d.eventually("HUP delivered", func() (bool, string) {
		out, _, _ := d.docker("logs", "in")
		return strings.Contains(out, "got HUP"), out
	})
	d.must("stop", "in")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.ExitCode}}", "in"); strings.TrimSpace(out) != "3" {
		t.Errorf("exit code after stop with --init: %q", out)
	}
	if out, _, _ := d.docker("diff", "in"); strings.Contains(out, "docker-init") {
		t.Errorf("diff shows the init:\n%s", out)
	}

	// --stop-signal: stop sends it.
	d.must("run", "-d", "--name", "ss", "--stop-signal", "USR1", "busybox", "sh", "-c",
		`trap "exit 4" USR1; while true; do sleep 0.1; done`)
	d.must("stop", "ss")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.ExitCode}} {{.Config.StopSignal}}", "ss"); strings.TrimSpace(out) != "4 USR1" {
		t.Errorf("--stop-signal: %q", out)
	}
	// --stop-timeout: a program that ignores the signal is killed after it.
	d.must("run", "-d", "--name", "st", "--stop-timeout", "1", "busybox", "sh", "-c",
		`trap "" TERM; while true; do sleep 0.1; done`)
	d.must("stop", "st")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.ExitCode}} {{.Config.StopTimeout}}", "st"); strings.TrimSpace(out) != "137 1" {
		t.Errorf("--stop-timeout: %q", out)
	}
	// A bad stop signal is refused at create.
	if _, errOut, code := d.docker("run", "--stop-signal", "NOPE", "busybox", "true"); code != 125 || !strings.Contains(strings.ToLower(errOut), "signal") {
		t.Errorf("bad stop signal: %d %s", code, errOut)
	}
	d.must("rm", "in", "ss", "st")
}
