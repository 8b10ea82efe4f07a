// Package runtime creates and runs containers from OCI runtime specs:
// namespaces, cgroup, root file system, mounts, user, capabilities, then
// execve. The setup runs in `skiff-shim init`, a re-exec of the shim binary
// cloned into the new namespaces; the code here is the parent side.
//
// A container's life: Create (init set up and waiting just before execve),
// Start (execve), Wait (exit status), Destroy (cgroup removed). Signal works
// from Create on, through a pidfd.
package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
)

// CreateOpts describes a container to create.
type CreateOpts struct {
	// Spec is the OCI runtime spec; Root.Path is the rootfs directory (the
	// overlay annotation, when set, is mounted on it inside the container).
	Spec *specs.Spec
	// ShimPath is the skiff-shim binary; init runs as `skiff-shim init`.
	ShimPath string
	// Stdin, Stdout, Stderr are the container process's stdio (nil: /dev/null).
	// A terminal on Stdin becomes the controlling terminal and /dev/console.
	Stdin, Stdout, Stderr *os.File
	// Terminal gives the container a pseudo-terminal made inside it (from
	// its /dev/pts) as stdio, controlling terminal and /dev/console, like
	// runc with a console socket; Stdin, Stdout and Stderr are then unused
	// and Container.Console returns the master. The spec's Process.Terminal
	// is not consulted: the caller decides whether it serves a terminal.
	Terminal bool
	// Cgroup, when set, replaces the cgroup made from Spec.Linux.CgroupsPath
	// and Resources (tests use it to run on a cgroup2 mount of their own).
	// Create calls its Create method; Destroy its Destroy method.
	Cgroup cgroups.Manager
}

// ExitStatus is how a container's first process ended.
type ExitStatus struct {
	Code      int            // exit code, or 128+signal
	Signal    syscall.Signal // the signal that killed it, or 0
	OOMKilled bool           // the kernel's OOM killer killed a process of the container
}

// Container is a created container.
type Container struct {
	cmd     *exec.Cmd
	sock    *os.File // our end of the sync socketpair; nil after Start
	cg      cgroups.Manager
	console *os.File // pty master with CreateOpts.Terminal

	mu      sync.Mutex
	started bool

	waitOnce sync.Once
	status   ExitStatus
	waitErr  error
}

// Create starts `skiff-shim init` in new namespaces and the container's
// cgroup, and returns once init has set up the root file system, mounts,
// hostname and rlimits and resolved the user: it is then stopped just before
// execve, waiting for Start. Errors carry an errdefs kind.
func Create(ctx context.Context, opts CreateOpts) (c *Container, err error) {
	spec := opts.Spec
	if spec == nil || spec.Root == nil || spec.Root.Path == "" || spec.Process == nil || spec.Linux == nil {
		return nil, errdefs.Invalid("runtime: spec needs root, process and linux sections")
	}
	if opts.ShimPath == "" {
		return nil, errdefs.Invalid("runtime: no shim path")
	}
	plan, err := planNamespaces(spec.Linux)
	if err != nil {
		return nil, err
	}
	cg := opts.Cgroup
	var pidsLimit *specs.LinuxPids
	if cg == nil && spec.Linux.CgroupsPath != "" {
		res := spec.Linux.Resources
		if res != nil && res.Pids != nil {
			// The pids limit is set once init is ready: until then the
			// threads of init's Go runtime count against it, and a low one
			// (--pids-limit 5) failed init now and then. execve leaves one.
			r := *res
			pidsLimit, r.Pids = r.Pids, nil
			res = &r
		}
		if cg, err = cgroups.New(spec.Linux.CgroupsPath, res); err != nil {
			return nil, err
		}
	}
	console := !opts.Terminal && opts.Stdin != nil && isTerminal(opts.Stdin)
	cfg, err := newInitConfig(spec, plan, cg, console)
	if err != nil {
		return nil, err
	}
	cfg.Terminal = opts.Terminal
	payload, err := json.Marshal(cfg)
	if err != nil {
		return nil, errdefs.System("runtime: encode init config: %v", err)
	}

	// On cgroup v2 init is born in its cgroup, which must exist first. On
	// v1 it is moved in before it gets its config (it runs nothing before
	// that), so the cgroup is made while init's Go runtime starts, on the
	// other core: a millisecond or two off every start.
	cgroupFirst := cg != nil && cg.Unified()
	createCgroup := func() error {
		if err := cg.Create(); err != nil {
			return wrapSystem(err)
		}
		return nil
	}
	if cgroupFirst {
		if err := createCgroup(); err != nil {
			return nil, err
		}
	}
	if cg != nil {
		defer func() {
			if err != nil {
				cg.Destroy()
			}
		}()
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, errdefs.System("runtime: socketpair: %v", err)
	}
	parentSock, childSock := os.NewFile(uintptr(fds[0]), "sync"), os.NewFile(uintptr(fds[1]), "sync-init")
	defer childSock.Close()
	defer func() {
		if err != nil {
			parentSock.Close()
		}
	}()

	cmd := &exec.Cmd{
		Path:   opts.ShimPath,
		Args:   []string{"skiff-shim", "init"},
		Env:    append([]string{}, faults.Env()...), // the container's env travels in the config
		Stdin:  opts.Stdin,
		Stdout: opts.Stdout,
		Stderr: opts.Stderr,
		// fd 3 in init; init sets close-on-exec on it.
		ExtraFiles: []*os.File{childSock},
		SysProcAttr: &syscall.SysProcAttr{
			Cloneflags: plan.cloneFlags,
			Setsid:     true, // the container is its own session, like runc's
		},
	}
	if console {
		cmd.SysProcAttr.Setctty = true
		cmd.SysProcAttr.Ctty = 0
	}
	if cg != nil && cg.Unified() {
		// Born in its cgroup: no migration, which costs an RCU grace period.
		dir, err := os.Open(cg.Dirs()[""])
		if err != nil {
			return nil, errdefs.System("runtime: open cgroup: %v", err)
		}
		defer dir.Close()
		cmd.SysProcAttr.UseCgroupFD = true
		cmd.SysProcAttr.CgroupFD = int(dir.Fd())
	}
	if err := startIn(cmd, plan.joins); err != nil {
		return nil, wrapSystem(fmt.Errorf("runtime: start init: %w", err))
	}
	c = &Container{cmd: cmd, sock: parentSock, cg: cg}
	defer func() {
		if err != nil {
			_ = cmd.Process.Kill()
			_, _ = cmd.Process.Wait()
		}
	}()
	childSock.Close()

	if cg != nil && !cgroupFirst {
		// cgroup v1 has no CLONE_INTO_CGROUP; init waits for its config, so
		// it runs nothing before it is in every hierarchy.
		if err := createCgroup(); err != nil {
			return nil, err
		}
		if err := cg.Enter(cmd.Process.Pid); err != nil {
			return nil, wrapSystem(err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = cmd.Process.Kill() })
	defer stop()
	if err := writeMsg(parentSock, msgConfig, payload); err != nil {
		return nil, errdefs.System("runtime: send config to init: %v", err)
	}
	typ, p, err := readMsg(parentSock)
	switch {
	case ctx.Err() != nil:
		return nil, wrapSystem(fmt.Errorf("runtime: create: %w", ctx.Err()))
	case err != nil:
		return nil, errdefs.System("runtime: container init exited during setup: %v", err)
	case typ == msgError:
		return nil, decodeError(p)
	case typ != msgReady:
		return nil, errdefs.System("runtime: unexpected message %q from init", typ)
	}
	if pidsLimit != nil {
		if err := cg.Update(&specs.LinuxResources{Pids: pidsLimit}); err != nil {
			return nil, wrapSystem(err)
		}
	}
	if opts.Terminal {
		if c.console, err = recvFd(parentSock); err != nil {
			return nil, errdefs.System("runtime: receive the container's terminal: %v", err)
		}
	}
	return c, nil
}

// startIn starts cmd with the namespaces in joins entered first. Network,
// IPC, UTS, PID (for children), cgroup and time namespaces are per thread,
// and clone copies them from the calling thread: so a dedicated, locked
// thread enters them and forks init. The goroutine exits locked, which makes
// the Go runtime discard that thread instead of reusing it.
func startIn(cmd *exec.Cmd, joins []nsJoin) error {
	if len(joins) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		goruntime.LockOSThread()
		for _, j := range joins {
			if j.flag == unix.CLONE_NEWNS {
				// A mount namespace cannot be entered while sharing the
				// file system context with other threads.
				if err := unix.Unshare(unix.CLONE_FS); err != nil {
					errc <- fmt.Errorf("unshare fs: %w", err)
					return
				}
			}
			fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				errc <- errdefs.Invalid("open %s namespace %s: %v", j.typ, j.path, err)
				return
			}
			err = unix.Setns(fd, j.flag)
			unix.Close(fd)
			if err != nil {
				errc <- fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
				return
			}
		}
		errc <- cmd.Start()
	}()
	return <-errc
}

// Pid is the host pid of the container's first process.
func (c *Container) Pid() int { return c.cmd.Process.Pid }

// Console is the master of the container's terminal (CreateOpts.Terminal),
// or nil. The caller owns it: it reads the output, writes the input, sets
// the window size (unix.IoctlSetWinsize with TIOCSWINSZ) and closes it.
func (c *Container) Console() *os.File { return c.console }

// Cgroup is the container's cgroup manager (nil without a cgroup).
func (c *Container) Cgroup() cgroups.Manager { return c.cg }

// Start lets init execve the container's program and returns once the
// execve succeeded. A missing program is an error of kind CommandNotFound, one
// that cannot be run CannotInvoke; init has then exited (code 127 or 126).
func (c *Container) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return errdefs.NotModified("container already started")
	}
	c.started = true
	sock := c.sock
	if sock == nil {
		return errdefs.Conflict("container process has exited")
	}
	c.sock = nil
	defer sock.Close()
	if err := writeMsg(sock, msgGo, nil); err != nil {
		return errdefs.System("runtime: start: container init is gone: %v", err)
	}
	typ, p, err := readMsg(sock)
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil:
		return errdefs.System("runtime: start: %v", err)
	case typ == msgError:
		return decodeError(p)
	default:
		return errdefs.System("runtime: unexpected message %q from init", typ)
	}
}

// Wait blocks until the container's first process exits and returns how it
// ended. The process is reaped here; callers that reap children themselves
// (a subreaper's wait loop) must leave this pid to Wait.
func (c *Container) Wait() (ExitStatus, error) {
	c.waitOnce.Do(func() {
		ps, err := c.cmd.Process.Wait() // waitid on the pidfd: no polling
		if err != nil {
			c.waitErr = errdefs.System("runtime: wait: %v", err)
			return
		}
		ws := ps.Sys().(syscall.WaitStatus)
		c.status.Code = errdefs.WaitExitCode(ws)
		if ws.Signaled() {
			c.status.Signal = ws.Signal()
		}
		if c.cg != nil {
			if n, err := c.cg.OOMKillCount(); err == nil && n > 0 {
				c.status.OOMKilled = true
			}
		}
		c.mu.Lock()
		if c.sock != nil {
			c.sock.Close()
			c.sock = nil
		}
		c.mu.Unlock()
	})
	return c.status, c.waitErr
}

// Signal sends sig to the container's first process through its pidfd, so a
// recycled pid is never hit. A process that has exited gives a Conflict error.
func (c *Container) Signal(sig syscall.Signal) error {
	err := c.cmd.Process.Signal(sig)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, os.ErrProcessDone):
		return errdefs.Conflict("container process has exited")
	default:
		return errdefs.System("runtime: signal %d: %v", sig, err)
	}
}

// Destroy kills whatever is left in the container's cgroup and removes the
// cgroup. Call Wait first to learn the exit status (and reap the process).
func (c *Container) Destroy() error {
	// Kill before closing the sync socket: a created init that saw EOF would
	// otherwise exit on its own, and nothing of it should run any more.
	var err error
	if c.cg != nil {
		err = wrapSystem(c.cg.Destroy())
	} else if kerr := c.cmd.Process.Kill(); kerr != nil && !errors.Is(kerr, os.ErrProcessDone) {
		err = errdefs.System("runtime: kill: %v", kerr)
	}
	c.mu.Lock()
	if c.sock != nil {
		c.sock.Close()
		c.sock = nil
	}
	c.mu.Unlock()
	return err
}

// wrapSystem gives an error without a kind the System kind.
func wrapSystem(err error) error {
	if err == nil || errdefs.KindOf(err) != errdefs.KindUnknown {
		return err
	}
	return errdefs.Wrap(errdefs.KindSystem, err)
}

func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
