package engine

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// Lifecycle through the engine's API with fakes at its seams (seams.go):
// no root, no monitor, no network.

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// A state change that cannot be written fails the API call, and the
// container, its record and its cgroup all stay as they were.
func TestAPICallFailsWhenStateNotWritten(t *testing.T) {
	env := newTestEngine(t)
	ctx := context.Background()
	c := env.add(t, "web", sRunning)

	env.store.setFail(errDiskFull)
	err := env.e.ContainerPause(ctx, "web")
	if !errors.Is(err, errDiskFull) || errdefs.IsConflict(err) {
		t.Fatalf("pause with a full disk: %v", err)
	}
	if st := c.State; st.Status != sRunning || st.Paused || !st.Running {
		t.Errorf("after a pause that was not recorded: %+v", st)
	}
	if env.cg.frozen || !reflect.DeepEqual(env.cg.calls, []string{"freeze", "thaw"}) {
		t.Errorf("cgroup left frozen=%v after %v", env.cg.frozen, env.cg.calls)
	}
	if rec := env.store.record(t, c.ID); rec.State.Status != sRunning {
		t.Errorf("record says %s", rec.State.Status)
	}

	env.store.setFail(nil)
	if err := env.e.ContainerPause(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	if rec := env.store.record(t, c.ID); rec.State.Status != sPaused || !rec.State.Paused || !rec.State.Running {
		t.Errorf("paused, record says %+v", rec.State)
	}
	wantKind(t, "pause again", env.e.ContainerPause(ctx, "web"), errdefs.KindConflict)

	env.store.setFail(errDiskFull)
	if err := env.e.ContainerUnpause(ctx, "web"); !errors.Is(err, errDiskFull) {
		t.Fatalf("unpause with a full disk: %v", err)
	}
	if c.State.Status != sPaused || !env.cg.frozen {
		t.Errorf("after an unpause that was not recorded: %s, frozen %v", c.State.Status, env.cg.frozen)
	}

	// kill records that the user stopped it first: nothing recorded,
	// nothing sent.
	if err := env.e.ContainerKill(ctx, "web", "KILL"); !errors.Is(err, errDiskFull) || c.ManualStop {
		t.Errorf("kill with a full disk: %v, manual stop %v", err, c.ManualStop)
	}
}

func TestStopOfRestartingContainer(t *testing.T) {
	env := newTestEngine(t)
	ctx := context.Background()
	// As restored from a record: restarting, no timer in this engine.
	c := env.add(t, "r", sRestarting)

	env.store.setFail(errDiskFull)
	if err := env.e.ContainerStop(ctx, "r", nil, ""); !errors.Is(err, errDiskFull) {
		t.Fatalf("stop with a full disk: %v", err)
	}
	if c.State.Status != sRestarting || !c.State.Restarting || c.ManualStop {
		t.Errorf("after a stop that was not recorded: %+v manual %v", c.State, c.ManualStop)
	}
	env.store.setFail(nil)
	if err := env.e.ContainerStop(ctx, "r", nil, ""); err != nil {
		t.Fatal(err)
	}
	rec := env.store.record(t, c.ID)
	if c.State.Status != sExited || rec.State.Status != sExited || !rec.ManualStop || rec.State.Restarting {
		t.Errorf("stopped: %+v, record %+v manual %v", c.State, rec.State, rec.ManualStop)
	}
	wantKind(t, "stop again", env.e.ContainerStop(ctx, "r", nil, ""), errdefs.KindNotModified)
}

// A start that fails at the network leaves the container as Docker does
// (created stays created, an exited one stays exited) with the exit code
// and the error; one that fails after the network is up also gives the
// network back. The bundle goes in both cases.
func TestStartFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		from      container.ContainerState
		attachErr error
		mountsErr error
		detached  bool
	}{
		{"network, first start", sCreated, errdefs.Unavailable("no free address in 172.17.0.0/16"), nil, false},
		{"network, second start", sExited, errdefs.Unavailable("no free address in 172.17.0.0/16"), nil, false},
		{"rootfs after network", sCreated, nil, errors.New("snapshot container-x: no such snapshot"), true},
		{"rootfs after network, second start", sExited, nil, errors.New("snapshot container-x: no such snapshot"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEngine(t)
			env.net.attachErr, env.rootfs.mountsErr = tc.attachErr, tc.mountsErr
			c := env.add(t, "s", tc.from)
			err := env.e.ContainerStart(context.Background(), "s")
			if err == nil {
				t.Fatal("start succeeded")
			}
			if tc.attachErr != nil {
				wantKind(t, "start", err, errdefs.KindUnavailable)
				if !strings.HasPrefix(err.Error(), "failed to create task for container: ") {
					t.Errorf("start: %v", err)
				}
			} else {
				wantKind(t, "start", err, errdefs.KindSystem) // specFailed
			}
			rec := env.store.record(t, c.ID)
			for _, st := range []State{c.State, rec.State} {
				if st.Status != tc.from || st.Running || st.ExitCode != 128 || st.Error == "" || st.FinishedAt.IsZero() {
					t.Errorf("state after the failed start: %+v", st)
				}
			}
			if exists(env.e.bundleDir(c.ID)) {
				t.Error("bundle left behind")
			}
			if env.net.isAttached(c.ID) || (len(env.net.detached) > 0) != tc.detached {
				t.Errorf("network: attached %v, detached %v", env.net.isAttached(c.ID), env.net.detached)
			}
			if c.Net != nil && c.Net.NetNS != "" {
				t.Errorf("record keeps the namespace %s", c.Net.NetNS)
			}
		})
	}
}

// A remove that fails half-way leaves the container dead (recorded), as
// Docker does; the next remove finishes it.
func TestRemoveFailureLeavesDead(t *testing.T) {
	env := newTestEngine(t)
	ctx := context.Background()
	c := env.add(t, "d", sExited)
	wantKind(t, "remove of a running one", func() error {
		r := env.add(t, "running", sRunning)
		defer env.e.reg.remove(r)
		return env.e.ContainerRemove(ctx, "running", false, false)
	}(), errdefs.KindConflict)

	env.rootfs.removeErr = errors.New("unmount: device busy")
	if err := env.e.ContainerRemove(ctx, "d", false, false); err == nil || !strings.Contains(err.Error(), "device busy") {
		t.Fatalf("remove: %v", err)
	}
	rec := env.store.record(t, c.ID)
	if c.State.Status != sDead || !c.State.Dead || rec == nil || rec.State.Status != sDead {
		t.Fatalf("after a failed remove: %+v, record %+v", c.State, rec)
	}
	wantKind(t, "start of a dead one", env.e.ContainerStart(ctx, "d"), errdefs.KindConflict)

	env.rootfs.removeErr = nil
	if err := env.e.ContainerRemove(ctx, "d", false, false); err != nil {
		t.Fatal(err)
	}
	if env.store.record(t, c.ID) != nil || env.e.reg.has(c) || exists(env.e.containerDir(c.ID)) {
		t.Error("container left after the second remove")
	}
	wantKind(t, "remove again", env.e.ContainerRemove(ctx, c.ID, false, false), errdefs.KindNotFound)
}

// onExit records the exit (and keeps exit.json for the next engine when it
// cannot), answers waiters, and applies the restart policy.
func TestOnExit(t *testing.T) {
	for _, tc := range []struct {
		name       string
		writeFails bool
		policy     container.RestartPolicyMode
		exitCode   int
		want       container.ContainerState
	}{
		{"recorded", false, container.RestartPolicyDisabled, 3, sExited},
		{"not recorded", true, container.RestartPolicyDisabled, 3, sExited},
		{"policy restarts", false, container.RestartPolicyOnFailure, 1, sRestarting},
		{"policy satisfied", false, container.RestartPolicyOnFailure, 0, sExited},
		// A restart that cannot be marked is not scheduled.
		{"policy restart not recorded", true, container.RestartPolicyAlways, 0, sExited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := newTestEngine(t)
			env.net.attachErr = errdefs.Unavailable("no network in this test")
			c := env.add(t, "x", sRunning)
			c.HostConfig.RestartPolicy = container.RestartPolicy{Name: tc.policy}
			bundle := env.e.bundleDir(c.ID)
			if err := writeJSON(filepath.Join(bundle, monitor.ExitFile), monitor.Exit{ExitCode: tc.exitCode, FinishedAt: time.Now().UTC()}); err != nil {
				t.Fatal(err)
			}
			wait, err := env.e.ContainerWait(context.Background(), "x", "")
			if err != nil {
				t.Fatal(err)
			}
			env.store.setFail(map[bool]error{true: errDiskFull}[tc.writeFails])
			exited := c.exited
			env.e.onExit(c, exited)
			select {
			case <-exited:
			default:
				t.Error("exited not closed")
			}
			if r := <-wait; r.StatusCode != int64(tc.exitCode) {
				t.Errorf("wait: %d", r.StatusCode)
			}
			c.mu.Lock()
			st := c.State
			c.mu.Unlock()
			if st.Status != tc.want || st.Running || st.ExitCode != tc.exitCode || st.Pid != 0 {
				t.Errorf("state %+v, want %s", st, tc.want)
			}
			rec := env.store.record(t, c.ID)
			if tc.writeFails {
				// The record still says running: exit.json is how the
				// next engine learns the end.
				if rec.State.Status != sRunning || !exists(filepath.Join(bundle, monitor.ExitFile)) {
					t.Errorf("record %s, exit.json kept %v", rec.State.Status, exists(bundle))
				}
				return
			}
			if rec.State.Status != tc.want || exists(bundle) {
				t.Errorf("record %s, bundle kept %v", rec.State.Status, exists(bundle))
			}
			if tc.want == sRestarting {
				// The restart fails at the network: the policy stops there.
				deadline := time.Now().Add(5 * time.Second)
				for {
					c.mu.Lock()
					st, n := c.State, c.RestartCount
					c.mu.Unlock()
					if st.Status == sExited {
						if n != 1 || st.ExitCode != 128 || st.Restarting {
							t.Errorf("after the failed restart: %+v, count %d", st, n)
						}
						break
					}
					if time.Now().After(deadline) {
						t.Fatalf("still %s", st.Status)
					}
					time.Sleep(10 * time.Millisecond)
				}
				if rec := env.store.record(t, c.ID); rec.State.Status != sExited || rec.RestartCount != 1 {
					t.Errorf("record after the failed restart: %s count %d", rec.State.Status, rec.RestartCount)
				}
			}
		})
	}
}

// The back-off doubles from 100 ms up to a minute, and starts again at
// 100 ms once a run lasted 10 s.
func TestRestartBackoff(t *testing.T) {
	env := newTestEngine(t)
	c := env.add(t, "b", sExited)
	c.HostConfig.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyAlways}
	want := []time.Duration{100, 200, 400, 800}
	for i, ran := range []time.Duration{time.Second, time.Second, time.Second, time.Second, 11 * time.Second} {
		c.mu.Lock()
		setStatus(c, sExited)
		c.State.StartedAt = time.Now().Add(-ran)
		c.State.FinishedAt = time.Now()
		c.mu.Unlock()
		if !env.e.afterExit(c) {
			t.Fatal("no restart scheduled")
		}
		c.mu.Lock()
		got := c.restart.backoff
		c.restart.timer.Stop()
		c.mu.Unlock()
		w := restartBackoffMin
		if i < len(want) {
			w = want[i] * time.Millisecond
		}
		if got != w {
			t.Errorf("exit %d after %v: back-off %v, want %v", i, ran, got, w)
		}
	}
}

// A record an engine wrote in the middle of a removal comes back dead (as
// Docker's restore makes it), so that rm can finish it rather than answer
// "already in progress" for ever.
func TestRestoreInterruptedRemoval(t *testing.T) {
	env := newTestEngine(t)
	c := env.add(t, "half", sRemoving)
	env.e.reg.remove(c)
	all, err := env.e.loadAll()
	if err != nil || len(all) != 1 {
		t.Fatalf("%d records, %v", len(all), err)
	}
	if st := all[0].State; st.Status != sDead || !st.Dead {
		t.Errorf("restored as %+v", st)
	}
	if rec := env.store.record(t, c.ID); rec.State.Status != sDead {
		t.Errorf("record says %s", rec.State.Status)
	}
}
