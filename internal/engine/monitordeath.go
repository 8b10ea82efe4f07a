package engine

import (
	"os"
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

// monitorExited ends the watch of c's monitor. clean tells whether the
// monitor exited 0, after its own clean-up; a killed one (and one the
// engine could not wait for, after a restart) may have left the
// container's processes and cgroup, also when it wrote exit.json just
// before it died. Then onExit records the exit and applies the policy.
func (e *Engine) monitorExited(c *Container, exited chan struct{}, clean bool) {
	if !clean {
		e.killContainerCgroup(c)
	}
	e.onExit(c, exited)
}

// monitorDied gives the exit to record for a monitor that wrote none: 137,
// as its container's processes were SIGKILLed (monitorExited), which is
// what containerd reports for a task whose shim died.
func (e *Engine) monitorDied(c *Container, why error) monitor.Exit {
	e.log.Warn("monitor ended without exit status; container killed", "container", c.ID, "cause", why)
	return monitor.Exit{ExitCode: 137, FinishedAt: time.Now().UTC(), Error: monitorDiedError}
}

// killContainerCgroup kills every process in c's cgroup and removes it.
// The path is the one in the bundle's config.json; with no bundle (a
// start that failed removed it, a reboot emptied the exec root) the one
// writeBundle gives the spec.
func (e *Engine) killContainerCgroup(c *Container) {
	t0 := time.Now()
	cg, err := e.cgroupOf(c)
	if err != nil {
		c.mu.Lock()
		path := filepath.Join(e.cgroupParent(c.HostConfig), c.ID)
		c.mu.Unlock()
		cg, err = e.cgroups(path)
	}
	if err == nil {
		err = killCgroup(cg)
	}
	if err != nil {
		e.log.Warn("clean up the cgroup of a dead monitor's container", "container", c.ID, "err", err)
		return
	}
	e.log.Debug("container cgroup killed and removed", "container", c.ID, "took", time.Since(t0))
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

// startCleanup runs when a start fails after the bundle was written: the
// monitor may have died (or been killed by Spawn) with the container's
// init created, or after the program started, leaving them and the cgroup
// with no owner. A start whose last step failed (the running record could
// not be written: a full disk) ends the same way: the caller was told the
// start failed, so the program does not run on unrecorded; its monitor
// records that exit.
func (e *Engine) startCleanup(c *Container, err *error) {
	if *err != nil {
		e.killContainerCgroup(c)
	}
}

// abortedStart cleans up, at restore, after an engine that died in the
// middle of starting c (the record still says not running): a bundle left
// behind means a monitor may be waiting with the container's init created,
// its cgroup and network namespace set up. Killing the cgroup ends init;
// the monitor then records that exit and leaves, and the rest is removed.
func (e *Engine) abortedStart(c *Container) {
	bundle := e.bundleDir(c.ID)
	if _, err := os.Stat(bundle); err != nil {
		return
	}
	e.log.Warn("the engine died while starting the container: cleaning up", "container", c.ID)
	e.killContainerCgroup(c)
	// The monitor removes its socket last; give it a moment so that it
	// writes nothing into a removed bundle.
	sock := filepath.Join(bundle, monitor.SocketFile)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(sock); err != nil {
			break
		}
	}
	e.netStop(c)
	e.releaseShm(c) // namespaces.go
	os.RemoveAll(bundle)
}
