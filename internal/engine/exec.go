package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/runtime"
)

// execConfig is one exec instance. Like Docker's, execs live in memory only.
type execConfig struct {
	mu          sync.Mutex
	ID          string
	ContainerID string
	Config      container.ExecCreateRequest
	Running     bool
	Started     bool
	ExitCode    *int
	Pid         int
	console     *os.File // pty master of a running exec with Tty (tty.go)
}

type execRegistry struct {
	mu   sync.Mutex
	byID map[string]*execConfig
}

func newExecRegistry() *execRegistry { return &execRegistry{byID: map[string]*execConfig{}} }

func (r *execRegistry) get(id string) (*execConfig, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if x, ok := r.byID[id]; ok {
		return x, nil
	}
	return nil, errdefs.NotFound("No such exec instance: %s", id)
}

// ExecCreate records an exec for a running container.
func (e *Engine) ExecCreate(ctx context.Context, ref string, req *container.ExecCreateRequest) (string, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return "", err
	}
	if req == nil || len(req.Cmd) == 0 {
		return "", errdefs.Invalid("No exec command specified")
	}
	c.mu.Lock()
	running, paused := c.State.Running, c.State.Paused
	c.mu.Unlock()
	if !running {
		return "", errdefs.Conflict("container %s is not running", c.ID)
	}
	if paused {
		return "", errdefs.Conflict("Container %s is paused, unpause the container first", c.ID)
	}
	x := &execConfig{ID: newID(), ContainerID: c.ID, Config: *req}
	e.execs.mu.Lock()
	e.execs.byID[x.ID] = x
	e.execs.mu.Unlock()
	e.containerEvent(c, events.Action("exec_create: "+strings.Join(req.Cmd, " ")), map[string]string{"execID": x.ID})
	return x.ID, nil
}

// ExecTTY reports whether the exec asked for a terminal.
func (e *Engine) ExecTTY(ctx context.Context, id string) (bool, error) {
	x, err := e.execs.get(id)
	if err != nil {
		return false, err
	}
	return x.Config.Tty, nil
}

// ExecStart runs the exec's process inside the container's namespaces. An
// exec that cannot be started (no such program, not executable, unknown
// user, ...) is an error, as with dockerd: of kind CommandNotFound with exit
// code 127 or CannotInvoke with 126; any other failure to start leaves 126,
// dockerd's default.
func (e *Engine) ExecStart(ctx context.Context, id string, opts ExecStartOptions) (err error) {
	x, err := e.execs.get(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if x.Started {
		x.mu.Unlock()
		return errdefs.Conflict("exec %s has already been started", id)
	}
	x.Started = true
	cfg := x.Config
	x.mu.Unlock()
	defer func() {
		if err == nil {
			return
		}
		// Whatever kept it from starting, an exec that never ran is 126
		// unless its program does not exist.
		code, ok := errdefs.CommandExitCode(err)
		if !ok {
			code = errdefs.ExitCannotInvoke
		}
		x.mu.Lock()
		if x.ExitCode == nil {
			x.Running, x.ExitCode = false, &code
		}
		x.mu.Unlock()
	}()

	c, err := e.reg.get(x.ContainerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, pid := c.State.Running, c.State.Pid
	ccfg := *c.Config
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	spec, err := readSpec(filepath.Join(e.bundleDir(c.ID), "config.json"))
	if err != nil {
		return err
	}
	proc := specs.Process{
		Args: cfg.Cmd,
		Env:  mergeEnv(spec.Process.Env, cfg.Env),
		Cwd:  spec.Process.Cwd,
		User: specs.User{Username: ccfg.User},
	}
	if cfg.WorkingDir != "" {
		proc.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		proc.User.Username = cfg.User
	}
	if cfg.Privileged {
		spec.Process.Capabilities = nil
	}
	xcmd, err := runtime.ExecCommand(runtime.ExecOpts{ShimPath: e.cfg.ShimPath, Bundle: e.bundleDir(c.ID), ContainerPid: pid, Spec: spec, Process: proc})
	if err != nil {
		return fmt.Errorf("exec in container %s: %w", c.ID, err)
	}
	defer xcmd.Close()
	cmd := xcmd.Cmd
	// Stdin goes through our own pipe so Wait doesn't block on a client
	// that never closes its side.
	var stdinW io.WriteCloser
	if cfg.AttachStdin && opts.Stdin != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		cmd.Stdin, stdinW = pr, pw
		defer pr.Close()
	}
	if opts.Stdout != nil && cfg.AttachStdout {
		cmd.Stdout = opts.Stdout
	}
	if opts.Stderr != nil && cfg.AttachStderr {
		cmd.Stderr = opts.Stderr
	}
	if opts.Detach {
		cmd.Stdout, cmd.Stderr = nil, nil
	}
	var tty *execTTY
	if cfg.Tty {
		if tty, err = e.startExecTTY(ctx, pid, x, cmd, cfg, opts, stdinW != nil); err != nil {
			return err
		}
		if stdinW != nil { // the pty carries stdin
			stdinW.Close()
			stdinW = nil
		}
	}
	if err := cmd.Start(); err != nil {
		tty.abort()
		return fmt.Errorf("start exec: %w", err)
	}
	tty.started()
	if stdinW != nil {
		cmd.Stdin.(*os.File).Close()
		go func() {
			io.Copy(stdinW, opts.Stdin)
			stdinW.Close()
		}()
	}
	x.mu.Lock()
	x.Running, x.Pid = true, cmd.Process.Pid
	x.mu.Unlock()
	e.containerEvent(c, events.Action("exec_start: "+strings.Join(cfg.Cmd, " ")), map[string]string{"execID": x.ID})
	if err := xcmd.Started(); err != nil {
		// The program never ran: the shim exits with its 126/127, and no
		// exec_die follows (dockerd's containerd reports no exit either).
		cmd.Wait()
		if stdinW != nil {
			stdinW.Close()
		}
		tty.finish()
		return err
	}
	faults.Point("exec-after-start")
	finish := func() int {
		err := cmd.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok {
				code = errdefs.WaitExitCode(ws)
			}
		} else if err != nil {
			code = errdefs.ExitCannotInvoke
		}
		if stdinW != nil {
			stdinW.Close()
		}
		tty.finish()
		x.mu.Lock()
		x.Running, x.ExitCode = false, &code
		x.mu.Unlock()
		e.containerEvent(c, events.ActionExecDie, map[string]string{"execID": x.ID, "exitCode": strconv.Itoa(code)})
		return code
	}
	if opts.Detach {
		go finish()
		return nil
	}
	if tty != nil {
		// The detach keys end the session; the process runs on.
		done := make(chan struct{})
		go func() { finish(); close(done) }()
		select {
		case <-done:
		case <-tty.detached:
		}
		return nil
	}
	finish()
	return nil
}

// ExecInspect reports an exec's state.
func (e *Engine) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	x, err := e.execs.get(id)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	r := &container.ExecInspectResponse{
		ID: x.ID, ContainerID: x.ContainerID, Running: x.Running, Pid: x.Pid,
		OpenStdin: x.Config.AttachStdin, OpenStdout: x.Config.AttachStdout, OpenStderr: x.Config.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: x.Config.Tty, User: x.Config.User, Privileged: &x.Config.Privileged},
	}
	if len(x.Config.Cmd) > 0 {
		r.ProcessConfig.Entrypoint = x.Config.Cmd[0]
		r.ProcessConfig.Arguments = x.Config.Cmd[1:]
	}
	if x.ExitCode != nil {
		code := *x.ExitCode
		r.ExitCode = &code
	}
	return r, nil
}

func readSpec(path string) (*specs.Spec, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errdefs.Conflict("container is not running: %v", err)
	}
	s := &specs.Spec{}
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode %s: %w", path, err)
	}
	return s, nil
}
