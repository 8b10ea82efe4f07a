package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/monitor"
	"github.com/skiff-dev/skiff/internal/ocispec"
	"github.com/skiff-dev/skiff/internal/runtime"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

// ContainerStart starts a created or exited container.
func (e *Engine) ContainerStart(ctx context.Context, ref string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err = c.beginOpLocked(ctx); err == nil {
		defer c.endOp()
		err = c.check(evStart) // running: 304; paused, being removed: Conflict
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if _, err := e.cancelRestart(c, false); err != nil {
		return err
	}
	c.mu.Lock()
	c.ManualStop = false
	autoRemove := c.HostConfig.AutoRemove
	c.mu.Unlock()
	err = e.start(ctx, c)
	if err != nil && autoRemove {
		// Docker removes a --rm container whose start failed; the
		// operation is still ours.
		if rerr := e.removeLocked(context.WithoutCancel(ctx), c, true); rerr != nil {
			e.log.Warn("auto-remove after failed start", "container", c.ID, "err", rerr)
		} else {
			e.removeAnonVolumes(c)
		}
	}
	return err
}

// start runs c; the caller has begun an operation on c (beginOp).
func (e *Engine) start(ctx context.Context, c *Container) (err error) {
	t0 := time.Now()
	bundle := e.bundleDir(c.ID)
	os.RemoveAll(bundle)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs"), 0o711); err != nil {
		return fmt.Errorf("create bundle: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(bundle)
		}
	}()
	faults.Point("start-before-net")
	if err := e.netStart(ctx, c); err != nil {
		return e.startFailed(c, err)
	}
	faults.Point("start-after-net")
	defer func() {
		if err != nil {
			e.netStop(c)
		}
	}()
	defer func() {
		if err != nil {
			e.releaseShm(c) // namespaces.go
		}
	}()
	if err := e.writeBundle(ctx, c, bundle); err != nil {
		return e.specFailed(c, err) // namespaces.go
	}
	defer e.startCleanup(c, &err) // a monitor that died on the way (monitordeath.go)
	t1 := time.Now()
	proc, err := e.monitors.Spawn(ctx, bundle)
	if err != nil {
		return e.startFailed(c, err)
	}
	t2 := time.Now()
	faults.Point("start-after-spawn")
	cl, err := monitor.Dial(bundle)
	if err != nil {
		proc.Kill()
		proc.Wait()
		return e.startFailed(c, fmt.Errorf("connect to monitor: %w", err))
	}
	defer cl.Close()

	c.mu.Lock()
	pending := c.attachers
	c.attachers = nil
	c.mu.Unlock()
	for _, a := range pending {
		conn, err := cl.Attach(ctx, a.opts.Stdin != nil, a.opts.Stdout != nil, a.opts.Stderr != nil)
		a.ready <- attachResult{conn: conn, err: err}
	}

	t3 := time.Now()
	starting := make(chan struct{})
	c.mu.Lock()
	c.starting = starting
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.starting = nil
		c.mu.Unlock()
		close(starting)
	}()
	pid, err := cl.Start(ctx)
	t4 := time.Now()
	if err != nil {
		// The monitor records the failure and exits; reap it.
		proc.Wait()
		return e.startFailed(c, err)
	}
	stat, _ := procStartTime(proc.Pid)
	exited := make(chan struct{})
	c.mu.Lock()
	perr := e.transition(c, evStart, func(c *Container) {
		// A run starts with a clean record of its own (inspect shows no
		// exit code, error, finish time or health of the last run).
		c.State = State{Status: c.State.Status, Running: c.State.Running, Pid: pid,
			StartedAt: time.Now().UTC(), MonitorPid: proc.Pid, MonitorStart: stat}
		c.HasBeenStartedBefore = true
	})
	if perr == nil {
		c.exited = exited
	}
	c.mu.Unlock()
	if perr != nil {
		// The record still says what it said before: so must the
		// host. The process goes (the monitor records its end and
		// exits), and the deferred steps above release the rest.
		if kerr := cl.Kill(context.WithoutCancel(ctx), syscall.SIGKILL); kerr != nil {
			proc.Kill()
		}
		proc.Wait()
		return errdefs.Wrap(errdefs.KindSystem, perr)
	}
	e.log.Debug("container started", "id", c.ID[:12], "bundle", t1.Sub(t0), "spawn", t2.Sub(t1),
		"attach", t3.Sub(t2), "exec", t4.Sub(t3), "persist", time.Since(t4))
	e.containerEvent(c, events.ActionStart, nil)
	e.startHealth(c, exited, true) // health.go
	// Reaping the monitor is not tracked by e.wg: an engine shutting down
	// must not wait for running containers (they outlive it).
	done := make(chan struct{})
	clean := false
	go func() {
		st, _ := proc.Wait()
		clean = st != nil && st.Success()
		close(done)
	}()
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		select {
		case <-done:
			e.monitorExited(c, exited, clean) // monitordeath.go
		case <-e.ctx.Done():
		}
	}()
	return nil
}

// startFailed records a start error the way Docker does: the exit code of the
// exec failure (127/126) and the message, and the status the container had.
func (e *Engine) startFailed(c *Container, err error) error {
	code := errdefs.StartExitCode(err)
	c.mu.Lock()
	// created stays created, as Docker; a policy's restart ends exited.
	werr := e.transition(c, evStartFailed, func(c *Container) {
		c.State.ExitCode = code
		c.State.Error = err.Error()
		c.State.FinishedAt = time.Now().UTC()
	})
	pending := c.attachers
	c.attachers = nil
	c.mu.Unlock()
	for _, a := range pending {
		a.ready <- attachResult{err: err}
	}
	os.RemoveAll(e.bundleDir(c.ID))
	e.containerEvent(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(code)})
	if errdefs.KindOf(err) == errdefs.KindUnknown {
		err = errdefs.Wrap(errdefs.KindSystem, err)
	}
	if werr != nil {
		// The start failed and so did recording it: say both.
		e.log.Error("record a failed start", "container", c.ID, "err", werr)
		err = fmt.Errorf("%w (and %v)", err, werr)
	}
	return fmt.Errorf("failed to create task for container: %w", err)
}

// volatileOverlay adds overlayfs's volatile option to the root of a --rm
// container: its upper layer goes with it, so nothing needs to reach the
// disk, and the unmount when it exits skips syncing the whole upper file
// system (3 to 4 ms of every `run --rm` here). Overlay leaves a marker,
// work/incompat/volatile, that makes it refuse the next mount. A start
// after the first (a restart) finds it from a clean unmount on this boot:
// a --rm container that was running when the host went down is removed
// when the engine restores. So it is removed first.
func (e *Engine) volatileOverlay(ctx context.Context, key string, mounts []snapshot.Mount) []snapshot.Mount {
	if len(mounts) != 1 || mounts[0].Type != "overlay" {
		return mounts
	}
	d, err := e.snaps.Dirs(ctx, key)
	if err != nil {
		return mounts // mounted without the option: only slower
	}
	os.RemoveAll(filepath.Join(d.Work, "work", "incompat"))
	m := mounts[0]
	m.Options = append(slices.Clone(m.Options), "volatile")
	return []snapshot.Mount{m}
}

func (e *Engine) writeBundle(ctx context.Context, c *Container, bundle string) error {
	mounts, err := e.rootfs.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		return fmt.Errorf("root filesystem of %s: %w", c.ID, err)
	}
	c.mu.Lock()
	cfg, hc := *c.Config, *c.HostConfig
	c.mu.Unlock()
	dir := e.containerDir(c.ID)
	if hc.AutoRemove {
		mounts = e.volatileOverlay(ctx, c.SnapshotKey, mounts)
	}
	nsPaths, shm, err := e.namespaceSpec(c, &hc) // namespaces.go
	if err != nil {
		return err
	}
	spec, err := ocispec.Build(ocispec.Input{
		ID: c.ID, Config: &cfg, HostConfig: &hc,
		RootPath:   filepath.Join(bundle, "rootfs"),
		RootMounts: mounts,
		CgroupPath: filepath.Join(e.cgroupParent(&hc), c.ID),
		HostsPath:  filepath.Join(dir, "hosts"), HostnamePath: filepath.Join(dir, "hostname"),
		ResolvConfPath: filepath.Join(dir, "resolv.conf"),
		HostNetwork:    hc.NetworkMode.IsHost(),
		NamespacePaths: nsPaths, ShmPath: shm,
	})
	if err != nil {
		return err
	}
	spec.Mounts = append(spec.Mounts, e.specMounts(c)...)
	rootfsPropagation(spec)                        // mountprop.go
	if err := e.applyInit(spec, &hc); err != nil { // --init (init.go)
		return err
	}
	if err := e.criSpec(c, spec); err != nil { // cri.go
		return err
	}
	if err := e.netSpec(c, spec); err != nil {
		return err
	}
	if err := runtime.MoveSeccompToFile(spec, bundle); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(bundle, "config.json"), spec); err != nil {
		return err
	}
	logCfg, err := e.logConfig(c) // logconfig.go
	if err != nil {
		return err
	}
	mc := monitor.Config{
		ID: c.ID, Log: logCfg, OpenStdin: cfg.OpenStdin, StdinOnce: cfg.StdinOnce,
		Tty: cfg.Tty, ShimPath: e.cfg.ShimPath,
		ConsoleHeight: uint16(hc.ConsoleSize[0]), ConsoleWidth: uint16(hc.ConsoleSize[1]),
	}
	return writeJSON(filepath.Join(bundle, "monitor.json"), mc)
}

func (e *Engine) cgroupParent(hc *container.HostConfig) string {
	if hc.CgroupParent != "" {
		return hc.CgroupParent
	}
	return e.cfg.CgroupParent
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// onExit records the exit of c's current run (closing exited), then applies
// --rm and the restart policy.
func (e *Engine) onExit(c *Container, exited chan struct{}) {
	bundle := e.bundleDir(c.ID)
	ex, err := monitor.ReadExit(bundle)
	if err != nil {
		// The monitor died without recording the exit (killed -9): the
		// container's processes died with it or are beyond our reach.
		e.log.Warn("monitor ended without exit status", "container", c.ID, "err", err)
		ex = monitor.Exit{ExitCode: 137, FinishedAt: time.Now().UTC(), Error: "monitor exited unexpectedly"}
	}
	e.netStop(c)
	e.releaseShm(c) // namespaces.go
	c.mu.Lock()
	// A --rm container (never one with a restart policy: create refuses
	// that) is removed right below, which deletes its record: the exit is
	// written only if that removal fails, one commit (two fdatasyncs) less
	// before `run --rm` returns. While the engine shuts down the record
	// stays "running": the next engine finds out what happened from
	// exit.json.
	autoRemove := c.HostConfig.AutoRemove
	write := e.ctx.Err() == nil && !autoRemove
	serr := e.applyTransition(c, evExit, write, func(c *Container) {
		c.State.Pid = 0
		c.State.MonitorPid, c.State.MonitorStart = 0, 0
		c.State.ExitCode = ex.ExitCode
		c.State.OOMKilled = ex.OOMKilled
		c.State.Error = ex.Error
		c.State.FinishedAt = ex.FinishedAt
		if c.State.FinishedAt.IsZero() {
			c.State.FinishedAt = time.Now().UTC()
		}
	})
	if serr == nil || errdefs.IsConflict(serr) {
		// Kept when the exit could not be written: the record says
		// running, and exit.json is how the next engine learns the end.
		// Removed under c.mu (a handful of small files): once the exit
		// is recorded a start may begin, and it writes a new bundle at
		// the same path.
		os.RemoveAll(bundle)
	}
	waiters := c.takeWaiters(container.WaitConditionNextExit, container.WaitConditionNotRunning)
	c.mu.Unlock()
	close(exited)
	if ex.OOMKilled {
		e.containerEvent(c, events.ActionOOM, nil)
	}
	e.containerEvent(c, events.ActionDie, map[string]string{"exitCode": strconv.Itoa(ex.ExitCode)})
	for _, w := range waiters {
		w.ch <- container.WaitResponse{StatusCode: int64(ex.ExitCode)}
	}
	if e.afterExit(c) { // restart policy (restart.go)
		return
	}
	if autoRemove && e.ctx.Err() == nil {
		if err := e.remove(context.Background(), c, false); err != nil {
			e.log.Warn("auto-remove failed", "container", c.ID, "err", err)
			// The exit was not written (the removal was to delete
			// the record): write what is true now.
			c.mu.Lock()
			if e.reg.has(c) {
				if err := e.persist(c); err != nil {
					e.log.Error("record the exit of a container", "container", c.ID, "err", err)
				}
			}
			c.mu.Unlock()
		} else {
			e.removeAnonVolumes(c)
		}
	}
}

// takeWaiters removes and returns the waiters for the given conditions; the
// caller holds c.mu.
func (c *Container) takeWaiters(conds ...container.WaitCondition) []waiter {
	var out, keep []waiter
	for _, w := range c.waiters {
		match := false
		for _, cond := range conds {
			if w.condition == cond {
				match = true
			}
		}
		if match {
			out = append(out, w)
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
	return out
}

// ContainerKill sends a signal to the container's first process.
func (e *Engine) ContainerKill(ctx context.Context, ref, signal string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	sig := syscall.SIGKILL
	if signal != "" {
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	if starting := c.starting; starting != nil && !c.State.Running {
		// Released but not yet recorded: its first output may be what
		// made the client send this signal.
		c.mu.Unlock()
		select {
		case <-starting:
		case <-ctx.Done():
			return ctx.Err()
		}
		c.mu.Lock()
	}
	running := c.State.Running
	var werr error
	if running {
		// As Docker: a killed container is not restarted by its policy.
		werr = e.setManualStop(c, true)
	}
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict("Cannot kill container: %s: container %s is not running", ref, c.ID)
	}
	if werr != nil {
		return werr
	}
	if err := e.signal(ctx, c, sig); err != nil {
		return err
	}
	e.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(sig))})
	return nil
}

func (e *Engine) signal(ctx context.Context, c *Container, sig syscall.Signal) error {
	cl, err := monitor.Dial(e.bundleDir(c.ID))
	if err != nil {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	defer cl.Close()
	if err := cl.Kill(ctx, sig); err != nil {
		return fmt.Errorf("signal container %s: %w", c.ID, err)
	}
	e.afterSignal(c, sig) // a paused container is thawed for SIGKILL (living.go)
	return nil
}

// ContainerStop sends the stop signal, waits, then kills.
func (e *Engine) ContainerStop(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.beginOpLocked(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	defer c.endOp()
	running := c.State.Running
	var werr error
	if running {
		werr = e.setManualStop(c, true)
	}
	c.mu.Unlock()
	if werr != nil {
		return werr
	}
	if !running {
		// A container waiting for its policy's restart stops waiting.
		canceled, err := e.cancelRestart(c, true)
		if err != nil {
			return err
		}
		if !canceled {
			return errdefs.NotModified("container %s is already stopped", c.ID)
		}
		e.containerEvent(c, events.ActionStop, nil)
		return nil
	}
	return e.stop(ctx, c, timeout, signal)
}

// setManualStop records that the user stopped c (the restart policy leaves
// it stopped); the caller holds c.mu. A failed write changes nothing.
func (e *Engine) setManualStop(c *Container, v bool) error {
	if c.ManualStop == v {
		return nil
	}
	c.ManualStop = v
	if err := e.persist(c); err != nil {
		c.ManualStop = !v
		return fmt.Errorf("record the stop of container %s: %w", c.ID, err)
	}
	return nil
}

func (e *Engine) stop(ctx context.Context, c *Container, timeout *int, signal string) error {
	c.mu.Lock()
	exited := c.exited
	stopSignal := c.Config.StopSignal
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	c.mu.Unlock()
	if timeout != nil {
		t = *timeout
	}
	if signal == "" {
		signal = stopSignal
	}
	sig := syscall.SIGTERM
	if signal != "" {
		var err error
		if sig, err = ParseSignal(signal); err != nil {
			return err
		}
	}
	if exited == nil {
		return nil
	}
	if t != 0 {
		if err := e.signal(ctx, c, sig); err == nil {
			faults.Point("stop-after-signal")
			var timer <-chan time.Time
			if t > 0 {
				timer = time.After(time.Duration(t) * time.Second)
			}
			select {
			case <-exited:
				e.containerEvent(c, events.ActionStop, nil)
				return nil
			case <-timer:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if err := e.signal(ctx, c, syscall.SIGKILL); err != nil {
		select {
		case <-exited:
			return nil
		default:
			return err
		}
	}
	select {
	case <-exited:
	case <-ctx.Done():
		return ctx.Err()
	}
	e.containerEvent(c, events.ActionStop, nil)
	return nil
}

// ContainerRestart stops (when running) and starts.
func (e *Engine) ContainerRestart(ctx context.Context, ref string, timeout *int, signal string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	if err := c.beginOp(ctx); err != nil {
		return err
	}
	defer c.endOp()
	if _, err := e.cancelRestart(c, false); err != nil {
		return err
	}
	c.mu.Lock()
	running := c.State.Running
	c.ManualStop = running // the stop below is not an exit for the restart policy
	c.mu.Unlock()
	if running {
		if err := e.stop(ctx, c, timeout, signal); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.ManualStop = false
	// A remove that ran while this restart waited for its turn leaves
	// the container removed (or dead): start refuses it, as Docker's
	// restart does, rather than spawn a process it would kill again.
	err = c.check(evStart)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := e.start(ctx, c); err != nil {
		return err
	}
	e.containerEvent(c, events.ActionRestart, nil)
	return nil
}

// ContainerWait registers a waiter and returns its channel.
func (e *Engine) ContainerWait(ctx context.Context, ref string, condition string) (<-chan container.WaitResponse, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, err
	}
	cond := container.WaitCondition(condition)
	switch cond {
	case "":
		cond = container.WaitConditionNotRunning
	case container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		return nil, errdefs.Invalid("invalid condition: %q", condition)
	}
	ch := make(chan container.WaitResponse, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if cond == container.WaitConditionNotRunning && !c.State.Running {
		ch <- container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
		return ch, nil
	}
	c.waiters = append(c.waiters, waiter{condition: cond, ch: ch})
	return ch, nil
}

// ContainerRemove deletes a container and everything it owns.
func (e *Engine) ContainerRemove(ctx context.Context, ref string, force, removeVolumes bool) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	if err := e.remove(ctx, c, force); err != nil {
		return err
	}
	if removeVolumes {
		e.removeAnonVolumes(c)
	}
	return nil
}

func (e *Engine) remove(ctx context.Context, c *Container, force bool) error {
	if _, err := e.cancelRestart(c, false); err != nil {
		return err
	}
	if err := c.beginOp(ctx); err != nil {
		return err
	}
	defer c.endOp()
	return e.removeLocked(ctx, c, force)
}

// removeLocked is remove for a caller that has begun an operation on c. What fails half-way
// leaves the container dead (recorded), as Docker does: nothing restarts
// it, and a second remove tries again.
func (e *Engine) removeLocked(ctx context.Context, c *Container, force bool) error {
	c.mu.Lock()
	// An exit since remove canceled the restart policy may have armed
	// it again.
	_, err := e.cancelRestartLocked(c, false)
	if err == nil {
		err = c.check(evRemove)
	}
	running, exited := c.State.Running, c.exited
	c.mu.Unlock()
	if err != nil && running && force {
		if err := e.signal(ctx, c, syscall.SIGKILL); err != nil {
			e.log.Warn("kill before remove", "container", c.ID, "err", err)
		}
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			return errdefs.System("could not kill running container %s, cannot remove", c.ID)
		case <-ctx.Done():
			return ctx.Err()
		}
	} else if err != nil {
		return err
	}
	c.mu.Lock()
	_, err = e.cancelRestartLocked(c, false) // armed by the exit of the kill
	if err == nil {
		err = e.transition(c, evRemove, nil)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	var errs []error
	e.netStop(c)
	e.releaseShm(c) // before the container's directory goes
	faults.Point("rm-mid")
	if err := e.rootfs.Remove(context.WithoutCancel(ctx), c.SnapshotKey); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove root filesystem: %w", err))
	}
	if err := os.RemoveAll(e.containerDir(c.ID)); err != nil {
		errs = append(errs, err)
	}
	os.RemoveAll(e.bundleDir(c.ID))
	if len(errs) == 0 {
		if err := e.unpersist(c.ID); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		err := fmt.Errorf("remove container %s: %w", c.ID, errors.Join(errs...))
		c.mu.Lock()
		if werr := e.transition(c, evRemoveFailed, nil); werr != nil {
			err = fmt.Errorf("%w (and %v)", err, werr)
		}
		c.mu.Unlock()
		return err
	}
	e.reg.remove(c)
	c.mu.Lock()
	waiters := c.takeWaiters(container.WaitConditionRemoved, container.WaitConditionNextExit, container.WaitConditionNotRunning)
	code := c.State.ExitCode
	c.mu.Unlock()
	e.containerEvent(c, events.ActionDestroy, nil)
	for _, w := range waiters {
		w.ch <- container.WaitResponse{StatusCode: int64(code)}
	}
	return nil
}

// restore loads every container record and reconnects to live monitors.
func (e *Engine) restore(ctx context.Context) error {
	all, err := e.loadAll()
	if err != nil {
		return err
	}
	for _, c := range all {
		e.reg.add(c)
		if !c.State.Running {
			e.abortedStart(c) // monitordeath.go
			continue
		}
		exited := make(chan struct{})
		c.exited = exited
		if alive(c.State.MonitorPid, c.State.MonitorStart) {
			e.resumeCommitPause(ctx, c)     // imageio.go
			e.startHealth(c, exited, false) // health checks resume (health.go)
			e.wg.Add(1)
			go func() {
				defer e.wg.Done()
				if waitPid(e.ctx, c.State.MonitorPid, c.State.MonitorStart) {
					e.monitorExited(c, exited, false) // exit status unknown
				}
			}()
			continue
		}
		e.monitorExited(c, exited, false)
	}
	e.removeOrphans(ctx)
	e.restartOnBoot(all) // restart policies (restart.go)
	return nil
}

// procStartTime reads the start time of pid (clock ticks since boot).
func procStartTime(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name may contain spaces and parentheses: split after the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	return strconv.ParseUint(f[19], 10, 64)
}

func alive(pid int, start uint64) bool {
	if pid <= 0 {
		return false
	}
	st, err := procStartTime(pid)
	return err == nil && st == start
}

// waitPid blocks until pid (not our child) exits, through a pidfd. It
// returns false when ctx ends first.
func waitPid(ctx context.Context, pid int, start uint64) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	if !alive(pid, start) {
		return true
	}
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 500)
		if n > 0 {
			return true
		}
		if err != nil && err != unix.EINTR {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
	}
}

func (e *Engine) containerEvent(c *Container, action events.Action, extra map[string]string) {
	c.mu.Lock()
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	c.mu.Unlock()
	for k, v := range extra {
		attrs[k] = v
	}
	e.events.publish(events.ContainerEventType, action, c.ID, attrs)
}
