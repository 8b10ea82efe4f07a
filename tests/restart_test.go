package tests

import (
	"context"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// inspectState returns "Status Restarting RestartCount ExitCode" of c.
func (d *daemon) inspectState(c string) string {
	d.t.Helper()
	out, errOut, code := d.docker("inspect", "-f", "{{.State.Status}} {{.State.Restarting}} {{.RestartCount}} {{.State.ExitCode}}", c)
	if code != 0 {
		d.t.Fatalf("inspect %s: %s", c, errOut)
	}
	return strings.TrimSpace(out)
}

// eventually polls cond until it holds (or fails the test after 30 s).
func (d *daemon) eventually(what string, cond func() (bool, string)) {
	d.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("%s: never happened; last: %s", what, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRestartPolicies(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()

	// on-failure:2 restarts a failing container twice, then leaves it.
	d.must("run", "-d", "--name", "fail2", "--restart", "on-failure:2", "busybox", "sh", "-c", "exit 3")
	d.eventually("on-failure:2 gives up", func() (bool, string) {
		s := d.inspectState("fail2")
		return s == "exited false 2 3", s
	})
	// on-failure does not restart a success.
	d.must("run", "-d", "--name", "ok", "--restart", "on-failure", "busybox", "true")
	// always restarts with a growing back-off: the container is seen
	// "restarting" between runs.
	d.must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sh", "-c", "exit 1")
	d.eventually("always: restarting with a back-off", func() (bool, string) {
		s := d.inspectState("always")
		f := strings.Fields(s)
		return f[0] == "restarting" && f[1] == "true" && f[2] >= "4" && len(f[2]) == 1, s
	})
	out, _, _ := d.docker("ps", "--filter", "name=always", "--format", "{{.Status}}")
	if !strings.HasPrefix(out, "Restarting (1)") {
		t.Errorf("ps status of a restarting container: %q", out)
	}
	// A user's stop ends it for good, even during the back-off.
	d.must("stop", "always")
	if s := d.inspectState("always"); !strings.HasPrefix(s, "exited false") {
		t.Fatalf("after stop: %s", s)
	}
	if s := d.inspectState("ok"); s != "exited false 0 0" {
		t.Errorf("on-failure after success: %s", s)
	}

	// A running always container stopped by the user stays stopped...
	d.must("run", "-d", "--name", "alw2", "--restart", "always", "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "us", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "us-stopped", "--restart", "unless-stopped", "busybox", "sleep", "1000")
	d.must("stop", "-t", "0", "alw2", "us-stopped")
	for _, c := range []string{"alw2", "us-stopped"} {
		if s := d.inspectState(c); !strings.HasPrefix(s, "exited false 0") {
			t.Fatalf("%s after stop: %s", c, s)
		}
	}
	// ... until the engine starts again (always), while unless-stopped
	// stays stopped and running ones keep running (kill -9 of the engine).
	d.kill9()
	d.start()
	d.eventually("always comes back with the engine", func() (bool, string) {
		s := d.inspectState("alw2")
		return strings.HasPrefix(s, "running"), s
	})
	if s := d.inspectState("us-stopped"); !strings.HasPrefix(s, "exited") {
		t.Errorf("unless-stopped after engine restart: %s", s)
	}
	if s := d.inspectState("us"); !strings.HasPrefix(s, "running false 0") {
		t.Errorf("running unless-stopped after engine restart: %s", s)
	}
	// The restart policy resumes after the engine restart: a crash of the
	// unless-stopped container brings it back.
	// (Killed from outside: docker kill would count as the user's stop.)
	pidOut, _, _ := d.docker("inspect", "-f", "{{.State.Pid}}", "us")
	pid, err := strconv.Atoi(strings.TrimSpace(pidOut))
	if err != nil || pid <= 0 {
		t.Fatalf("pid of us: %q", pidOut)
	}
	syscall.Kill(pid, syscall.SIGKILL)
	d.eventually("unless-stopped restarted after a crash", func() (bool, string) {
		s := d.inspectState("us")
		return strings.HasPrefix(s, "running false 1"), s
	})

	// docker kill counts as the user's stop.
	d.must("kill", "us")
	d.eventually("killed container stays down", func() (bool, string) {
		s := d.inspectState("us")
		return s == "exited false 1 137", s
	})

	d.must("rm", "-f", "alw2", "us", "us-stopped", "always", "fail2", "ok")

	// Bad policies: Docker's messages and codes.
	_, errOut, code := d.docker("run", "--restart", "sometimes", "busybox", "true")
	if code != 125 || !strings.Contains(errOut, "invalid restart policy") {
		t.Errorf("bad policy: exit %d: %s", code, errOut)
	}
	_, err = d.cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}},
	})
	if err == nil || !strings.Contains(err.Error(), "invalid restart policy") {
		t.Errorf("API create with a bad policy: %v", err)
	}
}
