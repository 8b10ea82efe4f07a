package engine

import (
	"time"

	"github.com/moby/moby/api/types/container"
)

// Restart policies, as Docker applies them (daemon/restartmanager):
//
//   - no: never.
//   - on-failure[:N]: after a non-zero exit, at most N times (0: no limit).
//   - always: after every exit, except one the user asked for (stop, kill
//     through stop); such a container still comes back when the engine
//     starts.
//   - unless-stopped: like always, but a container the user stopped stays
//     stopped across engine restarts too.
//
// Between an exit and the restart the container is "restarting" for a
// back-off that starts at 100 ms and doubles on each restart (at most one
// minute), and goes back to 100 ms once a run lasted 10 s. Docker shows such a
// container as Running with Restarting; skiff keeps Running false (no
// process exists), with Restarting true and Status "restarting".

const (
	restartBackoffMin   = 100 * time.Millisecond
	restartBackoffMax   = time.Minute
	restartBackoffReset = 10 * time.Second
)

// restartState is a container's pending restart (runtime only).
type restartState struct {
	backoff time.Duration // the last delay; 0 = none yet
	timer   *time.Timer   // pending restart, nil when none
	gen     uint64        // identifies the pending restart to its timer
}

// shouldRestart applies the policy to an exit; the caller holds c.mu.
func (c *Container) shouldRestart(exitCode int, manualStop bool) bool {
	p := c.HostConfig.RestartPolicy
	switch {
	case p.IsAlways():
		return !manualStop
	case p.IsUnlessStopped():
		return !manualStop
	case p.IsOnFailure():
		return exitCode != 0 && !manualStop && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// afterExit runs at the end of onExit: it schedules a restart when the
// policy asks for one. It reports whether one was scheduled.
func (e *Engine) afterExit(c *Container) bool {
	if e.ctx.Err() != nil {
		return false // the engine is stopping: the next one decides
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.markedForRemoval() || !c.shouldRestart(c.State.ExitCode, c.ManualStop) {
		return false
	}
	if c.restart == nil {
		c.restart = &restartState{}
	}
	rs := c.restart
	ran := c.State.FinishedAt.Sub(c.State.StartedAt)
	switch {
	case ran >= restartBackoffReset || rs.backoff == 0:
		rs.backoff = restartBackoffMin
	case rs.backoff < restartBackoffMax:
		rs.backoff = min(2*rs.backoff, restartBackoffMax)
	}
	if err := e.scheduleRestart(c, rs.backoff); err != nil {
		e.log.Error("restart policy", "container", c.ID, "err", err)
		return false
	}
	return true
}

// scheduleRestart marks c restarting and starts it after delay; the caller
// holds c.mu. When the mark cannot be written, no restart is scheduled:
// the container stays exited, as its record says.
func (e *Engine) scheduleRestart(c *Container, delay time.Duration) error {
	if err := e.transition(c, evRestartWait, nil); err != nil {
		return err
	}
	if c.restart == nil {
		c.restart = &restartState{}
	}
	rs := c.restart
	if rs.timer != nil {
		rs.timer.Stop()
	}
	rs.gen++
	gen := rs.gen
	rs.timer = time.AfterFunc(delay, func() { e.restartNow(c, gen) })
	return nil
}

// restartNow is the end of the back-off.
func (e *Engine) restartNow(c *Container, gen uint64) {
	if e.ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	if err := c.beginOpLocked(e.ctx); err != nil {
		c.mu.Unlock()
		return // the engine is shutting down
	}
	defer c.endOp()
	if c.restart == nil || c.restart.timer == nil || c.restart.gen != gen {
		c.mu.Unlock()
		return // canceled or superseded
	}
	c.restart.timer = nil
	if c.check(evStart) != nil {
		c.mu.Unlock()
		return
	}
	c.RestartCount++ // written with the start, or with its failure
	c.mu.Unlock()
	if err := e.start(e.ctx, c); err != nil {
		// startFailed recorded it (restarting → exited); as Docker, the
		// policy stops here.
		e.log.Warn("restart by policy failed", "container", c.ID, "err", err)
	}
}

// cancelRestart drops a pending restart, leaving c exited (and, with
// manualStop, stopped by the user). It reports whether one was pending; a
// failed write leaves c restarting, as its record says, with no timer: the
// next start, stop or remove tries again.
func (e *Engine) cancelRestart(c *Container, manualStop bool) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return e.cancelRestartLocked(c, manualStop)
}

// cancelRestartLocked is cancelRestart for a caller that holds c.mu.
func (e *Engine) cancelRestartLocked(c *Container, manualStop bool) (bool, error) {
	if c.restart != nil && c.restart.timer != nil {
		c.restart.timer.Stop()
		c.restart.timer = nil
	}
	// Restored from the store, a restarting container has no timer in
	// this engine yet.
	if c.State.Status != container.StateRestarting {
		return false, nil
	}
	err := e.transition(c, evRestartCancel, func(c *Container) {
		if manualStop {
			c.ManualStop = true
		}
	})
	return err == nil, err
}

// restartOnBoot brings back, after the engine started, the containers whose
// policy wants them running: always ones, unless-stopped ones the user did
// not stop, on-failure ones whose last run failed, and those that were
// waiting for a restart when the engine went down.
func (e *Engine) restartOnBoot(all []*Container) {
	for _, c := range all {
		c.mu.Lock()
		p := c.HostConfig.RestartPolicy
		want := false
		if !c.State.Running && !c.markedForRemoval() && c.HasBeenStartedBefore {
			manual := c.ManualStop
			if p.IsAlways() {
				manual = false
			}
			want = c.shouldRestart(c.State.ExitCode, manual)
		}
		if want {
			if p.IsAlways() {
				c.ManualStop = false
			}
			if err := e.scheduleRestart(c, 0); err != nil {
				e.log.Error("restart policy at engine start", "container", c.ID, "err", err)
			}
		}
		c.mu.Unlock()
	}
}
