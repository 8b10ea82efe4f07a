package engine

import (
	"context"
	"io"
	"net"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger/logopts"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// pendingAttach is a client attached to a created container; start hands it
// a monitor connection before the first process runs, so no output is lost.
type pendingAttach struct {
	opts  AttachOptions
	ready chan attachResult
}

type attachResult struct {
	conn net.Conn
	err  error
}

// ContainerAttachTTY reports whether the container has a terminal.
func (e *Engine) ContainerAttachTTY(ctx context.Context, ref string) (bool, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Config.Tty, nil
}

// ContainerAttach connects the client's streams to the container's.
func (e *Engine) ContainerAttach(ctx context.Context, ref string, opts AttachOptions) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	status := c.State.Status
	running := c.State.Running
	openStdin := c.Config.OpenStdin
	tty := c.Config.Tty
	c.mu.Unlock()
	if !openStdin {
		opts.Stdin = nil
	}
	if tty && opts.Stdin != nil && !opts.NoDetachKeys {
		// The detach keys end this session only; the container runs on.
		var cancel func()
		if ctx, opts.Stdin, cancel, err = e.withDetachKeys(ctx, c, opts.Stdin, opts.DetachKeys); err != nil {
			return err
		}
		defer cancel()
	}
	if opts.Logs && logopts.Readable(c.HostConfig.LogConfig.Type, c.HostConfig.LogConfig.Config) {
		if err := e.replayLogs(ctx, c, opts); err != nil {
			return err
		}
	}
	if !opts.Stream {
		return nil
	}
	var conn net.Conn
	switch {
	case running:
		cl, err := monitor.Dial(e.bundleDir(c.ID))
		if err != nil {
			return errdefs.Conflict("You cannot attach to a stopped container, start it first")
		}
		conn, err = cl.Attach(ctx, opts.Stdin != nil, opts.Stdout != nil, opts.Stderr != nil)
		cl.Close()
		if err != nil {
			return err
		}
	case status == container.StateCreated || status == container.StateExited:
		// `docker start -a` attaches before it starts: wait for the start.
		p := &pendingAttach{opts: opts, ready: make(chan attachResult, 1)}
		c.mu.Lock()
		c.attachers = append(c.attachers, p)
		c.mu.Unlock()
		select {
		case r := <-p.ready:
			if r.err != nil {
				return r.err
			}
			conn = r.conn
		case <-ctx.Done():
			c.mu.Lock()
			for i, a := range c.attachers {
				if a == p {
					c.attachers = append(c.attachers[:i], c.attachers[i+1:]...)
					break
				}
			}
			c.mu.Unlock()
			select { // start may have handed us a connection meanwhile
			case r := <-p.ready:
				if r.conn != nil {
					r.conn.Close()
				}
			default:
			}
			return ctx.Err()
		}
	default:
		return errdefs.Conflict("You cannot attach to a stopped container, start it first")
	}
	defer conn.Close()
	e.containerEvent(c, events.ActionAttach, nil)
	return pump(ctx, conn, opts)
}

// pump copies stdin to the monitor and the monitor's frames to the client
// until the container's output ends or the client goes away.
func pump(ctx context.Context, conn net.Conn, opts AttachOptions) error {
	if opts.Stdin != nil {
		go func() {
			io.Copy(conn, opts.Stdin)
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	out, errw := opts.Stdout, opts.Stderr
	if out == nil {
		out = io.Discard
	}
	if errw == nil {
		errw = io.Discard
	}
	_, err := stdcopy.StdCopy(out, errw, conn)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func (e *Engine) replayLogs(ctx context.Context, c *Container, opts AttachOptions) error {
	msgs, _, err := e.ContainerLogs(ctx, c.ID, LogsOptions{Stdout: opts.Stdout != nil, Stderr: opts.Stderr != nil, Tail: -1})
	if err != nil {
		return err
	}
	for m := range msgs {
		w := opts.Stdout
		if m.Stream == "stderr" {
			w = opts.Stderr
		}
		if w != nil {
			w.Write(m.Line)
		}
	}
	return nil
}
