package engine

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/ocispec"
	"github.com/skiff-dev/skiff/internal/runtime"
)

// Namespace modes (--pid, --ipc, --uts, --userns), sysctls and the other
// settings that depend on them, checked at create as dockerd (and, for
// sysctls, runc) does; the namespaces of other containers are resolved at
// start (namespaceSpec).

// validateNamespaces checks and completes hc's namespace settings; cfg is
// the request's, before the engine fills in a hostname. Docker's words.
func (e *Engine) validateNamespaces(cfg *container.Config, hc *container.HostConfig) error {
	if !hc.IpcMode.Valid() {
		return errdefs.Invalid("invalid IPC mode: %v", hc.IpcMode)
	}
	if !hc.PidMode.Valid() {
		return errdefs.Invalid("invalid PID mode: %v", hc.PidMode)
	}
	if !hc.UTSMode.Valid() {
		return errdefs.Invalid("invalid UTS mode: %v", hc.UTSMode)
	}
	// dockerd ignores any other user namespace mode when it remaps no
	// users; skiff never does, so such a mode would be silently dropped.
	if !hc.UsernsMode.Valid() {
		return errdefs.Invalid("invalid USER mode: %v: only \"host\" is supported (no user namespace remapping)", hc.UsernsMode)
	}
	if hc.UTSMode.IsHost() && cfg.Hostname != "" {
		return errdefs.Invalid("conflicting options: hostname and the UTS mode")
	}
	if err := validateNetContainerMode(cfg, hc); err != nil {
		return err
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IpcMode(e.cfg.DefaultIpcMode)
		if hc.IpcMode == "" {
			hc.IpcMode = container.IPCModePrivate
		}
	}
	// container:NAME becomes container:ID (dockerd's
	// adaptSharedNamespaceContainer): a rename keeps the link.
	if hc.PidMode.IsContainer() {
		other, err := e.reg.get(hc.PidMode.Container())
		if err != nil {
			// 400, not 404: a client would take a 404 for a missing image.
			return errdefs.Invalid("%v", err)
		}
		hc.PidMode = container.PidMode("container:" + other.ID)
	}
	if hc.IpcMode.IsContainer() && hc.IpcMode.Container() != "" {
		other, err := e.reg.get(hc.IpcMode.Container())
		if err != nil {
			return errdefs.Invalid("%v", err)
		}
		hc.IpcMode = container.IpcMode("container:" + other.ID)
	}
	if hc.NetworkMode.IsContainer() {
		if other, err := e.reg.get(hc.NetworkMode.ConnectedContainer()); err == nil {
			hc.NetworkMode = container.NetworkMode("container:" + other.ID)
		}
	}
	if err := checkSysctls(cfg, hc); err != nil {
		return err
	}
	// As dockerd: the default lists are recorded at create (inspect shows
	// them); systempaths=unconfined sends empty ones.
	if hc.MaskedPaths == nil && !hc.Privileged {
		hc.MaskedPaths = ocispec.DefaultMaskedPaths()
	}
	if hc.ReadonlyPaths == nil && !hc.Privileged {
		hc.ReadonlyPaths = ocispec.DefaultReadonlyPaths()
	}
	return nil
}

// validateNetContainerMode refuses what dockerd refuses with a network mode
// of container:X, whose hostname, DNS and ports are the other container's.
func validateNetContainerMode(cfg *container.Config, hc *container.HostConfig) error {
	if string(hc.NetworkMode) != "container" && !hc.NetworkMode.IsContainer() {
		return nil
	}
	switch {
	case hc.NetworkMode.ConnectedContainer() == "":
		return errdefs.Invalid("invalid network mode: invalid container format container:<name|id>")
	case cfg.Hostname != "":
		return errdefs.Invalid("conflicting options: hostname and the network mode")
	case len(hc.Links) > 0:
		return errdefs.Invalid("conflicting options: container type network can't be used with links. This would result in undefined behavior")
	case len(hc.DNS) > 0:
		return errdefs.Invalid("conflicting options: dns and the network mode")
	case len(hc.ExtraHosts) > 0:
		return errdefs.Invalid("conflicting options: custom host-to-IP mapping and the network mode")
	case len(hc.PortBindings) > 0 || hc.PublishAllPorts:
		return errdefs.Invalid("conflicting options: port publishing and the container type network mode")
	case len(cfg.ExposedPorts) > 0:
		return errdefs.Invalid("conflicting options: port exposing and the container type network mode")
	}
	return nil
}

// checkSysctls accepts only sysctls of namespaces the container has of its
// own (runtime.CheckSysctl; runc's rules and words). The runtime checks
// them again: nothing is ever written outside the container's namespaces.
// --domainname is the sysctl kernel.domainname to Docker, so it needs a
// UTS namespace of its own too.
func checkSysctls(cfg *container.Config, hc *container.HostConfig) error {
	own := runtime.SysctlScope{
		IPC: !hc.IpcMode.IsHost(),
		// container:X is X's namespace, not the host's: runc allows it.
		Net: !hc.NetworkMode.IsHost(),
		UTS: !hc.UTSMode.IsHost(),
	}
	for k := range hc.Sysctls {
		if err := runtime.CheckSysctl(k, own); err != nil {
			return err
		}
	}
	if cfg.Domainname != "" {
		return runtime.CheckSysctl("kernel.domainname", own)
	}
	return nil
}

// namespaceSpec resolves, at start, the PID and IPC namespaces to join and
// what is bound at /dev/shm; it mounts the shm of a shareable container
// (releaseShm undoes it). The caller has begun an operation on c.
func (e *Engine) namespaceSpec(c *Container, hc *container.HostConfig) (paths map[specs.LinuxNamespaceType]string, shm string, err error) {
	paths = map[specs.LinuxNamespaceType]string{}
	if hc.PidMode.IsContainer() {
		other, err := e.runningDonor(c, hc.PidMode.Container())
		if err != nil {
			return nil, "", fmt.Errorf("failed to join PID namespace: %w", err)
		}
		other.mu.Lock()
		paths[specs.PIDNamespace] = "/proc/" + strconv.Itoa(other.State.Pid) + "/ns/pid"
		other.mu.Unlock()
	}
	switch m := hc.IpcMode; {
	case m.IsContainer():
		other, err := e.runningDonor(c, m.Container())
		if err != nil {
			return nil, "", fmt.Errorf("failed to join IPC namespace: %w", err)
		}
		other.mu.Lock()
		pid, donorShm := other.State.Pid, other.ShmPath
		other.mu.Unlock()
		if st, err := os.Stat(donorShm); donorShm == "" || err != nil || !st.IsDir() {
			return nil, "", errdefs.Invalid("failed to join IPC namespace: container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container)", m.Container())
		}
		paths[specs.IPCNamespace] = "/proc/" + strconv.Itoa(pid) + "/ns/ipc"
		shm = donorShm
	case m.IsHost():
		if _, err := os.Stat("/dev/shm"); err != nil {
			return nil, "", errdefs.System("/dev/shm is not mounted, but must be for --ipc=host")
		}
		shm = "/dev/shm"
	case m.IsShareable():
		if shm, err = e.mountShm(c, hc.ShmSize); err != nil {
			return nil, "", err
		}
	}
	c.mu.Lock()
	c.ShmPath = shm
	c.mu.Unlock()
	return paths, shm, nil
}

// runningDonor finds the container whose namespace c joins: it must run.
func (e *Engine) runningDonor(c *Container, ref string) (*Container, error) {
	if ref == "" {
		return nil, errdefs.Invalid("invalid name or ID supplied: %q", ref)
	}
	other, err := e.reg.get(ref)
	if err != nil {
		return nil, errdefs.Invalid("%v", err)
	}
	if other == c {
		return nil, errdefs.Invalid("cannot join own namespace")
	}
	other.mu.Lock()
	running, restarting := other.State.Running, other.State.Restarting
	other.mu.Unlock()
	if restarting {
		return nil, errdefs.Conflict("Container %s is restarting, wait until the container is running", ref)
	}
	if !running {
		return nil, errdefs.Conflict("container %s is not running", ref)
	}
	return other, nil
}

// shmDir is where a shareable container's /dev/shm is mounted on the host,
// so that others can bind it (Docker's containers/ID/mounts/shm).
func (e *Engine) shmDir(id string) string {
	return filepath.Join(e.containerDir(id), "mounts", "shm")
}

// mountShm mounts the tmpfs of a shareable container's /dev/shm in the
// engine's mount namespace (the containers' mount namespaces are copies of
// it), as dockerd does: the only mount the engine makes on the host, until
// the container stops.
func (e *Engine) mountShm(c *Container, size int64) (string, error) {
	dir := e.shmDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create shm directory: %w", err)
	}
	if size <= 0 {
		size = 64 << 20
	}
	unmountShm(dir) // what a crash left
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
		return "", errdefs.System("mounting shm tmpfs: %v", err)
	}
	return dir, nil
}

// releaseShm unmounts c's shareable shm, if any. The containers that bound
// it keep their mount until they exit.
func (e *Engine) releaseShm(c *Container) {
	c.mu.Lock()
	c.ShmPath = ""
	c.mu.Unlock()
	unmountShm(e.shmDir(c.ID))
}

func unmountShm(dir string) {
	for unix.Unmount(dir, unix.MNT_DETACH) == nil {
		// stacked mounts
	}
}

// specFailed records a start that failed before the container's process
// was made (a namespace to join that is gone) as startFailed does, and
// returns the error as dockerd does: a System error, whatever the cause,
// since it depends on the state of other containers, not on the request.
func (e *Engine) specFailed(c *Container, err error) error {
	e.startFailed(c, err)
	return errdefs.Wrap(errdefs.KindSystem, err)
}
