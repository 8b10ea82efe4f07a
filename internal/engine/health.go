package engine

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Health checks, as Docker runs them: the probe is an exec in the container
// (events exec_create/exec_start/exec_die included), every Interval (every
// StartInterval while in the start period), killed at Timeout. A success
// makes the container healthy; Retries failures in a row make it unhealthy;
// failures during the start period do not count. The last five results are
// kept in State.Health.Log, and each change of status is a
// "health_status: STATUS" event. The prober follows the container's run (it
// ends when the run ends) and starts again with the engine for running
// containers.

// Docker's defaults and limits.
const (
	healthDefaultInterval      = 30 * time.Second
	healthDefaultTimeout       = 30 * time.Second
	healthDefaultStartInterval = 5 * time.Second
	healthDefaultRetries       = 3
	healthMaxLog               = 5
	healthMaxOutput            = 4096
	healthMinDuration          = time.Millisecond
)

// mergeHealthcheck fills the user's partial health check from the image's,
// field by field (--health-interval alone keeps the image's command).
func mergeHealthcheck(user, img *container.HealthConfig) *container.HealthConfig {
	if user == nil {
		if img == nil {
			return nil
		}
		h := *img
		return &h
	}
	if img == nil {
		return user
	}
	h := *user
	if len(h.Test) == 0 {
		h.Test = img.Test
	}
	if h.Interval == 0 {
		h.Interval = img.Interval
	}
	if h.Timeout == 0 {
		h.Timeout = img.Timeout
	}
	if h.StartPeriod == 0 {
		h.StartPeriod = img.StartPeriod
	}
	if h.StartInterval == 0 {
		h.StartInterval = img.StartInterval
	}
	if h.Retries == 0 {
		h.Retries = img.Retries
	}
	return &h
}

// validateHealthcheck rejects what Docker rejects, with its messages.
func validateHealthcheck(h *container.HealthConfig) error {
	if h == nil {
		return nil
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"Interval", h.Interval}, {"Timeout", h.Timeout}, {"StartPeriod", h.StartPeriod}, {"StartInterval", h.StartInterval}} {
		if d.v != 0 && d.v < healthMinDuration {
			return errdefs.Invalid("%s in Healthcheck cannot be less than %s", d.name, healthMinDuration)
		}
	}
	if h.Retries < 0 {
		return errdefs.Invalid("Retries in Healthcheck cannot be negative")
	}
	if len(h.Test) > 0 {
		switch h.Test[0] {
		case "NONE", "CMD", "CMD-SHELL":
		default:
			return errdefs.Invalid("unknown Healthcheck type %q", h.Test[0])
		}
		if h.Test[0] != "NONE" && len(h.Test) < 2 {
			return errdefs.Invalid("Healthcheck %s needs a command", h.Test[0])
		}
	}
	return nil
}

// probeCommand is the command of a health check, or nil when there is none.
func probeCommand(h *container.HealthConfig) []string {
	if h == nil || len(h.Test) < 2 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		return []string{"/bin/sh", "-c", strings.Join(h.Test[1:], " ")}
	}
	return nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// startHealth starts the prober for the run that exited closes (start and
// restore call it). fresh resets the health to "starting" (a new run);
// after an engine restart the recorded health carries on.
func (e *Engine) startHealth(c *Container, exited chan struct{}, fresh bool) {
	c.mu.Lock()
	h := c.Config.Healthcheck
	cmd := probeCommand(h)
	if cmd == nil {
		c.State.Health = nil
		c.mu.Unlock()
		return
	}
	if fresh || c.State.Health == nil {
		c.State.Health = &container.Health{Status: container.Starting}
		e.persistHealth(c)
	}
	hc := *h
	c.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.healthLoop(c, exited, hc, cmd)
	}()
}

func (e *Engine) healthLoop(c *Container, exited chan struct{}, h container.HealthConfig, cmd []string) {
	interval := orDefault(h.Interval, healthDefaultInterval)
	startInterval := orDefault(h.StartInterval, healthDefaultStartInterval)
	if h.StartInterval == 0 && h.Interval != 0 {
		// Docker probes at Interval during the start period unless a
		// start interval was asked for.
		startInterval = interval
	}
	timeout := orDefault(h.Timeout, healthDefaultTimeout)
	retries := h.Retries
	if retries <= 0 {
		retries = healthDefaultRetries
	}
	for {
		c.mu.Lock()
		inStart := c.State.Health != nil && c.State.Health.Status == container.Starting &&
			time.Since(c.State.StartedAt) < h.StartPeriod
		c.mu.Unlock()
		wait := interval
		if inStart {
			wait = startInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-exited:
			t.Stop()
			return
		case <-e.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		c.mu.Lock()
		paused := c.State.Paused
		c.mu.Unlock()
		if paused {
			continue
		}
		res := e.probe(c, cmd, timeout)
		select {
		case <-exited:
			return // the result of a dying container says nothing
		default:
		}
		e.recordHealth(c, res, retries, h.StartPeriod)
	}
}

// probe runs the check once as an exec; a check still running at timeout
// is killed.
func (e *Engine) probe(c *Container, cmd []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now()}
	fail := func(msg string) *container.HealthcheckResult {
		res.End, res.ExitCode, res.Output = time.Now(), -1, msg
		return res
	}
	ctx := e.ctx
	id, err := e.ExecCreate(ctx, c.ID, &container.ExecCreateRequest{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return fail(err.Error())
	}
	defer func() {
		e.execs.mu.Lock()
		delete(e.execs.byID, id)
		e.execs.mu.Unlock()
	}()
	// Output through a pipe of ours: the exec's Wait does not wait for
	// processes the check left behind, which may hold it open.
	pr, pw, err := os.Pipe()
	if err != nil {
		return fail(err.Error())
	}
	defer pr.Close()
	var out limitedBuffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		buf := make([]byte, 4096)
		for {
			n, err := pr.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- e.ExecStart(ctx, id, ExecStartOptions{Stdout: pw, Stderr: pw}) }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	timedOut := false
	stopping := false
	select {
	case err = <-done:
	case <-e.ctx.Done():
		stopping = true
	case <-timer.C:
		timedOut = true
	}
	if timedOut || stopping {
		if x, xerr := e.execs.get(id); xerr == nil {
			x.mu.Lock()
			pid := x.Pid
			x.mu.Unlock()
			if pid > 0 {
				// The exec's parent; its child in the container dies with it
				// (PR_SET_PDEATHSIG).
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		err = <-done
	}
	pw.Close()
	// What the check wrote is in the pipe; a process it left behind may
	// keep the pipe open: don't wait for it.
	pr.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	<-readDone
	res.End = time.Now()
	if timedOut {
		res.ExitCode = -1
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		return res
	}
	if err != nil {
		return fail(err.Error())
	}
	res.Output = out.String()
	if x, xerr := e.execs.get(id); xerr == nil {
		x.mu.Lock()
		if x.ExitCode != nil {
			res.ExitCode = *x.ExitCode
		}
		x.mu.Unlock()
	}
	return res
}

// recordHealth applies one result to the container's health.
func (e *Engine) recordHealth(c *Container, res *container.HealthcheckResult, retries int, startPeriod time.Duration) {
	c.mu.Lock()
	h := c.State.Health
	if h == nil || !c.State.Running {
		c.mu.Unlock()
		return
	}
	old := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > healthMaxLog {
		h.Log = h.Log[len(h.Log)-healthMaxLog:]
	}
	if res.ExitCode == 0 {
		h.FailingStreak = 0
		h.Status = container.Healthy
	} else if old == container.Starting && time.Since(c.State.StartedAt) < startPeriod {
		// Failures in the start period do not count.
	} else {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	status := h.Status
	e.persistHealth(c)
	c.mu.Unlock()
	if status != old {
		e.containerEvent(c, events.Action(string(events.ActionHealthStatus)+": "+string(status)), nil)
	}
}

// healthSuffix is what ps adds to "Up ...".
func healthSuffix(h *container.Health) string {
	if h == nil {
		return ""
	}
	switch h.Status {
	case container.Starting:
		return " (health: starting)"
	case container.Healthy:
		return " (healthy)"
	case container.Unhealthy:
		return " (unhealthy)"
	}
	return ""
}

// limitedBuffer keeps the first healthMaxOutput bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := healthMaxOutput - len(b.buf); room > 0 {
		b.buf = append(b.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (b *limitedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// healthFilterValue is what `ps --filter health=` matches: starting,
// healthy, unhealthy or none.
func healthFilterValue(h *container.Health) string {
	if h == nil {
		return "none"
	}
	return string(h.Status)
}

// copyHealth copies h for inspect (the prober keeps changing the original).
func copyHealth(h *container.Health) *container.Health {
	if h == nil {
		return nil
	}
	out := *h
	out.Log = make([]*container.HealthcheckResult, len(h.Log))
	for i, r := range h.Log {
		rc := *r
		out.Log[i] = &rc
	}
	return &out
}

// persistHealth writes a probe's result; the caller holds c.mu. Nobody
// asked for it, so a failed write is logged, and the next probe writes
// again.
func (e *Engine) persistHealth(c *Container) {
	if err := e.persist(c); err != nil {
		e.log.Warn("record health", "container", c.ID, "err", err)
	}
}
