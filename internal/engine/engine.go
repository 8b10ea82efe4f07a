// Package engine wires the stores, the runtime (through per-container
// monitors) and the log reader together. It is the only package that knows
// all of them; apiserver calls it through small per-route-group interfaces.
package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/monitor"
	skinet "github.com/skiff-dev/skiff/internal/network"
	"github.com/skiff-dev/skiff/internal/snapshot"
	"github.com/skiff-dev/skiff/internal/volume"
)

// Version is skiff's version, reported by /version.
var Version = "0.1.0-dev"

// Config is what the engine needs to know about the host.
type Config struct {
	DataRoot     string
	ExecRoot     string
	ShimPath     string
	CgroupParent string            // default "/skiff"
	LogDriver    string            // default log driver (daemon.json log-driver); "" = json-file
	LogOpts      map[string]string // default log options (daemon.json log-opts)
	Logger       *slog.Logger
	// DefaultCgroupnsMode is daemon.json's default-cgroupns-mode ("host" or
	// "private"; empty: by the host's cgroup version, see cgroupns.go).
	DefaultCgroupnsMode string

	// InsecureRegistries (host[:port] or CIDR) are spoken to over HTTP;
	// RegistryMirrors are tried before docker.io for docker.io names.
	InsecureRegistries []string
	RegistryMirrors    []string
	// RegistryHostsDir is the root of the per-registry hosts
	// configuration (registry/hosts.go); "" means none.
	RegistryHostsDir string

	// Net configures bridge networking (network.go).
	Net NetConfig
	// DefaultIpcMode is the IPC mode of a container that asks for none:
	// "private" (the default) or "shareable" (daemon.json default-ipc-mode).
	DefaultIpcMode string
}

// Engine implements the apiserver's Backend.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	db      *meta.DB
	store   containerStore // the container records (seams.go)
	rootfs  rootfsStore    // snaps, as start and remove see it (seams.go)
	cgroups cgroupFactory  // seams.go
	content *content.Store
	snaps   *snapshot.Snapshotter
	images  *image.Store
	vols    *volume.Store
	net     *skinet.Controller // network.go
	netAtt  netAttacher        // net, as start and exit see it (seams.go)
	reg     *registry
	events  *eventLog
	execs   *execRegistry
	started time.Time
	// monitors keeps one monitor started ahead for the next container
	// start (monitor.Pool; seams.go).
	monitors monitorSpawner

	wg       sync.WaitGroup // watchers of monitors
	ctx      context.Context
	cancel   context.CancelFunc
	shimInfo string

	buildOnce sync.Once
	build     *BuildBackend // build.go
}

// bucket for container records: key = container id, value = JSON Container.
var bucketContainers = []byte("engine.containers.v1")

// New opens the stores under cfg.DataRoot and restores containers: the ones
// whose monitor still runs are watched again, the ones that exited while the
// engine was away get their exit recorded.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/skiff"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{cfg.DataRoot, filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.ExecRoot, "containers")} {
		if err := os.MkdirAll(d, 0o710); err != nil {
			return nil, fmt.Errorf("create %s: %w", d, err)
		}
	}
	if _, err := os.Stat(cfg.ShimPath); err != nil {
		return nil, fmt.Errorf("skiff-shim not found at %s (build it next to skiff or set SKIFF_SHIM): %w", cfg.ShimPath, err)
	}
	db, err := meta.Open(filepath.Join(cfg.DataRoot, "meta.db"))
	if err != nil {
		return nil, err
	}
	cs, err := content.New(filepath.Join(cfg.DataRoot, "content"))
	if err != nil {
		db.Close()
		return nil, err
	}
	sn, err := snapshot.New(filepath.Join(cfg.DataRoot, "snapshots"), db)
	if err != nil {
		db.Close()
		return nil, err
	}
	is, err := image.NewStore(db, cs, sn)
	if err != nil {
		db.Close()
		return nil, err
	}
	vs, err := volume.New(filepath.Join(cfg.DataRoot, "volumes"), db)
	if err != nil {
		db.Close()
		return nil, err
	}
	ectx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		cfg: cfg, log: cfg.Logger, db: db, content: cs, snaps: sn, images: is, vols: vs,
		rootfs: sn, cgroups: hostCgroup,
		reg: newRegistry(), events: newEventLog(), execs: newExecRegistry(),
		started: time.Now(), ctx: ectx, cancel: cancel,
		// Before restore: the restarts it schedules may start containers
		// at once.
		monitors: monitor.NewPool(cfg.ShimPath),
	}
	fail := func(err error) (*Engine, error) {
		cancel()
		e.monitors.Close()
		db.Close()
		return nil, err
	}
	if e.store, err = newBoltContainers(db); err != nil {
		return fail(err)
	}
	if err := e.initNetworking(ctx); err != nil {
		return fail(err)
	}
	if err := e.restore(ctx); err != nil {
		return fail(err)
	}
	e.restoreNetworking()
	e.removeBuildLeftovers(ctx)
	return e, nil
}

// Close stops watching monitors and closes the stores. Running containers
// keep running (live restore): their monitors do not depend on the engine.
func (e *Engine) Close() error {
	e.cancel()
	e.monitors.Close()
	e.wg.Wait()
	e.closeNetworking()
	e.removeCgroupParent()
	return e.db.Close()
}

// removeCgroupParent removes the engine's cgroup parent directories when
// they are empty (rmdir refuses a cgroup with children, so containers that
// keep running keep it), so a stopped engine leaves the host's cgroup tree
// as it found it, like its bridges and nftables table.
func (e *Engine) removeCgroupParent() {
	m, err := cgroups.New(e.cfg.CgroupParent, nil)
	if err != nil {
		return
	}
	for _, d := range m.Dirs() {
		os.Remove(d) // best effort: busy or absent is fine
	}
}

func (e *Engine) containerDir(id string) string {
	return filepath.Join(e.cfg.DataRoot, "containers", id)
}
func (e *Engine) bundleDir(id string) string { return filepath.Join(e.cfg.ExecRoot, "containers", id) }

// persist writes c's record; the caller holds c.mu.
func (e *Engine) persist(c *Container) error {
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode container %s: %w", c.ID, err)
	}
	return e.store.Put(c.ID, b)
}

func (e *Engine) unpersist(id string) error { return e.store.Delete(id) }

func (e *Engine) loadAll() ([]*Container, error) {
	var out []*Container
	err := e.store.ForEach(func(id string, v []byte) error {
		c := &Container{}
		if err := json.Unmarshal(v, c); err != nil {
			return fmt.Errorf("decode container %s: %w", id, err)
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, c := range out {
		if c.State.Status == container.StateRemoving {
			// A removal under way when an engine went down (older
			// engines wrote this status): dead, as Docker's restore
			// makes it, so that the next rm finishes it.
			c.mu.Lock()
			err := e.transition(c, evRemoveFailed, nil)
			c.mu.Unlock()
			if err != nil {
				e.log.Warn("restore a container whose removal was interrupted", "container", c.ID, "err", err)
			}
		}
	}
	return out, nil
}

func hostArch() string { return runtime.GOARCH }
