package tests

import (
	"bufio"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestInitStopSignalStopTimeout(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()

	// --init: our init is PID 1, the program its child.
	out, errOut, code := d.docker("run", "--rm", "--init", "busybox", "ps", "-o", "pid,args")
	if code != 0 || !strings.Contains(out, "1 /sbin/docker-init -- ps -o pid,args") {
		t.Fatalf("run --init ps: %d %q %s", code, out, errOut)
	}
	// It forwards signals to the program.
	d.must("run", "-d", "--name", "in", "--init", "busybox", "sh", "-c",
		`trap "echo got TERM; exit 3" TERM; trap "echo got HUP" HUP; for i in 1 2 3; do (sleep 0.1 &); done; while true; do sleep 0.1; done`)
	// It reaps orphans. A shell that forks a short-lived orphan and then
	// execs sleep leaves PID 1 a program that never waits: without --init
	// the orphan stays a zombie whose parent is PID 1, with --init it goes.
	orphan := `(sleep 0.1 &); exec sleep 600`
	d.must("run", "-d", "--name", "noinit", "busybox", "sh", "-c", orphan)
	d.must("run", "-d", "--name", "withinit", "--init", "busybox", "sh", "-c", orphan)
	time.Sleep(500 * time.Millisecond)
	zombies := func(name string) string {
		out, _, _ := d.docker("exec", name, "ps", "-o", "stat,ppid,args")
		var z []string
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) >= 2 && strings.HasPrefix(f[0], "Z") && f[1] == "1" {
				z = append(z, l)
			}
		}
		return strings.Join(z, "\n")
	}
	if z := zombies("noinit"); z == "" {
		t.Errorf("without --init the orphan should stay a zombie of PID 1; none seen")
	}
	d.eventually("orphans reaped by the init", func() (bool, string) {
		z := zombies("withinit")
		return z == "", z
	})
	d.must("rm", "-f", "noinit", "withinit")
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

// A signal sent to `skiff run` (and `start -a`) reaches the container's
// process: the CLI proxies every signal it can catch.
func TestRunProxiesSignals(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	script := `trap "echo got USR1; exit 3" USR1; echo ready; while :; do sleep 0.1; done`
	for _, args := range [][]string{
		{"run", "--rm", "busybox", "sh", "-c", script},
		{"start", "-a", "sp"},
	} {
		if args[0] == "start" {
			d.must("create", "--name", "sp", "busybox", "sh", "-c", script)
		}
		cmd := exec.Command(filepath.Join(binDir, "skiff"), append([]string{"-H", d.host}, args...)...)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// A signal that is not passed on leaves the container looping.
		timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
		defer timer.Stop()
		r := bufio.NewReader(out)
		if line, err := r.ReadString('\n'); line != "ready\n" {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: first line %q %v", args[0], line, err)
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		rest, _ := io.ReadAll(r)
		err = cmd.Wait()
		var ee *exec.ExitError
		if string(rest) != "got USR1\n" || !errors.As(err, &ee) || ee.ExitCode() != 3 {
			t.Errorf("%s: after SIGUSR1: %q, %v (want the trap's output and exit 3)", args[0], rest, err)
		}
	}
}
