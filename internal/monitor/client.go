package monitor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Spawn starts `shimPath monitor --bundle bundle` in its own session (so it
// outlives the engine), with stdin /dev/null, stdout a pipe and stderr
// appended to DIR/monitor.log, and waits for its "ready" line: by then the
// container's process exists (stopped before execve) and monitor.sock
// accepts connections. The caller owns the returned process: Wait for it
// (or watch it with a pidfd); its exit means the container exited and
// DIR/exit.json holds the status.
func Spawn(ctx context.Context, shimPath, bundle string) (*os.Process, error) {
	bundle, err := filepath.Abs(bundle)
	if err != nil {
		return nil, fmt.Errorf("spawn monitor: %w", err)
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, fmt.Errorf("spawn monitor: %w", err)
	}
	defer devnull.Close()
	logf, err := os.OpenFile(filepath.Join(bundle, MonitorLog), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spawn monitor: %w", err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("spawn monitor: %w", err)
	}
	defer r.Close()
	proc, err := execMonitor(shimPath, []string{"--bundle", bundle}, bundle, devnull, w, logf)
	w.Close()
	if err != nil {
		return nil, fmt.Errorf("spawn monitor: %w", err)
	}
	return awaitReady(ctx, proc, r, bundle)
}

// execMonitor starts `shimPath monitor ARGS` in a session of its own.
func execMonitor(shimPath string, args []string, dir string, stdin, stdout, stderr *os.File) (*os.Process, error) {
	return os.StartProcess(shimPath, append([]string{shimPath, "monitor"}, args...), &os.ProcAttr{
		Dir:   dir,
		Env:   append(os.Environ(), "GOMAXPROCS=1"), // see Main
		Files: []*os.File{stdin, stdout, stderr},
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
}

// awaitReady reads the monitor's status line from r: the process on
// "ready", the error it reports otherwise (the process then reaped).
func awaitReady(ctx context.Context, proc *os.Process, r *os.File, bundle string) (*os.Process, error) {
	line, err := readReady(ctx, r)
	if err != nil {
		// Gone wrong or given up on: do not leave a monitor half set up. The
		// container's init dies with its sync pipe when the monitor dies.
		proc.Kill()
		proc.Wait()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("spawn monitor: %w", ctx.Err())
		}
		return nil, fmt.Errorf("spawn monitor: %w%s", err, logTail(bundle))
	}
	if line == strings.TrimSuffix(readyLine, "\n") {
		return proc, nil
	}
	proc.Wait()
	if rest, ok := strings.CutPrefix(line, errorPrefix); ok {
		return nil, parseErrorLine(rest)
	}
	return nil, errdefs.System("spawn monitor: unexpected line %q%s", line, logTail(bundle))
}

// Pool keeps one monitor started ahead of need, its Go runtime up, waiting
// on its stdin for the bundle to serve (`monitor --bundle-stdin`): a start
// then skips the monitor's exec and runtime start-up, 2 to 3 ms. Spawn
// takes it and starts the next one in the background. The waiting monitor
// exits when its stdin closes: at Close, or when the engine dies.
type Pool struct {
	shimPath string

	mu     sync.Mutex
	next   *warmMonitor
	closed bool
	wg     sync.WaitGroup // refills under way
}

// cmdlineRoom is the room a waiting monitor's command line keeps for its
// bundle's path.
const cmdlineRoom = 512

type warmMonitor struct {
	proc    *os.Process
	bundleW *os.File // its stdin
	readyR  *os.File // its stdout
}

// NewPool returns a pool of monitors of shimPath; the first one starts now.
func NewPool(shimPath string) *Pool {
	p := &Pool{shimPath: shimPath}
	p.refill()
	return p
}

// Spawn is Spawn with the waiting monitor when there is one.
func (p *Pool) Spawn(ctx context.Context, bundle string) (*os.Process, error) {
	p.mu.Lock()
	m := p.next
	p.next = nil
	p.mu.Unlock()
	if m == nil {
		return Spawn(ctx, p.shimPath, bundle)
	}
	// The next one starts once this start is done, not competing with it
	// for the CPU.
	defer p.refill()
	bundle, err := filepath.Abs(bundle)
	if err == nil {
		_, err = m.bundleW.WriteString(bundle + "\n")
	}
	m.bundleW.Close()
	defer m.readyR.Close()
	if err != nil {
		// It died while waiting (EPIPE): reap it, start one the usual way.
		m.proc.Kill()
		m.proc.Wait()
		return Spawn(ctx, p.shimPath, bundle)
	}
	return awaitReady(ctx, m.proc, m.readyR, bundle)
}

// refill starts the next waiting monitor in the background.
func (p *Pool) refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		m, err := startWarm(p.shimPath)
		if err != nil {
			return // Spawn falls back to a cold start
		}
		p.mu.Lock()
		if p.closed || p.next != nil {
			p.mu.Unlock()
			m.stop()
			return
		}
		p.next = m
		p.mu.Unlock()
	}()
}

func startWarm(shimPath string) (*warmMonitor, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer inR.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		inW.Close()
		return nil, err
	}
	defer outW.Close()
	// The last argument is room for the command line the monitor shows
	// once it has its bundle (see setCmdline).
	proc, err := execMonitor(shimPath, []string{"--bundle-stdin", strings.Repeat(" ", cmdlineRoom)}, "/", inR, outW, devnull)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	return &warmMonitor{proc: proc, bundleW: inW, readyR: outR}, nil
}

// stop ends a monitor that never got a bundle: its stdin closes, it exits.
func (m *warmMonitor) stop() {
	m.bundleW.Close()
	m.readyR.Close()
	m.proc.Wait()
}

// Close stops the waiting monitor; Spawn then starts monitors the usual way.
func (p *Pool) Close() {
	p.mu.Lock()
	p.closed = true
	m := p.next
	p.next = nil
	p.mu.Unlock()
	p.wg.Wait()
	if m != nil {
		m.stop()
	}
}

// parseErrorLine reads what follows "error" on the ready line:
// " KIND: MSG" or ": MSG".
func parseErrorLine(s string) error {
	kind := errdefs.KindSystem
	if k, msg, ok := strings.Cut(s, ": "); ok {
		if k = strings.TrimSpace(k); k != "" {
			kind = kindFromName(k)
		}
		s = msg
	}
	return errdefs.Wrap(kind, errors.New(s))
}

// readReady reads the monitor's one status line.
func readReady(ctx context.Context, r *os.File) (string, error) {
	if dl, ok := ctx.Deadline(); ok {
		r.SetReadDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { r.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	var buf []byte
	b := make([]byte, 512)
	for {
		n, err := r.Read(b)
		buf = append(buf, b[:n]...)
		if i := bytes.IndexByte(buf, '\n'); i >= 0 {
			return string(buf[:i]), nil
		}
		if err == io.EOF {
			return "", errdefs.System("monitor exited before it was ready")
		}
		if err != nil {
			return "", err
		}
		if len(buf) > 64<<10 {
			return "", errdefs.System("monitor wrote garbage instead of ready")
		}
	}
}

// logTail quotes the end of the monitor's own log for an error message.
func logTail(bundle string) string {
	b, err := os.ReadFile(filepath.Join(bundle, MonitorLog))
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return ": " + strings.TrimSpace(string(b))
}

// Client talks to the monitor of one bundle. Every call is one connection.
type Client struct {
	bundle string
}

// Dial returns a client for the monitor serving bundle; an error of kind
// Conflict when no monitor is there (the container is not running).
func Dial(bundle string) (*Client, error) {
	if _, err := os.Stat(filepath.Join(bundle, SocketFile)); err != nil {
		return nil, errdefs.Conflict("container is not running: no monitor socket in %s", bundle)
	}
	return &Client{bundle: bundle}, nil
}

// Close releases the client (it holds nothing between calls).
func (c *Client) Close() error { return nil }

// Start releases the container's process. When execve fails the error is a
// *StartError wrapped in CommandNotFound (exit code 127), CannotInvoke (126)
// or another kind (128); the monitor then records exit.json and exits.
func (c *Client) Start(ctx context.Context) (int, error) {
	var rep reply
	if err := c.call(ctx, request{Op: "start"}, &rep); err != nil {
		return 0, err
	}
	if rep.Error != "" {
		return 0, errdefs.Wrap(kindFromName(rep.Kind), &StartError{Msg: rep.Error, ExitCode: rep.ExitCode})
	}
	return rep.Pid, nil
}

// Kill sends sig to the container's first process.
func (c *Client) Kill(ctx context.Context, sig syscall.Signal) error {
	var rep reply
	if err := c.call(ctx, request{Op: "kill", Signal: int(sig)}, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errdefs.Wrap(kindFromName(rep.Kind), errors.New(rep.Error))
	}
	return nil
}

// Wait blocks until the container has exited and returns how. When the
// monitor is already gone it reads exit.json.
func (c *Client) Wait(ctx context.Context) (Exit, error) {
	var ex Exit
	err := c.call(ctx, request{Op: "wait"}, &ex)
	if err == nil {
		return ex, nil
	}
	if ctx.Err() != nil {
		return Exit{}, err
	}
	// The monitor exited between our call and its reply, or before it.
	if ex, rerr := ReadExit(c.bundle); rerr == nil {
		return ex, nil
	}
	return Exit{}, err
}

// Attach registers a client for the container's output (and input): once
// it returns, no output the container writes afterwards is missed. Read
// stdcopy frames from the connection until EOF (the container's output
// ended); write the container's stdin to it and CloseWrite for EOF. ctx
// covers only the handshake.
func (c *Client) Attach(ctx context.Context, stdin, stdout, stderr bool) (net.Conn, error) {
	conn, err := c.send(ctx, request{Op: "attach", Stdin: stdin, Stdout: stdout, Stderr: stderr})
	if err != nil {
		return nil, err
	}
	stop := c.watch(ctx, conn)
	// Byte by byte: the frames follow the reply on the same connection and
	// must stay unread.
	var line []byte
	b := make([]byte, 1)
	for {
		if _, err = conn.Read(b); err != nil {
			break
		}
		if b[0] == '\n' {
			break
		}
		line = append(line, b[0])
		if len(line) > 4096 {
			err = errors.New("reply too long")
			break
		}
	}
	if !stop() || err != nil {
		conn.Close()
		return nil, c.connErr(ctx, "attach", err)
	}
	conn.SetDeadline(time.Time{})
	var rep reply
	if err := json.Unmarshal(line, &rep); err != nil {
		conn.Close()
		return nil, errdefs.System("attach: bad reply from monitor: %v", err)
	}
	if rep.Error != "" {
		conn.Close()
		return nil, errdefs.Wrap(kindFromName(rep.Kind), errors.New(rep.Error))
	}
	return conn, nil
}

// call sends req and decodes the one-line reply into v.
func (c *Client) call(ctx context.Context, req request, v any) error {
	conn, err := c.send(ctx, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := c.watch(ctx, conn)
	defer stop()
	if err := json.NewDecoder(conn).Decode(v); err != nil {
		return c.connErr(ctx, req.Op, err)
	}
	return nil
}

func (c *Client) send(ctx context.Context, req request) (*net.UnixConn, error) {
	addr, done, err := sockAddr(c.bundle)
	if err != nil {
		return nil, errdefs.Conflict("container is not running: %v", err)
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", addr)
	done()
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s: %w", req.Op, ctx.Err())
		}
		return nil, errdefs.Conflict("container is not running: monitor: %v", err)
	}
	conn := nc.(*net.UnixConn)
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, errdefs.Conflict("container is not running: monitor: %v", err)
	}
	return conn, nil
}

// watch makes ctx's deadline and cancellation interrupt I/O on conn. The
// returned stop reports false when ctx already fired.
func (c *Client) watch(ctx context.Context, conn net.Conn) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
}

func (c *Client) connErr(ctx context.Context, op string, err error) error {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// ctx's deadline, set on the connection, may fire a moment before
		// ctx itself reports it.
		t := time.NewTimer(100 * time.Millisecond)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", op, ctx.Err())
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return errdefs.Conflict("%s: container is not running: monitor closed the connection", op)
	}
	return errdefs.System("%s: monitor: %v", op, err)
}

// ReadExit reads DIR/exit.json; an error of kind NotFound when the monitor
// has not written it (still running, or killed before it could).
func ReadExit(bundle string) (Exit, error) {
	var ex Exit
	b, err := os.ReadFile(filepath.Join(bundle, ExitFile))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return ex, errdefs.NotFound("no exit status in %s", bundle)
		}
		return ex, fmt.Errorf("read exit status: %w", err)
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		return ex, fmt.Errorf("read exit status %s: %w", filepath.Join(bundle, ExitFile), err)
	}
	return ex, nil
}

// sockAddr is the address of DIR/monitor.sock. A unix socket path must fit
// in 108 bytes; a longer one is reached through /proc/self/fd/N of the
// directory (done closes N).
func sockAddr(bundle string) (addr string, done func(), err error) {
	p := filepath.Join(bundle, SocketFile)
	if len(p) < 100 {
		return p, func() {}, nil
	}
	fd, err := syscall.Open(bundle, syscall.O_RDONLY|syscall.O_DIRECTORY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, fmt.Errorf("open bundle: %w", err)
	}
	return "/proc/self/fd/" + strconv.Itoa(fd) + "/" + SocketFile, func() { syscall.Close(fd) }, nil
}

// Resize sets the window size of the container's terminal.
func (c *Client) Resize(ctx context.Context, height, width uint16) error {
	var rep reply
	if err := c.call(ctx, request{Op: "resize", Height: height, Width: width}, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errdefs.Wrap(kindFromName(rep.Kind), errors.New(rep.Error))
	}
	return nil
}

// ReopenLog makes the monitor reopen the container's log file (CRI log
// rotation).
func (c *Client) ReopenLog(ctx context.Context) error {
	var rep reply
	if err := c.call(ctx, request{Op: "reopen-log"}, &rep); err != nil {
		return err
	}
	if rep.Error != "" {
		return errdefs.Wrap(kindFromName(rep.Kind), errors.New(rep.Error))
	}
	return nil
}
