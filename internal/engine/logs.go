package engine

import (
	"context"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/logopts"
)

// ContainerLogs reads the container's log, whatever its driver: the
// json-file or local files, or the local cache of syslog and journald
// (logopts.Read).
func (e *Engine) ContainerLogs(ctx context.Context, ref string, opts LogsOptions) (<-chan LogMessage, bool, error) {
	if !opts.Stdout && !opts.Stderr {
		return nil, false, errdefs.Invalid("You must choose at least one stream")
	}
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, false, err
	}
	c.mu.Lock()
	tty := c.Config.Tty
	driver := c.HostConfig.LogConfig.Type
	lopts := c.HostConfig.LogConfig.Config
	stopped := c.exited
	if !c.State.Running {
		stopped = closedChan
	}
	c.mu.Unlock()
	if !logopts.Readable(driver, lopts) {
		return nil, false, logopts.ErrReadLogsNotSupported
	}
	dir := e.containerDir(c.ID)
	ch := make(chan LogMessage, 64)
	go func() {
		defer close(ch)
		err := logopts.Read(ctx, driver, lopts, dir, c.ID, logger.ReadOptions{
			Tail: opts.Tail, Since: opts.Since, Until: opts.Until,
			Follow: opts.Follow, Stopped: stopped,
		}, func(en logger.Entry) error {
			if (en.Stream == "stdout" && !opts.Stdout) || (en.Stream == "stderr" && !opts.Stderr) {
				return nil
			}
			select {
			case ch <- LogMessage{Stream: en.Stream, Line: en.Line, Time: en.Time, Attrs: en.Attrs}:
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
