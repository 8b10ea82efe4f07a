package monitor

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// copyOutput reads one of the container's output pipes until every writer
// has closed it, logging each line and sending each chunk to the attached
// clients. It never waits for a client: the pipe always drains.
func (s *server) copyOutput(r *os.File, stream byte, name string) {
	defer s.outputs.Done()
	buf := make([]byte, readSize)
	logErrs := 0
	ls := lineSplitter{stream: name, out: func(es []logger.Entry) {
		if s.log == nil {
			return
		}
		if err := s.log.WriteEntries(es); err != nil && logErrs < 10 {
			logErrs++ // a full disk must not flood monitor.log
			s.logf("%s: %v", name, err)
		}
	}}
	for {
		n, err := r.Read(buf)
		if n > 0 {
			s.broadcast(stream, buf[:n])
			ls.split(buf[:n], time.Now())
		}
		if err != nil {
			ls.flush(time.Now())
			return
		}
	}
}

// lineSplitter cuts a stream into log records the way Docker's copier does:
// one record per line including its '\n'; a line longer than 16 KiB is
// logged in 16 KiB pieces (without '\n'), and an unfinished line is logged
// as is when the stream ends. Records go to out in small batches; they may
// point into the chunk being split and are valid only during the call.
type lineSplitter struct {
	stream  string
	out     func([]logger.Entry)
	pending []byte // the start of an unfinished line (< maxLine)
	entries []logger.Entry
	now     time.Time
}

const splitBatch = 64

func (l *lineSplitter) emit(b []byte) {
	l.entries = append(l.entries, logger.Entry{Stream: l.stream, Line: b, Time: l.now})
	if len(l.entries) == splitBatch {
		l.out(l.entries)
		l.entries = l.entries[:0]
	}
}

// split logs the records that chunk completes.
func (l *lineSplitter) split(chunk []byte, now time.Time) {
	l.now = now
	for len(chunk) > 0 {
		i := bytes.IndexByte(chunk, '\n')
		content := chunk // bytes of the current line in this chunk, without '\n'
		if i >= 0 {
			content = chunk[:i]
		}
		for len(l.pending)+len(content) >= maxLine {
			k := maxLine - len(l.pending)
			l.emit(l.take(content[:k]))
			content = content[k:]
		}
		if i < 0 {
			l.pending = append(l.pending, content...)
			break
		}
		// content is the tail of chunk[:i]: the record ends with chunk[i].
		end := i + 1
		l.emit(l.take(chunk[end-1-len(content) : end]))
		chunk = chunk[end:]
	}
	if len(l.entries) > 0 {
		l.out(l.entries)
		l.entries = l.entries[:0]
	}
}

// take returns pending+b as one record: b itself when nothing is pending,
// else a fresh copy (pending is reused for the next line).
func (l *lineSplitter) take(b []byte) []byte {
	if len(l.pending) == 0 {
		return b
	}
	out := make([]byte, 0, len(l.pending)+len(b))
	out = append(append(out, l.pending...), b...)
	l.pending = l.pending[:0]
	return out
}

// flush logs the unfinished line at the end of the stream.
func (l *lineSplitter) flush(now time.Time) {
	if len(l.pending) > 0 {
		l.out([]logger.Entry{{Stream: l.stream, Line: l.pending, Time: now}})
		l.pending = l.pending[:0]
	}
}

// attacher is one attached client. Output for it is queued (up to
// attachBacklog bytes) and written by its own goroutine, so a slow client
// delays nobody; one that falls too far behind is disconnected.
type attacher struct {
	conn           *net.UnixConn
	stdout, stderr bool

	mu      sync.Mutex
	queue   net.Buffers
	queued  int
	closed  bool // no more output will come
	dropped bool
	wake    chan struct{}
	done    chan struct{} // the writer goroutine ended
}

func (s *server) attach(conn *net.UnixConn, br *bufio.Reader, req request) bool {
	a := &attacher{conn: conn, stdout: req.Stdout, stderr: req.Stderr,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	if !a.stdout && !a.stderr {
		close(a.done) // input only: no writer
	}
	s.mu.Lock()
	over := s.outputDone
	if !over {
		// Registered before the reply: the client misses no output that
		// the container writes after Attach returns.
		s.attachers[a] = struct{}{}
	}
	claimStdin := req.Stdin && s.cfg.OpenStdin && s.cfg.StdinOnce && !s.stdinOwner
	if claimStdin {
		s.stdinOwner = true
	}
	s.mu.Unlock()
	// The reply goes out before any frame: the writer starts after it.
	writeReply(conn, reply{})
	conn.SetWriteDeadline(time.Time{})
	if over {
		return false
	}
	// Always read the client's side: input for the container, or discarded
	// (unread data would make closing the connection a reset for the peer).
	go s.copyStdin(br, req.Stdin, claimStdin)
	if a.stdout || a.stderr {
		go a.run()
	}
	// An input-only connection also lives until the container's output ends.
	return true
}

// copyStdin feeds the container's stdin from an attached client. With
// StdinOnce the first such client's EOF closes the container's stdin.
func (s *server) copyStdin(br *bufio.Reader, stdin, once bool) {
	if stdin && s.stdinW != nil {
		_, err := io.Copy(s.stdinW, br)
		if err != nil && !errors.Is(err, os.ErrClosed) && !errors.Is(err, net.ErrClosed) &&
			!errors.Is(err, syscall.EPIPE) && !errors.Is(err, syscall.ECONNRESET) {
			s.logf("stdin: %v", err)
		}
		// As Docker: a tty's input stays open when a client detaches.
		if once && !s.cfg.Tty {
			s.stdinW.Close()
		}
	}
	io.Copy(io.Discard, br)
}

// broadcast queues one chunk of output for every client attached to stream.
func (s *server) broadcast(stream byte, chunk []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var frame []byte
	for a := range s.attachers {
		if (stream == StreamStdout && !a.stdout) || (stream == StreamStderr && !a.stderr) {
			continue
		}
		if frame == nil {
			// One frame shared by all clients; nobody modifies it.
			frame = make([]byte, 8+len(chunk))
			frame[0] = stream
			binary.BigEndian.PutUint32(frame[4:], uint32(len(chunk)))
			copy(frame[8:], chunk)
		}
		if !a.push(frame) {
			delete(s.attachers, a)
			s.logf("attached client too slow: disconnected")
		}
	}
}

func (a *attacher) push(frame []byte) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dropped {
		return false
	}
	if a.queued+len(frame) > attachBacklog {
		a.dropped = true
		a.conn.Close() // unblocks the writer
		select {
		case a.wake <- struct{}{}:
		default:
		}
		return false
	}
	a.queue = append(a.queue, frame)
	a.queued += len(frame)
	select {
	case a.wake <- struct{}{}:
	default:
	}
	return true
}

// run writes queued frames to the client until the output ended and the
// queue is empty.
func (a *attacher) run() {
	defer close(a.done)
	for {
		a.mu.Lock()
		q, closed, dropped := a.queue, a.closed, a.dropped
		a.queue, a.queued = nil, 0
		a.mu.Unlock()
		if dropped {
			return
		}
		if len(q) > 0 {
			if _, err := q.WriteTo(a.conn); err != nil {
				a.mu.Lock()
				a.dropped = true
				a.mu.Unlock()
				return
			}
			continue
		}
		if closed {
			return
		}
		<-a.wake
	}
}

// closeAttachers ends every attached client's output once it has been
// written (or flushTimeout passed), then closes the connections.
func (s *server) closeAttachers() {
	s.mu.Lock()
	s.outputDone = true
	as := s.attachers
	s.attachers = nil
	s.mu.Unlock()
	deadline := time.Now().Add(flushTimeout)
	for a := range as {
		a.conn.SetWriteDeadline(deadline)
		a.mu.Lock()
		a.closed = true
		a.mu.Unlock()
		select {
		case a.wake <- struct{}{}:
		default:
		}
	}
	for a := range as {
		<-a.done
		a.conn.Close()
	}
}
