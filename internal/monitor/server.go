package monitor

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/logger"
)

// ExitStatus is how a process ended.
type ExitStatus struct {
	Code      int            // exit code when it exited
	Signal    syscall.Signal // the signal that killed it, or 0
	OOMKilled bool
}

// Process is the container's first process as the monitor drives it:
// created stopped before execve, released by Start. Wait may be called
// (once, from another goroutine) right after creation, before Start.
type Process interface {
	Pid() int
	// Start releases the process; when execve fails the error has the kind
	// CommandNotFound or CannotInvoke.
	Start() error
	Wait() (ExitStatus, error)
	Signal(syscall.Signal) error
	// Destroy releases what the process held (its cgroup), killing what is
	// left of it.
	Destroy() error
}

// Stdio are the container's ends of its standard streams.
type Stdio struct {
	Stdin, Stdout, Stderr *os.File
}

// CreateFunc creates the container's process, stopped before execve.
type CreateFunc func(ctx context.Context, cfg *Config, stdio Stdio) (Process, error)

// Options configure Run.
type Options struct {
	Bundle string
	Create CreateFunc
	// Ready is called once: with nil when the process exists and the socket
	// serves, or with the error that stopped the set-up (Run then returns it).
	Ready func(error)
	// Logf reports what goes wrong after Ready (to monitor.log); nil discards.
	Logf func(format string, args ...any)
	// DrainTimeout bounds the wait for the output pipes to close after the
	// process exited (processes that escaped into the background may hold
	// them); then the process is destroyed. Zero means 2s.
	DrainTimeout time.Duration
}

// Tunables.
const (
	readSize      = 32 << 10 // one read from the container's pipes
	maxLine       = 16 << 10 // longer lines are logged in pieces, like Docker's
	attachBacklog = 1 << 20  // output queued for a slow attached client before it is dropped
	flushTimeout  = 5 * time.Second
)

type server struct {
	opts    Options
	cfg     Config
	proc    Process
	log     logger.Driver
	stdinW  *os.File // nil without OpenStdin
	console *os.File // the pty master with Tty (read for output; stdinW is a dup of it)
	logf    func(string, ...any)

	mu         sync.Mutex
	attachers  map[*attacher]struct{}
	outputDone bool
	started    bool
	startErr   error
	startDone  chan struct{} // closed once a start has its outcome (startErr set)
	stdinOwner bool          // StdinOnce: the first stdin attacher has been seen
	exitRec    chan struct{}
	exit       Exit // valid once exitRec is closed

	outputs sync.WaitGroup // the two stream copiers
	conns   sync.WaitGroup // connection handlers
	connMu  sync.Mutex
	live    map[net.Conn]struct{}
}

// Run is the monitor: it creates the process through opts.Create, serves
// DIR/monitor.sock and returns once the process has exited and everything
// is recorded and cleaned up. Canceling ctx kills the process.
func Run(ctx context.Context, opts Options) error {
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = 2 * time.Second
	}
	s := &server{
		opts:      opts,
		attachers: map[*attacher]struct{}{},
		exitRec:   make(chan struct{}),
		live:      map[net.Conn]struct{}{},
		logf:      opts.Logf,
	}
	if s.logf == nil {
		s.logf = func(string, ...any) {}
	}
	ready := opts.Ready
	if ready == nil {
		ready = func(error) {}
	}
	ln, outR, errR, err := s.setup(ctx)
	if err != nil {
		ready(err)
		return err
	}
	exited := make(chan ExitStatus, 1)
	go func() {
		st, err := s.proc.Wait()
		if err != nil {
			s.logf("wait: %v", err)
			st = ExitStatus{Code: 255}
		}
		exited <- st
	}()
	s.outputs.Add(2)
	go s.copyOutput(outR, StreamStdout, "stdout")
	go s.copyOutput(errR, StreamStderr, "stderr")
	if s.console != nil {
		s.outputs.Add(1)
		go s.copyOutput(s.console, StreamStdout, "stdout")
	}
	go s.serve(ln)
	faults.Point("monitor-before-ready")
	ready(nil)

	var st ExitStatus
	select {
	case st = <-exited:
	case <-ctx.Done():
		s.proc.Signal(syscall.SIGKILL)
		st = <-exited
	}
	s.finish(st, ln, outR, errR)
	return nil
}

// setup reads the config, makes the pipes, creates the process and listens.
func (s *server) setup(ctx context.Context) (ln *net.UnixListener, outR, errR *os.File, err error) {
	bundle := s.opts.Bundle
	b, err := os.ReadFile(filepath.Join(bundle, ConfigFile))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("read monitor config: %w", err)
	}
	if err := json.Unmarshal(b, &s.cfg); err != nil {
		return nil, nil, nil, errdefs.Invalid("parse %s: %v", ConfigFile, err)
	}
	var closers []*os.File // closed on failure
	fail := func(e error) (*net.UnixListener, *os.File, *os.File, error) {
		for _, f := range closers {
			f.Close()
		}
		if s.log != nil {
			s.log.Close()
		}
		return nil, nil, nil, e
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stdout pipe: %w", err))
	}
	closers = append(closers, outR, outW)
	errR, errW, err := os.Pipe()
	if err != nil {
		return fail(fmt.Errorf("stderr pipe: %w", err))
	}
	closers = append(closers, errR, errW)
	var stdinR *os.File
	if s.cfg.OpenStdin {
		if stdinR, s.stdinW, err = os.Pipe(); err != nil {
			return fail(fmt.Errorf("stdin pipe: %w", err))
		}
		closers = append(closers, s.stdinW)
	} else if stdinR, err = os.Open(os.DevNull); err != nil {
		return fail(fmt.Errorf("stdin: %w", err))
	}
	closers = append(closers, stdinR)
	if s.log, err = openLog(&s.cfg); err != nil {
		return fail(err)
	}
	// A stale socket from an earlier run of this bundle would make Listen fail.
	addr, done, err := sockAddr(bundle)
	if err != nil {
		return fail(err)
	}
	defer done()
	os.Remove(filepath.Join(bundle, SocketFile))
	os.Remove(filepath.Join(bundle, ExitFile)) // not this run's
	if s.proc, err = s.opts.Create(ctx, &s.cfg, Stdio{Stdin: stdinR, Stdout: outW, Stderr: errW}); err != nil {
		return fail(err)
	}
	if s.cfg.Tty {
		if err := s.setupConsole(); err != nil {
			s.proc.Signal(syscall.SIGKILL)
			s.proc.Wait()
			s.proc.Destroy()
			return fail(err)
		}
	}
	// The child has its ends: close ours, so that the read ends see EOF
	// when the container's processes are gone.
	outW.Close()
	errW.Close()
	stdinR.Close()
	closers = []*os.File{outR, errR}
	if s.stdinW != nil {
		closers = append(closers, s.stdinW)
	}
	ln, err = net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	if err != nil {
		s.proc.Signal(syscall.SIGKILL)
		s.proc.Wait()
		s.proc.Destroy()
		return fail(fmt.Errorf("listen on %s: %w", SocketFile, err))
	}
	// We remove the file ourselves, after the last reply.
	ln.SetUnlinkOnClose(false)
	return ln, outR, errR, nil
}

// finish runs once the process has exited: it drains the output, records
// the exit, lets attached clients get all output, answers waiters, and
// cleans up.
func (s *server) finish(st ExitStatus, ln *net.UnixListener, outR, errR *os.File) {
	finishedAt := time.Now().UTC()
	if s.stdinW != nil {
		s.stdinW.Close()
	}
	destroyed := false
	if !waitTimeout(&s.outputs, s.opts.DrainTimeout) {
		// Something that outlived the first process holds the pipes: kill
		// it with the cgroup, then stop reading whatever the case.
		s.logf("output still open %v after exit: destroying", s.opts.DrainTimeout)
		if err := s.proc.Destroy(); err != nil {
			s.logf("destroy: %v", err)
		}
		destroyed = true
		if !waitTimeout(&s.outputs, s.opts.DrainTimeout) {
			outR.Close()
			errR.Close()
			if s.console != nil {
				s.console.Close()
			}
			s.outputs.Wait()
		}
	}
	if s.log != nil {
		if err := s.log.Close(); err != nil {
			s.logf("close log: %v", err)
		}
	}

	// A start whose execve failed makes the process exit too; its error,
	// not that exit status, is what exit.json must say. Wait for the
	// start in flight to know its outcome.
	s.mu.Lock()
	startDone := s.startDone
	s.mu.Unlock()
	if startDone != nil {
		<-startDone
	}
	s.mu.Lock()
	ex := Exit{ExitCode: st.Code, OOMKilled: st.OOMKilled, FinishedAt: finishedAt}
	if st.Signal != 0 {
		ex.ExitCode = errdefs.SignalExitCode(st.Signal)
	}
	if s.startErr != nil {
		ex.ExitCode, ex.Error, ex.OOMKilled = ExitCodeFor(s.startErr), s.startErr.Error(), false
	}
	s.mu.Unlock()
	if err := writeExit(s.opts.Bundle, ex); err != nil {
		s.logf("%v", err)
	}
	faults.Point("monitor-after-exit-record")
	s.closeAttachers()
	s.mu.Lock()
	s.exit = ex
	close(s.exitRec) // wakes waiters and a failed start's reply
	s.mu.Unlock()

	if !destroyed {
		if err := s.proc.Destroy(); err != nil {
			s.logf("destroy: %v", err)
		}
	}
	outR.Close()
	errR.Close()
	if s.console != nil {
		s.console.Close()
	}
	// No new connections; give the handlers in flight a moment to reply,
	// then cut the ones still waiting for a request.
	ln.Close()
	if !waitTimeout(&s.conns, time.Second) {
		s.connMu.Lock()
		for c := range s.live {
			c.Close()
		}
		s.connMu.Unlock()
		s.conns.Wait()
	}
	os.Remove(filepath.Join(s.opts.Bundle, SocketFile))
}

// writeExit writes DIR/exit.json so that it is either whole or absent
// (written aside, then renamed). It is not synced: the bundle is runtime
// state (the exec root, /run by default, is gone at reboot), an engine that
// crashes still finds it in the page cache, and a host that loses power
// takes the container down with it; a sync would cost every exit a disk
// flush where the exec root is on disk.
func writeExit(bundle string, ex Exit) error {
	b, err := json.Marshal(ex)
	if err != nil {
		return fmt.Errorf("encode exit status: %w", err)
	}
	tmp := filepath.Join(bundle, ExitFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write exit status: %w", err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(bundle, ExitFile))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write exit status: %w", err)
	}
	return nil
}

func waitTimeout(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (s *server) serve(ln *net.UnixListener) {
	for {
		conn, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors or the like: the container keeps
			// running, so keep serving once it passes.
			s.logf("accept: %v", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		s.conns.Add(1)
		s.connMu.Lock()
		s.live[conn] = struct{}{}
		s.connMu.Unlock()
		go func() {
			defer s.conns.Done()
			if !s.handle(conn) {
				conn.Close()
			}
			s.connMu.Lock()
			delete(s.live, conn)
			s.connMu.Unlock()
		}()
	}
}

// handle serves one connection; true when the connection was handed over
// (attach) and must stay open.
func (s *server) handle(conn *net.UnixConn) bool {
	br := bufio.NewReaderSize(conn, 512)
	line, err := br.ReadSlice('\n')
	if err != nil {
		return false
	}
	var req request
	if err := json.Unmarshal(line, &req); err != nil {
		writeReply(conn, errReply(errdefs.Invalid("bad request: %v", err)))
		return false
	}
	switch req.Op {
	case "attach":
		return s.attach(conn, br, req)
	case "start":
		writeReply(conn, s.start())
	case "kill":
		writeReply(conn, s.kill(syscall.Signal(req.Signal)))
	case "resize":
		writeReply(conn, s.resize(req.Height, req.Width))
	case "wait":
		<-s.exitRec
		writeReply(conn, s.exit)
	case "reopen-log":
		writeReply(conn, s.reopenLog())
	default:
		writeReply(conn, errReply(errdefs.Invalid("unknown operation %q", req.Op)))
	}
	return false
}

func writeReply(conn net.Conn, v any) {
	b, _ := json.Marshal(v)
	conn.SetWriteDeadline(time.Now().Add(flushTimeout))
	conn.Write(append(b, '\n'))
}

func errReply(err error) reply {
	return reply{Error: err.Error(), Kind: kindName(err)}
}

func (s *server) start() reply {
	s.mu.Lock()
	select {
	case <-s.exitRec:
		s.mu.Unlock()
		return errReply(errdefs.Conflict("container has already exited"))
	default:
	}
	if s.started {
		s.mu.Unlock()
		return errReply(errdefs.NotModified("container already started"))
	}
	s.started = true
	s.startDone = make(chan struct{})
	s.mu.Unlock()
	err := s.proc.Start()
	s.mu.Lock()
	s.startErr = err
	close(s.startDone)
	s.mu.Unlock()
	if err == nil {
		faults.Point("monitor-after-start")
		return reply{Pid: s.proc.Pid()}
	}
	// The process will not run the program: make sure it is gone, and reply
	// once exit.json records the failure.
	s.proc.Signal(syscall.SIGKILL)
	<-s.exitRec
	return reply{Error: err.Error(), Kind: kindName(err), ExitCode: ExitCodeFor(err)}
}

func (s *server) kill(sig syscall.Signal) reply {
	select {
	case <-s.exitRec:
		return errReply(errdefs.Conflict("container is not running"))
	default:
	}
	if sig <= 0 || sig > 64 {
		return errReply(errdefs.Invalid("invalid signal %d", sig))
	}
	if err := s.proc.Signal(sig); err != nil {
		if errors.Is(err, os.ErrProcessDone) || errors.Is(err, syscall.ESRCH) {
			return errReply(errdefs.Conflict("container is not running"))
		}
		return errReply(fmt.Errorf("signal %d: %w", sig, err))
	}
	return reply{}
}

// reopenLog makes a log driver that writes to a file the kubelet rotates
// (crilog) start a new file at its path.
func (s *server) reopenLog() reply {
	r, ok := s.log.(interface{ Reopen() error })
	if !ok {
		return errReply(errdefs.Invalid("the container's log driver cannot reopen its log"))
	}
	if err := r.Reopen(); err != nil {
		return errReply(err)
	}
	return reply{}
}
