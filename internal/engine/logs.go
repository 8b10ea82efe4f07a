package engine

import (
	"context"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger/jsonfile"
)

// ContainerLogs reads the container's json-file log.
func (e *Engine) ContainerLogs(ctx context.Context, ref string, opts LogsOptions) (<-chan LogMessage, bool, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	path := c.LogPath
	driver := c.HostConfig.LogConfig.Type
	stopped := c.exited
	if !c.State.Running {
		stopped = closedChan
	}
	c.mu.Unlock()
	if path == "" {
		return nil, false, errdefs.Invalid("configured logging driver does not support reading: %s", driver)
	}
	if !opts.Stdout && !opts.Stderr {
		return nil, false, errdefs.Invalid("You must choose at least one stream")
	}
	ch := make(chan LogMessage, 64)
	go func() {
		defer close(ch)
		err := jsonfile.Read(ctx, path, jsonfile.ReadOptions{
			Tail: opts.Tail, Since: opts.Since, Until: opts.Until,
			Follow: opts.Follow, Stopped: stopped,
		}, func(en jsonfile.Entry) error {
			if (en.Stream == "stdout" && !opts.Stdout) || (en.Stream == "stderr" && !opts.Stderr) {
				return nil
			}
			select {
			case ch <- LogMessage{Stream: en.Stream, Line: en.Line, Time: en.Time}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if err != nil && ctx.Err() == nil {
			ch <- LogMessage{Err: err}
		}
	}()
	return ch, tty, nil
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()
