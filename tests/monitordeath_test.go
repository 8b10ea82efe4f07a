package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// procStat returns the parent pid and start time of pid (ok false when it
// is gone).
func procStat(pid int) (ppid int, start uint64, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, false
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 20 || f[0] == "Z" {
		return 0, 0, false
	}
	ppid, _ = strconv.Atoi(f[1])
	start, _ = strconv.ParseUint(f[19], 10, 64)
	return ppid, start, true
}

// liveProc is one process, named by pid and start time so a reused pid is
// not taken for it.
type liveProc struct {
	pid   int
	start uint64
}

func (p liveProc) alive() bool {
	_, st, ok := procStat(p.pid)
	return ok && st == p.start
}

// containerProcs returns the container's first process and its monitor
// (the process's parent: the monitor clones init, which execs the app).
func (d *daemon) containerProcs(ctr string) (app, mon liveProc) {
	d.t.Helper()
	out := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Pid}}", ctr))
	pid, err := strconv.Atoi(out)
	if err != nil || pid <= 0 {
		d.t.Fatalf("pid of %s: %q", ctr, out)
	}
	ppid, st, ok := procStat(pid)
	if !ok {
		d.t.Fatalf("process %d of %s is gone", pid, ctr)
	}
	_, mst, ok := procStat(ppid)
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
	if !ok || !strings.Contains(string(cmd), "monitor") {
		d.t.Fatalf("parent %d of %s's process is not its monitor: %q", ppid, ctr, cmd)
	}
	return liveProc{pid, st}, liveProc{ppid, mst}
}

// daemonMountinfo is the mount table the daemon (and its monitors) see.
func (d *daemon) daemonMountinfo() string {
	var b []byte
	if d.cmd != nil {
		b, _ = os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", d.cmd.Process.Pid))
	}
	own, _ := os.ReadFile("/proc/self/mountinfo")
	return string(b) + string(own)
}

// containerLeftovers lists what of container id's run is still on the
// host: its cgroup directories, mounts naming it (root file system,
// network namespace, shm), its host-side veth and processes whose command
// line names it.
func (d *daemon) containerLeftovers(id string) []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		p := filepath.Join("/sys/fs/cgroup", h, d.cgParent, id)
		if _, err := os.Stat(p); err == nil {
			out = append(out, "cgroup "+p)
		}
	}
	for _, l := range strings.Split(d.daemonMountinfo(), "\n") {
		if strings.Contains(l, id) {
			out = append(out, "mount "+l)
		}
	}
	veth := "sk" + id[:12] + "0"
	if _, err := os.Stat("/sys/class/net/" + veth); err == nil {
		out = append(out, "veth "+veth)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), id) {
			out = append(out, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}

// assertMonitorDeathHandled checks a container whose monitor was killed:
// its process is gone, nothing of the run is left, inspect shows exit 137
// with the monitor named, logs and rm still work.
func (d *daemon) assertMonitorDeathHandled(id string, app liveProc) {
	d.t.Helper()
	d.eventually("the container's process killed", func() (bool, string) {
		return !app.alive(), fmt.Sprintf("pid %d alive", app.pid)
	})
	d.eventually("the run cleaned up", func() (bool, string) {
		l := d.containerLeftovers(id)
		return len(l) == 0, strings.Join(l, "\n")
	})
	got := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Status}} {{.State.Running}} {{.State.ExitCode}} {{.State.Pid}} {{.State.Error}}", id))
	if want := "exited false 137 0 monitor exited unexpectedly"; got != want {
		d.t.Errorf("inspect after the monitor died: %q, want %q", got, want)
	}
	if _, errOut, code := d.skiff("logs", id); code != 0 {
		d.t.Errorf("logs after the monitor died: %s", errOut)
	}
}

// A SIGKILLed monitor (the OOM killer, a careless kill) takes its
// container with it: the engine kills what is left in the cgroup, records
// exit 137, removes cgroup, mounts and network, and applies the restart
// policy with a fresh monitor. A monitor killed while the engine is down
// is handled the same at restore.
func TestDeadMonitor(t *testing.T) {
	for _, cg2 := range []bool{false, true} {
		name := "cgroup1"
		if cg2 {
			name = "cgroup2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := startDaemonWith(t, cg2)
			d.importBusybox()

			// No restart policy: the container stays exited.
			plain := strings.TrimSpace(d.must("run", "-d", "--name", "plain", "busybox", "sleep", "100"))
			app, mon := d.containerProcs(plain)
			t0 := time.Now()
			syscall.Kill(mon.pid, syscall.SIGKILL)
			d.assertMonitorDeathHandled(plain, app)
			t.Logf("monitor killed -> container cleaned up: %v", time.Since(t0))
			d.must("rm", plain)

			// --restart always: back with a new process and a new monitor.
			always := strings.TrimSpace(d.must("run", "-d", "--name", "always", "--restart", "always", "busybox", "sleep", "100"))
			app, mon = d.containerProcs(always)
			syscall.Kill(mon.pid, syscall.SIGKILL)
			d.eventually("always restarted", func() (bool, string) {
				s := d.inspectState("always")
				return s == "running false 1 0", s
			})
			if app.alive() {
				t.Errorf("the first run's process %d outlived its monitor", app.pid)
			}
			app2, mon2 := d.containerProcs(always)
			if app2 == app || mon2 == mon || !mon2.alive() {
				t.Errorf("restart did not run a fresh monitor: %v %v -> %v %v", app, mon, app2, mon2)
			}

			// The monitor dies while the engine is down: restore cleans up.
			down := strings.TrimSpace(d.must("run", "-d", "--name", "down", "busybox", "sleep", "100"))
			app, mon = d.containerProcs(down)
			d.kill9()
			syscall.Kill(mon.pid, syscall.SIGKILL)
			for mon.alive() {
				time.Sleep(10 * time.Millisecond)
			}
			if !app.alive() {
				t.Fatal("the container's process died with its monitor: nothing to clean up")
			}
			d.start()
			d.assertMonitorDeathHandled(down, app)
			// The restarted container lived through the engine restart.
			if s := d.inspectState("always"); s != "running false 1 0" {
				t.Errorf("always after the engine restart: %s", s)
			}
			if !app2.alive() {
				t.Errorf("always's process died with the engine restart")
			}
			d.must("rm", "-f", "always", "down")
		})
	}
}
