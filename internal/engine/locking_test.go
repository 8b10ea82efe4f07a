package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// One mutex per container (container.go): readers never wait for a long
// operation, long operations wait for each other, and nothing deadlocks.
// The fakes below stand in for skiff-shim's monitor: a `sleep` is the
// container's process and a unix socket in the bundle answers the
// monitor's protocol (start, kill) as the real one does.

// fakeMonitor is one container run: its process and its socket.
type fakeMonitor struct {
	proc   *os.Process
	bundle string
	ln     net.Listener
	kills  chan syscall.Signal // every signal asked for, in order
	// holdKill, when set, keeps the process alive through signals (a
	// container that ignores SIGTERM) until it is closed.
	holdKill chan struct{}
}

// fakeSpawner is a monitorSpawner that starts fakeMonitors.
type fakeSpawner struct {
	t        *testing.T
	mu       sync.Mutex
	runs     []*fakeMonitor
	holdKill chan struct{} // given to the runs it starts
	cg       *fakeCgroup
}

func (s *fakeSpawner) Close() {}

func (s *fakeSpawner) Spawn(ctx context.Context, bundle string) (*os.Process, error) {
	// Each run has a cgroup of its own (the last run's went with it; a
	// process killed while frozen dies here, as on cgroup v2).
	s.cg.mu.Lock()
	s.cg.frozen = false
	s.cg.mu.Unlock()
	// Pdeathsig: a run that ends in a panic (within) takes them along.
	proc, err := os.StartProcess("/bin/sleep", []string{"sleep", "600"},
		&os.ProcAttr{Sys: &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}})
	if err != nil {
		return nil, err
	}
	// The bundle's path is too long for a socket address: bind through
	// the directory's descriptor, as the client dials (sockAddr).
	dfd, err := syscall.Open(bundle, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	ln, err := net.Listen("unix", "/proc/self/fd/"+strconv.Itoa(dfd)+"/"+monitor.SocketFile)
	syscall.Close(dfd)
	if err != nil {
		proc.Kill()
		proc.Wait()
		return nil, err
	}
	// Its path named a descriptor now closed: unlink by the real one.
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	s.mu.Lock()
	m := &fakeMonitor{proc: proc, bundle: bundle, ln: ln, kills: make(chan syscall.Signal, 64), holdKill: s.holdKill}
	s.runs = append(s.runs, m)
	s.mu.Unlock()
	go m.serve()
	return proc, nil
}

func (m *fakeMonitor) serve() {
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			return
		}
		var req struct {
			Op     string `json:"op"`
			Signal int    `json:"signal"`
		}
		if err := json.NewDecoder(conn).Decode(&req); err != nil {
			conn.Close()
			continue
		}
		rep := map[string]any{}
		switch req.Op {
		case "start":
			rep["pid"] = m.proc.Pid
		case "kill":
			sig := syscall.Signal(req.Signal)
			m.kills <- sig
			if m.holdKill != nil && sig != syscall.SIGKILL {
				break // ignored, like a process that traps it
			}
			// The monitor records the exit before it goes, then the
			// process dies and the engine's watcher reaps it.
			writeJSON(filepath.Join(m.bundle, monitor.ExitFile), monitor.Exit{ExitCode: 128 + int(sig), FinishedAt: time.Now().UTC()})
			m.ln.Close()
			os.Remove(filepath.Join(m.bundle, monitor.SocketFile))
			m.proc.Signal(syscall.SIGKILL)
		}
		b, _ := json.Marshal(rep)
		conn.Write(append(b, '\n'))
		conn.Close()
	}
}

// alive counts the runs whose process still exists (a zombie counts as
// gone: the engine has not reaped it yet, but it has exited).
func (s *fakeSpawner) alive() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.runs {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", m.proc.Pid))
		if err == nil && !isZombie(b) {
			n++
		}
	}
	return n
}

func isZombie(stat []byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}

func (s *fakeSpawner) last() *fakeMonitor {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runs[len(s.runs)-1]
}

func withMonitors(t *testing.T, env *testEnv) *fakeSpawner {
	s := &fakeSpawner{t: t, cg: env.cg}
	env.e.monitors = s
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.runs {
			m.ln.Close()
			m.proc.Signal(syscall.SIGKILL)
		}
	})
	return s
}

// within runs f and ends the test run when it has not returned after d (a
// deadlock, or a reader waiting for a long operation).
func within(t *testing.T, what string, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		// A deadlock would hang the test's cleanup too: end the run
		// here, with every goroutine's stack.
		buf := make([]byte, 1<<20)
		panic(fmt.Sprintf("%s: not done after %v\n%s", what, d, buf[:runtime.Stack(buf, true)]))
	}
}

// A stop waits for the exit without holding the container's mutex: inspect,
// ps, wait and kill answer at once meanwhile, another long operation waits
// for the stop (and gives up when its client goes), and the exit ends the
// stop.
func TestStopWaitsForExitReadersDoNot(t *testing.T) {
	env := newTestEngine(t)
	mons := withMonitors(t, env)
	ctx := context.Background()
	c := env.add(t, "web", sCreated)
	mons.holdKill = make(chan struct{}) // SIGTERM is ignored
	if err := env.e.ContainerStart(ctx, "web"); err != nil {
		t.Fatal(err)
	}
	run := mons.last()

	stopped := make(chan error, 1)
	go func() {
		timeout := 30
		stopped <- env.e.ContainerStop(ctx, "web", &timeout, "")
	}()
	if sig := <-run.kills; sig != syscall.SIGTERM {
		t.Fatalf("stop sent %v first, want SIGTERM", sig)
	}
	// The fake hears the signal before it replies: give the stop time to
	// reach its wait for the exit (up to 30 s).
	time.Sleep(200 * time.Millisecond)
	within(t, "inspect during a stop", time.Second, func() {
		r, err := env.e.ContainerInspect(ctx, "web", false)
		if err != nil || !r.State.Running {
			t.Errorf("inspect during a stop: %v running %v", err, r != nil && r.State.Running)
		}
	})
	within(t, "ps during a stop", time.Second, func() {
		l, err := env.e.ContainerList(ctx, ListOptions{All: true})
		if err != nil || len(l) != 1 || l[0].State != sRunning {
			t.Errorf("ps during a stop: %v %+v", err, l)
		}
	})
	var waitc <-chan container.WaitResponse
	within(t, "wait during a stop", time.Second, func() {
		var err error
		if waitc, err = env.e.ContainerWait(ctx, "web", ""); err != nil {
			t.Error(err)
		}
	})
	// Pause is a long operation: it waits for the stop, and gives up
	// when its client does.
	within(t, "pause during a stop, client gone", time.Second, func() {
		short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		err := env.e.ContainerPause(short, "web")
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("pause during a stop, client gone: %v, want the deadline", err)
		}
	})
	paused := make(chan error, 1)
	go func() { paused <- env.e.ContainerPause(ctx, "web") }()
	select {
	case err := <-stopped:
		t.Fatalf("stop returned before the exit: %v", err)
	case err := <-paused:
		t.Fatalf("pause ran during a stop: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	// kill is not a long operation: it answers at once, and the exit it
	// causes ends the stop.
	within(t, "kill during a stop", time.Second, func() {
		if err := env.e.ContainerKill(ctx, "web", "KILL"); err != nil {
			t.Error(err)
		}
	})
	within(t, "the stop after the exit", 5*time.Second, func() {
		if err := <-stopped; err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	within(t, "pause after the stop", 5*time.Second, func() {
		wantKind(t, "pause of the stopped container", <-paused, errdefs.KindConflict)
	})
	if w := <-waitc; w.StatusCode != 137 {
		t.Errorf("wait: exit %d, want 137", w.StatusCode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status != sExited || c.State.ExitCode != 137 || c.busy != nil {
		t.Errorf("after the stop: %+v busy %v", c.State, c.busy != nil)
	}
}

// Many clients start, stop, kill, restart, pause, unpause, update and remove
// one container at once: every call ends (no deadlock), every error is one
// Docker gives for a move that does not fit the state, and what is left
// agrees with its record and with the host.
func TestConcurrentOperationsOnOneContainer(t *testing.T) {
	for round := 0; round < 4; round++ {
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			env := newTestEngine(t)
			if os.Getenv("SKIFF_TEST_LOG") != "" {
				env.e.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			mons := withMonitors(t, env)
			ctx := context.Background()
			c := env.add(t, "box", sCreated)
			zero := 0
			ops := []func() error{
				func() error { return env.e.ContainerStart(ctx, "box") },
				func() error { return env.e.ContainerStop(ctx, "box", &zero, "") },
				func() error { return env.e.ContainerKill(ctx, "box", "KILL") },
				func() error { return env.e.ContainerRestart(ctx, "box", &zero, "") },
				func() error { return env.e.ContainerPause(ctx, "box") },
				func() error { return env.e.ContainerUnpause(ctx, "box") },
				func() error {
					_, err := env.e.ContainerUpdate(ctx, "box", &container.UpdateConfig{RestartPolicy: container.RestartPolicy{Name: "no"}})
					return err
				},
				func() error { _, err := env.e.ContainerInspect(ctx, "box", false); return err },
				func() error { _, err := env.e.ContainerList(ctx, ListOptions{All: true}); return err },
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			var unexpected []error
			ok := make([]int, len(ops))
			within(t, "concurrent operations", 30*time.Second, func() {
				for g := 0; g < 8; g++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 12; i++ {
							op := (g*7 + i*(round+3)) % len(ops)
							err := ops[op]()
							switch errdefs.KindOf(err) {
							case errdefs.KindUnknown:
								if err == nil {
									mu.Lock()
									ok[op]++
									mu.Unlock()
									continue
								}
							case errdefs.KindConflict, errdefs.KindNotModified, errdefs.KindNotFound:
								continue
							}
							mu.Lock()
							unexpected = append(unexpected, err)
							mu.Unlock()
						}
					}()
				}
				if round%2 == 1 {
					// A forced remove once the container has run,
					// amid the rest.
					wg.Add(1)
					go func() {
						defer wg.Done()
						for {
							mu.Lock()
							started := ok[0] + ok[3]
							mu.Unlock()
							if started > 0 {
								break
							}
							time.Sleep(time.Millisecond)
						}
						if err := env.e.ContainerRemove(ctx, "box", true, false); err != nil {
							mu.Lock()
							unexpected = append(unexpected, fmt.Errorf("remove: %w", err))
							mu.Unlock()
						}
					}()
				}
				wg.Wait()
			})
			t.Logf("calls that succeeded, by operation: %v", ok)
			if ok[0]+ok[3] == 0 {
				t.Error("no start succeeded: the test tested nothing")
			}
			for _, err := range unexpected {
				t.Errorf("unexpected error: %v (kind %v)", err, errdefs.KindOf(err))
			}
			checkConsistent(t, env, mons, c)
			// Whatever state it ended in, a forced remove ends it.
			within(t, "final remove", 10*time.Second, func() {
				if err := env.e.ContainerRemove(ctx, "box", true, false); err != nil && !errdefs.IsNotFound(err) {
					t.Errorf("final remove: %v", err)
				}
			})
			if env.store.record(t, c.ID) != nil || env.e.reg.has(c) {
				t.Error("the removed container is still recorded")
			}
			deadline := time.Now().Add(5 * time.Second)
			for mons.alive() != 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if n := mons.alive(); n != 0 {
				t.Errorf("%d container processes outlive their removal", n)
			}
		})
	}
}

// checkConsistent compares c (once its exit, if any, is recorded) with its
// record, the state machine's flags and the host.
func checkConsistent(t *testing.T, env *testEnv, mons *fakeSpawner, c *Container) {
	t.Helper()
	// A SIGKILL sent by the last calls may still be on its way to the
	// process, and its exit to onExit: let them land, then wait for the
	// record to agree with the host.
	time.Sleep(200 * time.Millisecond)
	deadline := time.Now().Add(5 * time.Second)
	for {
		c.mu.Lock()
		running := c.State.Running
		c.mu.Unlock()
		if running == (mons.alive() == 1) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy != nil {
		t.Error("an operation is still marked in progress")
	}
	if !env.e.reg.has(c) {
		if env.store.record(t, c.ID) != nil {
			t.Error("removed, but its record remains")
		}
		return
	}
	st := c.State
	f := flagsOf[st.Status]
	if st.Running != f.running || st.Paused != f.paused || st.Restarting != f.restarting || st.Dead != f.dead {
		t.Errorf("status %s with flags %+v", st.Status, st)
	}
	rec := env.store.record(t, c.ID)
	if rec == nil || rec.State.Status != st.Status {
		t.Errorf("record %+v, engine says %s", rec, st.Status)
	}
	if n := mons.alive(); (n == 1) != st.Running || n > 1 {
		t.Errorf("%d container processes alive, status %s", n, st.Status)
	}
	env.cg.mu.Lock()
	frozen := env.cg.frozen
	env.cg.mu.Unlock()
	if st.Running && st.Paused != frozen {
		t.Errorf("paused %v, cgroup frozen %v", st.Paused, frozen)
	}
}
