package engine

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	skinet "github.com/skiff-dev/skiff/internal/network"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

// Fakes for the engine's seams (seams.go): lifecycle tests without root.

var errDiskFull = errors.New("write meta.db: no space left on device")

// fakeStore is a containerStore in memory; fail makes every write fail.
type fakeStore struct {
	mu     sync.Mutex
	recs   map[string][]byte
	writes int
	fail   error
}

func (s *fakeStore) Put(id string, b []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	s.recs[id] = append([]byte(nil), b...)
	s.writes++
	return nil
}

func (s *fakeStore) Delete(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return s.fail
	}
	delete(s.recs, id)
	s.writes++
	return nil
}

func (s *fakeStore) ForEach(fn func(string, []byte) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, b := range s.recs {
		if err := fn(id, b); err != nil {
			return err
		}
	}
	return nil
}

func (s *fakeStore) setFail(err error) {
	s.mu.Lock()
	s.fail = err
	s.mu.Unlock()
}

func (s *fakeStore) writeCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writes
}

// record decodes what the store holds for id (nil when nothing).
func (s *fakeStore) record(t *testing.T, id string) *Container {
	t.Helper()
	s.mu.Lock()
	b, ok := s.recs[id]
	s.mu.Unlock()
	if !ok {
		return nil
	}
	c := &Container{}
	if err := json.Unmarshal(b, c); err != nil {
		t.Fatal(err)
	}
	return c
}

// fakeNet is a netAttacher.
type fakeNet struct {
	mu        sync.Mutex
	attachErr error
	attached  map[string]bool
	detached  []string
}

func (n *fakeNet) Attach(req skinet.AttachRequest) (*skinet.ContainerNet, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.attachErr != nil {
		return nil, n.attachErr
	}
	n.attached[req.ID] = true
	return &skinet.ContainerNet{NetNS: "/run/netns/" + req.ID}, nil
}

func (n *fakeNet) Detach(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.attached, id)
	n.detached = append(n.detached, id)
}

func (n *fakeNet) isAttached(id string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attached[id]
}

// fakeRootfs is a rootfsStore.
type fakeRootfs struct {
	mountsErr, removeErr error
	removed              []string
}

func (r *fakeRootfs) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	if r.mountsErr != nil {
		return nil, r.mountsErr
	}
	return []snapshot.Mount{{Type: "bind", Source: "/nonexistent", Options: []string{"rbind"}}}, nil
}

func (r *fakeRootfs) Remove(ctx context.Context, key string) error {
	if r.removeErr != nil {
		return r.removeErr
	}
	r.removed = append(r.removed, key)
	return nil
}

// fakeCgroup records freezes and thaws; the other Manager methods are not
// used by the tests (the embedded nil interface would panic).
type fakeCgroup struct {
	cgroups.Manager
	mu     sync.Mutex
	frozen bool
	calls  []string
}

func (g *fakeCgroup) Freeze() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.frozen = true
	g.calls = append(g.calls, "freeze")
	return nil
}

// Unified, Kill and Destroy serve the clean-up after a monitor that did
// not exit cleanly (monitordeath.go), as the fake monitors' do.
func (g *fakeCgroup) Unified() bool { return false }

func (g *fakeCgroup) Kill() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "kill")
	return nil
}

func (g *fakeCgroup) Destroy() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "destroy")
	return nil
}

func (g *fakeCgroup) Thaw() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.frozen = false
	g.calls = append(g.calls, "thaw")
	return nil
}

func (g *fakeCgroup) Update(r *specs.LinuxResources) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls = append(g.calls, "update")
	return nil
}

type testEnv struct {
	e      *Engine
	store  *fakeStore
	net    *fakeNet
	rootfs *fakeRootfs
	cg     *fakeCgroup
}

func newTestEngine(t *testing.T) *testEnv {
	t.Helper()
	env := &testEnv{
		store:  &fakeStore{recs: map[string][]byte{}},
		net:    &fakeNet{attached: map[string]bool{}},
		rootfs: &fakeRootfs{},
		cg:     &fakeCgroup{},
	}
	ctx, cancel := context.WithCancel(context.Background())
	env.e = &Engine{
		cfg: Config{DataRoot: t.TempDir(), ExecRoot: t.TempDir(), CgroupParent: "/skiff-test"},
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), store: env.store, netAtt: env.net,
		rootfs: env.rootfs, cgroups: func(string) (cgroups.Manager, error) { return env.cg, nil },
		reg: newRegistry(), events: newEventLog(), execs: newExecRegistry(),
		started: time.Now(), ctx: ctx, cancel: cancel,
	}
	t.Cleanup(func() {
		cancel()
		env.e.wg.Wait()
	})
	return env
}

// add registers a container in status st (flags as the state machine sets
// them) and writes its record.
func (env *testEnv) add(t *testing.T, name string, st container.ContainerState) *Container {
	t.Helper()
	c := &Container{
		ID: newID(), Name: name, Created: time.Now().UTC(),
		Config: &container.Config{Image: "busybox", Cmd: []string{"true"}, Hostname: name}, HostConfig: &container.HostConfig{},
		SnapshotKey: "container-" + name,
	}
	setStatus(c, st)
	if st != container.StateCreated {
		c.HasBeenStartedBefore = true
	}
	if c.State.Running {
		c.State.Pid = 4242
		c.exited = make(chan struct{})
	}
	for _, d := range []string{env.e.containerDir(c.ID), env.e.bundleDir(c.ID)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	// cgroupOf reads the cgroup path from the bundle's spec.
	spec := specs.Spec{Linux: &specs.Linux{CgroupsPath: "/skiff-test/" + c.ID}}
	if err := writeJSON(filepath.Join(env.e.bundleDir(c.ID), "config.json"), spec); err != nil {
		t.Fatal(err)
	}
	if err := env.e.persist(c); err != nil {
		t.Fatal(err)
	}
	env.e.reg.add(c)
	return c
}

// setStatus puts c in status st with the flags the state machine gives it.
func setStatus(c *Container, st container.ContainerState) {
	f := flagsOf[st]
	c.State.Status = st
	c.State.Running, c.State.Paused, c.State.Restarting, c.State.Dead = f.running, f.paused, f.restarting, f.dead
}

func wantKind(t *testing.T, what string, err error, k errdefs.Kind) {
	t.Helper()
	if errdefs.KindOf(err) != k {
		t.Errorf("%s: got %v (kind %v), want kind %v", what, err, errdefs.KindOf(err), k)
	}
}
