package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// Terminals. A container's pty lives in the container (its monitor holds
// the master and sizes it on `resize`); an exec's pty is made here, on the
// host, and its master is copied to the client's connection raw.

// defaultDetachKeys is Docker's Ctrl-P Ctrl-Q.
const defaultDetachKeys = "ctrl-p,ctrl-q"

// ContainerResize sets the size of a running container's terminal.
func (e *Engine) ContainerResize(ctx context.Context, ref string, height, width uint) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, tty := c.State.Running, c.Config.Tty
	c.mu.Unlock()
	if !running {
		return errdefs.Conflict("Container %s is not running", c.ID)
	}
	if !tty {
		// Docker answers 200 and does nothing for a container without a tty.
		return nil
	}
	cl, err := monitor.Dial(e.bundleDir(c.ID))
	if err != nil {
		return errdefs.Conflict("Container %s is not running", c.ID)
	}
	return cl.Resize(ctx, clampSize(height), clampSize(width))
}

// ExecResize sets the size of a running exec's terminal.
func (e *Engine) ExecResize(ctx context.Context, id string, height, width uint) error {
	x, err := e.execs.get(id)
	if err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.console == nil {
		if !x.Running {
			return errdefs.Conflict("exec %s is not running", id)
		}
		return nil
	}
	return setWinsize(x.console, clampSize(height), clampSize(width))
}

func clampSize(v uint) uint16 {
	if v > 0xffff {
		return 0xffff
	}
	return uint16(v)
}

func setWinsize(f *os.File, h, w uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("resize tty: %w", serr)
	}
	return nil
}

// openPty makes a pty on the container's own devpts (as runc does for an
// exec: ttyname and /dev/pts/N work inside), falling back to the host's:
// the master (non-blocking, read through the poller) and the slave for the
// exec'd process.
func openPty(containerPid int) (master, slave *os.File, err error) {
	m, err := unix.Open(fmt.Sprintf("/proc/%d/root/dev/pts/ptmx", containerPid), unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err != nil {
		m, err = unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(m)
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		unix.Close(m)
		return nil, nil, fmt.Errorf("open pty slave: %w", errno)
	}
	return os.NewFile(uintptr(m), "ptmx"), os.NewFile(s, "pts"), nil
}

// parseDetachKeys parses Docker's detach key syntax: comma-separated
// single characters or ctrl-<c> (ctrl-a..ctrl-z, ctrl-@, ctrl-[, ctrl-\,
// ctrl-], ctrl-^, ctrl-_).
func parseDetachKeys(keys string) ([]byte, error) {
	if keys == "" {
		keys = defaultDetachKeys
	}
	var seq []byte
	for _, k := range strings.Split(keys, ",") {
		switch {
		case len(k) == 1:
			seq = append(seq, k[0])
		case len(k) == 6 && strings.HasPrefix(strings.ToLower(k), "ctrl-"):
			c := k[5]
			switch {
			case c >= 'a' && c <= 'z':
				seq = append(seq, c-'a'+1)
			case c >= 'A' && c <= 'Z':
				seq = append(seq, c-'A'+1)
			case c == '@':
				seq = append(seq, 0)
			case c >= '[' && c <= '_':
				seq = append(seq, c-'['+27)
			default:
				return nil, errdefs.Invalid("Invalid escape keys (%s) provided", keys)
			}
		default:
			return nil, errdefs.Invalid("Invalid escape keys (%s) provided", keys)
		}
	}
	return seq, nil
}

// errDetached ends a stdin copy when the detach sequence was read.
var errDetached = errors.New("read escape sequence")

// escapeReader passes input through until the detach sequence has been read
// whole; then it calls onDetach and returns errDetached. Bytes of a partial
// match are held back until it is clear they are not the sequence.
type escapeReader struct {
	r        io.Reader
	keys     []byte
	matched  int
	onDetach func()
	out      []byte
	detached bool // the sequence was read: out is the last input
}

func (e *escapeReader) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.detached {
			e.onDetach()
			return 0, errDetached
		}
		buf := make([]byte, len(p))
		n, err := e.r.Read(buf)
		for _, b := range buf[:n] {
			if b == e.keys[e.matched] {
				e.matched++
				if e.matched == len(e.keys) {
					e.detached = true
					break
				}
				continue
			}
			e.out = append(e.out, e.keys[:e.matched]...)
			e.matched = 0
			if b == e.keys[0] {
				e.matched = 1
				continue
			}
			e.out = append(e.out, b)
		}
		if e.detached {
			continue
		}
		if err != nil {
			if len(e.out) > 0 {
				break
			}
			return 0, err
		}
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// withDetachKeys wraps a tty client's stdin: the detach sequence ends the
// session (cancel) and leaves the container running.
func (e *Engine) withDetachKeys(ctx context.Context, c *Container, stdin io.Reader, keys string) (context.Context, io.Reader, func(), error) {
	seq, err := parseDetachKeys(keys)
	if err != nil {
		return ctx, stdin, func() {}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &escapeReader{r: stdin, keys: seq, onDetach: func() {
		if c != nil {
			e.containerEvent(c, events.ActionDetach, nil)
		}
		cancel()
	}}
	return ctx, r, cancel, nil
}

// execTTY is the host-side pty of an exec with Tty. Its methods are no-ops
// on nil, so ExecStart calls them unconditionally.
type execTTY struct {
	x             *execConfig
	master, slave *os.File
	stdout        io.Writer
	stdin         io.Reader
	outDone       chan struct{}
	detached      chan struct{}
}

// startExecTTY gives cmd a new pty as stdio and controlling terminal.
func (e *Engine) startExecTTY(ctx context.Context, pid int, x *execConfig, cmd *exec.Cmd, cfg container.ExecCreateRequest, opts ExecStartOptions, stdin bool) (*execTTY, error) {
	m, s, err := openPty(pid)
	if err != nil {
		return nil, errdefs.System("exec: %v", err)
	}
	if cfg.ConsoleSize != nil {
		setWinsize(m, clampSize(cfg.ConsoleSize[0]), clampSize(cfg.ConsoleSize[1]))
	}
	t := &execTTY{x: x, master: m, slave: s, outDone: make(chan struct{}), detached: make(chan struct{}), stdout: io.Discard}
	if opts.Stdout != nil && cfg.AttachStdout && !opts.Detach {
		t.stdout = opts.Stdout
	}
	if stdin && !opts.Detach && opts.NoDetachKeys {
		t.stdin = opts.Stdin
	} else if stdin && !opts.Detach {
		_, r, _, err := e.withDetachKeys(ctx, nil, opts.Stdin, cfg.DetachKeys)
		if err != nil {
			m.Close()
			s.Close()
			return nil, err
		}
		r.(*escapeReader).onDetach = func() { close(t.detached) }
		t.stdin = r
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = s, s, s
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setsid, cmd.SysProcAttr.Setctty, cmd.SysProcAttr.Ctty = true, true, 0
	return t, nil
}

func (t *execTTY) abort() {
	if t != nil {
		t.master.Close()
		t.slave.Close()
	}
}

// started runs once the process has its end: copy the output (until every
// slave descriptor is closed: EIO) and the input.
func (t *execTTY) started() {
	if t == nil {
		return
	}
	t.slave.Close()
	t.x.mu.Lock()
	t.x.console = t.master
	t.x.mu.Unlock()
	go func() {
		defer close(t.outDone)
		io.Copy(t.stdout, t.master)
	}()
	if t.stdin != nil {
		go io.Copy(t.master, t.stdin)
	}
}

// finish runs after the process exited: the rest of the output is read
// unless something in the background still holds the terminal.
func (t *execTTY) finish() {
	if t == nil {
		return
	}
	timer := time.NewTimer(2 * time.Second)
	select {
	case <-t.outDone:
	case <-timer.C:
	}
	timer.Stop()
	t.x.mu.Lock()
	t.x.console = nil
	t.x.mu.Unlock()
	t.master.Close()
	<-t.outDone
}
