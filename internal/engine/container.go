package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// State is a container's run state as stored and as inspect shows it.
type State struct {
	Status     container.ContainerState // created, running, paused, restarting, removing, exited, dead (state.go)
	Running    bool
	Restarting bool
	Paused     bool              // frozen by pause (living.go)
	Health     *container.Health `json:",omitempty"` // health check state (health.go)
	OOMKilled  bool
	Dead       bool
	Pid        int
	ExitCode   int
	Error      string
	StartedAt  time.Time
	FinishedAt time.Time
	// The monitor watching the running container, and its start time in
	// clock ticks since boot (/proc/PID/stat field 22) so a reused pid after
	// a reboot or a long outage is not mistaken for it.
	MonitorPid   int
	MonitorStart uint64
}

// Container is the engine's record of one container. Fields are guarded by
// mu, the container's only mutex; the record is persisted as JSON after
// every change that matters, and State changes only through
// Engine.transition (state.go).
//
// Locking (one mutex per container, as Docker's: the sync.Mutex embedded in
// its container's State):
//   - mu is held only for short sections: reading or changing fields, a
//     transition and its record write. Nothing waits for a process, a
//     monitor, the network or another container's operation while holding
//     it, so ps, inspect, kill, wait and the exit path (onExit) take it
//     at once even while a start or a stop is under way.
//   - The long operations (start, stop, restart, remove, pause, unpause,
//     update, a policy's restart, network connect, cp from a stopped
//     container) are serialised by a marker in the state mu guards, busy,
//     not by a second lock: beginOp sets it (after waiting, without mu,
//     for the one in progress to close it) and endOp closes it. A waiter
//     gives up when its request's context ends, which a sync.Mutex cannot
//     do, and the check of the state and the claim happen in one mu
//     section (beginOpLocked), so no other operation slips in between.
//   - A stop or a forced remove waits for the exit on exited, a channel
//     onExit closes after recording the exit under mu for a moment: the
//     waiter holds busy but not mu, so the exit can be recorded. Docker
//     (daemon/container/state.go, State.Wait) waits the same way, on a
//     channel that SetStopped signals, outside the container's lock.
//   - Docker holds the container's lock through a whole start instead; a
//     ps or inspect of that container then waits for the start (its ps
//     reads a memdb snapshot to avoid it). Here nothing long holds mu, so
//     readers need no snapshot; and no section holds two containers' mu
//     (a start reads its container:X namespace donor and its legacy links
//     under their mu while holding none of its own), so there is no lock
//     order between containers to keep.
type Container struct {
	mu sync.Mutex `json:"-"`
	// busy is non-nil while a long operation runs on this container (see
	// above); it is closed when that operation ends. Guarded by mu.
	busy chan struct{}
	// starting is closed once the process a start released is recorded
	// as running (or the start failed): its output can reach attached
	// clients before that, and a kill they send meanwhile waits for it
	// rather than finding the container not running.
	starting chan struct{}

	ID           string
	Name         string // without the leading slash
	Created      time.Time
	Path         string
	Args         []string
	Config       *container.Config
	HostConfig   *container.HostConfig
	ImageID      string
	State        State
	RestartCount int
	SnapshotKey  string
	LogPath      string
	// CRILogPath is where a Kubernetes pod container logs in the CRI format
	// (the kubelet's path; cri.go).
	CRILogPath string `json:",omitempty"`
	// CRISandbox is the pod sandbox container whose UTS namespace a pod
	// container joins (cri.go).
	CRISandbox string `json:",omitempty"`
	// MountPoints are the container's volumes, binds and tmpfs mounts,
	// resolved at create (mounts.go).
	MountPoints []*MountPoint `json:",omitempty"`
	// Net is the container's network configuration and, while it runs,
	// its namespace, endpoints and published ports (network.go).
	Net *containerNet `json:",omitempty"`
	// ShmPath is the host directory bound at /dev/shm while the container
	// runs with --ipc shareable, host or container:X: what a container
	// joining its IPC namespace binds too (namespaces.go).
	ShmPath string `json:",omitempty"`
	// HasBeenStartedBefore and ManualStop drive restart policies: a container
	// stopped by the user is not restarted.
	HasBeenStartedBefore bool
	ManualStop           bool

	// Runtime-only state.
	waiters   []waiter         `json:"-"`
	attachers []*pendingAttach `json:"-"`
	exited    chan struct{}    `json:"-"` // closed when the current run ends
	sigkills  uint64           `json:"-"` // SIGKILLs sent (afterSignal), for a pause under way
	restart   *restartState    `json:"-"` // restart policy back-off (restart.go)
}

// beginOp waits until no long operation runs on c, then marks one as
// running; the caller ends it with endOp. It waits without holding mu, and
// gives up (returning ctx's error) when ctx ends first.
func (c *Container) beginOp(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.beginOpLocked(ctx)
}

// beginOpLocked is beginOp for a caller that holds mu. It may release mu
// while it waits, and holds it again when it returns, so that the caller
// checks the state it acts on after the claim, in the same section.
func (c *Container) beginOpLocked(ctx context.Context) error {
	for c.busy != nil {
		busy := c.busy
		c.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			c.mu.Lock()
			return fmt.Errorf("wait for an operation in progress on container %s: %w", c.ID, ctx.Err())
		}
		c.mu.Lock()
	}
	c.busy = make(chan struct{})
	return nil
}

// endOp ends the long operation beginOp started and wakes its waiters.
func (c *Container) endOp() {
	c.mu.Lock()
	close(c.busy)
	c.busy = nil
	c.mu.Unlock()
}

type waiter struct {
	condition container.WaitCondition
	ch        chan container.WaitResponse
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// names and ids of all containers, for lookups by name, id or id prefix.
type registry struct {
	mu     sync.RWMutex
	byID   map[string]*Container
	byName map[string]string // name → id
}

func newRegistry() *registry {
	return &registry{byID: map[string]*Container{}, byName: map[string]string{}}
}

// reserve claims name for id; a taken name is a Conflict in Docker's words.
func (r *registry) reserve(name, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if other, ok := r.byName[name]; ok && other != id {
		return errdefs.Conflict("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name.", name, other)
	}
	r.byName[name] = id
	return nil
}

func (r *registry) release(name string) {
	r.mu.Lock()
	delete(r.byName, name)
	r.mu.Unlock()
}

func (r *registry) add(c *Container) {
	r.mu.Lock()
	r.byID[c.ID] = c
	r.byName[c.Name] = c.ID
	r.mu.Unlock()
}

// has reports whether c is (still) registered.
func (r *registry) has(c *Container) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[c.ID] == c
}

func (r *registry) remove(c *Container) {
	r.mu.Lock()
	delete(r.byID, c.ID)
	if r.byName[c.Name] == c.ID {
		delete(r.byName, c.Name)
	}
	r.mu.Unlock()
}

// get finds a container by full id, name (with or without "/"), or unique id
// prefix, in Docker's order of precedence.
func (r *registry) get(ref string) (*Container, error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if ref == "" {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	if c, ok := r.byID[ref]; ok {
		return c, nil
	}
	if id, ok := r.byName[strings.TrimPrefix(ref, "/")]; ok {
		if c, ok := r.byID[id]; ok {
			return c, nil
		}
	}
	var found *Container
	for id, c := range r.byID {
		if strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Invalid("multiple IDs found with provided prefix: %s", ref)
			}
			found = c
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("No such container: %s", ref)
	}
	return found, nil
}

func (r *registry) all() []*Container {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*Container, 0, len(r.byID))
	for _, c := range r.byID {
		out = append(out, c)
	}
	return out
}
