package monitor

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// With Config.Tty the process's stdio is a pty made inside the container
// (runtime.CreateOpts.Terminal); the Process hands the master over through
// Console. The monitor reads the master as the container's stdout (log
// stream "stdout", frame stream 1, as Docker logs a tty), writes attached
// clients' stdin to it, and sets its window size on `resize`. The
// engine turns the frames back into the raw stream a tty client expects.

// consoler is implemented by processes made with a terminal.
type consoler interface{ Console() *os.File }

// setupConsole takes the pty master from the process, sizes it and makes
// the stdin writer a duplicate of it (so that closing stdin, with
// StdinOnce, does not stop the output).
func (s *server) setupConsole() error {
	cp, ok := s.proc.(consoler)
	if !ok || cp.Console() == nil {
		return errdefs.System("tty: the process has no terminal")
	}
	// Our own descriptor, non-blocking, so that reads go through the
	// poller and Close interrupts them.
	mfd, err := unix.FcntlInt(cp.Console().Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("tty: dup master: %w", err)
	}
	if err := unix.SetNonblock(mfd, true); err != nil {
		unix.Close(mfd)
		return fmt.Errorf("tty: %w", err)
	}
	s.console = os.NewFile(uintptr(mfd), "console")
	cp.Console().Close() // ours replaces it
	if s.cfg.ConsoleHeight != 0 || s.cfg.ConsoleWidth != 0 {
		setWinsize(s.console, s.cfg.ConsoleHeight, s.cfg.ConsoleWidth)
	}
	if s.stdinW != nil {
		s.stdinW.Close()
		fd, err := unix.FcntlInt(s.console.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tty: dup master: %w", err)
		}
		s.stdinW = os.NewFile(uintptr(fd), "console-in")
	}
	return nil
}

func (s *server) resize(h, w uint16) reply {
	select {
	case <-s.exitRec:
		return errReply(errdefs.Conflict("container is not running"))
	default:
	}
	if s.console == nil {
		return errReply(errdefs.Invalid("container has no terminal"))
	}
	if err := setWinsize(s.console, h, w); err != nil {
		return errReply(errdefs.System("resize tty: %v", err))
	}
	return reply{}
}

// setWinsize sets the window size; the kernel sends SIGWINCH to the
// terminal's foreground process group.
func setWinsize(f *os.File, h, w uint16) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: h, Col: w})
	})
	if err != nil {
		return err
	}
	return serr
}
