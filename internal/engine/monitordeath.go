package engine

import (
	"path/filepath"
	"time"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// A dead monitor. The monitor writes exit.json and removes the container's
// cgroup when the container's first process exits; a monitor that ends
// without exit.json was killed (SIGKILL, the OOM killer) while the
// container ran. Its processes then live on, re-parented to PID 1, with
// nobody to reap them or remove their cgroup. containerd does the same
// after a dead shim: it kills the task and deletes it, so no process
// outlives the record that showed it.
//
// The engine learns of the death at once: the monitor is its child (Wait)
// or, after an engine restart, watched through a pidfd (waitPid); a monitor
// that died while the engine was down is found at restore. Both paths end
// in onExit, which calls monitorDied when exit.json is missing. onExit then
// records the exit, removes network and shared memory and applies the
// restart policy (a restart spawns a fresh monitor).

// monitorDiedError is State.Error of a container whose monitor died.
const monitorDiedError = "monitor exited unexpectedly"

// monitorDied kills every process left in c's cgroup, removes the cgroup
// and returns the exit to record: 137, as the container's processes die by
// SIGKILL (what containerd reports for a task whose shim died).
func (e *Engine) monitorDied(c *Container, why error) monitor.Exit {
	t0 := time.Now()
	cg, err := e.cgroupOf(c) // the path the monitor used, from config.json
	if err != nil {
		// No bundle (a host reboot emptied the exec root): the path
		// writeBundle gives the spec.
		c.mu.Lock()
		path := filepath.Join(e.cgroupParent(c.HostConfig), c.ID)
		c.mu.Unlock()
		cg, err = cgroups.New(path, nil)
	}
	if err == nil {
		err = killCgroup(cg)
	}
	if err != nil {
		e.log.Warn("dead monitor: clean up the container's cgroup", "container", c.ID, "err", err)
	}
	e.log.Warn("monitor ended without exit status; container killed", "container", c.ID,
		"cause", why, "took", time.Since(t0))
	return monitor.Exit{ExitCode: 137, FinishedAt: time.Now().UTC(), Error: monitorDiedError}
}

// killCgroup kills every process in cg and removes it. On cgroup v1 the
// processes are frozen first, so none forks a child between reading
// cgroup.procs and the kill; v2's cgroup.kill is atomic already. A v1
// freezer holds frozen tasks even against SIGKILL, so they are thawed
// before the directories go (Destroy waits for them to leave).
func killCgroup(cg cgroups.Manager) error {
	if !cg.Unified() {
		if ferr := cg.Freeze(); ferr == nil {
			cg.Kill()
			cg.Thaw()
		}
	}
	return cg.Destroy()
}
