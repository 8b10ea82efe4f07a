package cli

import (
	"context"
	"errors"
	"io"
	"os"
	gosignal "os/signal"

	"golang.org/x/sys/unix"
)

// InStream is standard input, with what the CLI needs to know about its
// terminal.
type InStream struct {
	io.Reader
	fd       int
	terminal bool
	saved    *unix.Termios
}

// NewInStream wraps r; an *os.File is checked for a terminal.
func NewInStream(r io.Reader) *InStream {
	s := &InStream{Reader: r, fd: -1}
	if f, ok := r.(*os.File); ok {
		s.fd = int(f.Fd())
		s.terminal = isTerminal(s.fd)
	}
	return s
}

// Close closes the underlying reader when it can be closed.
func (s *InStream) Close() error {
	if c, ok := s.Reader.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// IsTerminal reports whether stdin is a terminal.
func (s *InStream) IsTerminal() bool { return s.terminal }

// CheckTty refuses a tty with an attached stdin that is not a terminal,
// with docker's message.
func (s *InStream) CheckTty(attachStdin, ttyMode bool) error {
	if ttyMode && attachStdin && !s.terminal {
		return errors.New("the input device is not a TTY")
	}
	return nil
}

// SetRawTerminal puts a terminal stdin into raw mode; RestoreTerminal undoes it.
func (s *InStream) SetRawTerminal() error {
	if !s.terminal || os.Getenv("NORAW") != "" {
		return nil
	}
	saved, err := makeRaw(s.fd)
	if err != nil {
		return err
	}
	s.saved = saved
	return nil
}

// RestoreTerminal restores the mode SetRawTerminal changed.
func (s *InStream) RestoreTerminal() {
	if s.saved != nil {
		_ = unix.IoctlSetTermios(s.fd, unix.TCSETS, s.saved)
		s.saved = nil
	}
}

// OutStream is standard output.
type OutStream struct {
	io.Writer
	fd       int
	terminal bool
}

// NewOutStream wraps w; an *os.File is checked for a terminal.
func NewOutStream(w io.Writer) *OutStream {
	s := &OutStream{Writer: w, fd: -1}
	if f, ok := w.(*os.File); ok {
		s.fd = int(f.Fd())
		s.terminal = isTerminal(s.fd)
	}
	return s
}

// IsTerminal reports whether stdout is a terminal.
func (s *OutStream) IsTerminal() bool { return s.terminal }

// TtySize returns the terminal's rows and columns, or zeros.
func (s *OutStream) TtySize() (height, width uint) {
	if !s.terminal {
		return 0, 0
	}
	ws, err := unix.IoctlGetWinsize(s.fd, unix.TIOCGWINSZ)
	if err != nil {
		return 0, 0
	}
	return uint(ws.Row), uint(ws.Col)
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}

// makeRaw is cfmakeraw(3). It returns the previous state.
func makeRaw(fd int) (*unix.Termios, error) {
	t, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	saved := *t
	t.Oflag &^= unix.OPOST
	t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	t.Cflag &^= unix.CSIZE | unix.PARENB
	t.Cflag |= unix.CS8
	t.Cc[unix.VMIN] = 1
	t.Cc[unix.VTIME] = 0
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, t); err != nil {
		return nil, err
	}
	return &saved, nil
}

// monitorTtySize sends the terminal's size to the container (or exec) now
// and whenever the terminal is resized (SIGWINCH), until ctx ends.
func (c *CLI) monitorTtySize(ctx context.Context, resize func(ctx context.Context, height, width uint) error) {
	if !c.out.IsTerminal() {
		return
	}
	send := func() {
		if h, w := c.out.TtySize(); h != 0 || w != 0 {
			_ = resize(ctx, h, w)
		}
	}
	send()
	sigc := make(chan os.Signal, 1)
	gosignal.Notify(sigc, unix.SIGWINCH)
	go func() {
		defer gosignal.Stop(sigc)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sigc:
				send()
			}
		}
	}()
}
