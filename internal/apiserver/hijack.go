package apiserver

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"syscall"

	"golang.org/x/sys/unix"
)

// stream is a hijacked connection carrying an attach or exec session.
type stream struct {
	conn   net.Conn
	stdin  io.Reader // the client's bytes; half-close is EOF
	stdout io.Writer
	stderr io.Writer
	ctx    context.Context
	cancel context.CancelFunc
	stop   func() // ends the hang-up watch
}

// hijack takes the connection over for a bidirectional stream, as dockerd
// does: with "Upgrade: tcp" the reply is 101 UPGRADED with the stream's media
// type; without it a plain 200 and the raw stream type. With mux, stdout and
// stderr are framed (stdcopy); with a tty they are the connection itself.
// The returned context ends when the client hangs up.
func (s *Server) hijack(w *respWriter, r *http.Request, mux bool) (*stream, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, errors.New("hijack: connection does not support it")
	}
	_, upgrade := r.Header["Upgrade"]
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, err
	}
	var head []byte
	switch {
	case !upgrade:
		w.status = http.StatusOK
		head = s.head200
	case mux && w.minor >= 42:
		w.status = http.StatusSwitchingProtocols
		head = s.head101Mux
	default:
		w.status = http.StatusSwitchingProtocols
		head = s.head101Raw
	}
	if _, err := conn.Write(head); err != nil {
		conn.Close()
		return nil, err
	}
	st := &stream{conn: conn, stdin: conn}
	if brw.Reader.Buffered() > 0 {
		// The client sent stdin along with the request.
		st.stdin = brw.Reader
	}
	if mux {
		m := newMuxer(conn)
		st.stdout, st.stderr = m.stream(streamStdout), m.stream(streamStderr)
	} else {
		st.stdout, st.stderr = conn, conn
	}
	st.ctx, st.cancel = context.WithCancel(r.Context())
	st.stop = watchHangup(conn, st.cancel)
	return st, nil
}

// close ends the session: the client reads EOF on its output, then the
// connection is released. Any read of stdin still blocked ends with an error.
func (st *stream) close() {
	st.stop()
	st.cancel()
	if cw, ok := st.conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	st.conn.Close()
}

// watchHangup calls onHangup when the peer closes the connection entirely.
// A half-close (the client's end of stdin) does not count: poll reports
// POLLHUP only when both directions are shut. The watch sits in poll(2) on
// its own thread; stop wakes it through an eventfd and waits for it, which
// must happen before the connection is closed (Close waits for the fd's
// users to leave).
func watchHangup(conn net.Conn, onHangup func()) (stop func()) {
	noop := func() {}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return noop
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return noop
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return noop
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		rc.Control(func(fd uintptr) {
			fds := []unix.PollFd{{Fd: int32(fd)}, {Fd: int32(efd), Events: unix.POLLIN}}
			for {
				_, err := unix.Poll(fds, -1)
				if err == unix.EINTR {
					continue
				}
				if err != nil || fds[1].Revents != 0 {
					return
				}
				if fds[0].Revents&(unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0 {
					onHangup()
					return
				}
			}
		})
	}()
	return func() {
		var one [8]byte
		binary.NativeEndian.PutUint64(one[:], 1)
		unix.Write(efd, one[:])
		<-done
		unix.Close(efd)
	}
}
