package cri

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/vishvananda/netns"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	"k8s.io/klog/v2"
	utilexec "k8s.io/utils/exec"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// The CRI streaming server. Exec, Attach and PortForward answer with a
// one-time URL (a token valid for a minute) on a plain HTTP server of
// their own; the client (the kubelet's proxy, crictl, kubectl through the
// API server) connects there and speaks the streaming protocols of
// k8s.io/client-go: SPDY/3.1 or websocket (v5.channel.k8s.io ...) for
// remote commands, portforward.k8s.io for port forwarding. The protocol
// side is k8s.io/cri-streaming's (the kubelet's and containerd's); what
// runs behind it is the engine's exec and attach, and a TCP connection
// made inside the pod's network namespace.

// DefaultStreamAddress is where the streaming server listens unless
// configured: loopback, a free port (containerd's default is the same
// idea: stream_server_address 127.0.0.1, port 0). The URLs it hands out
// name the port it got.
const DefaultStreamAddress = "127.0.0.1:0"

// ListenStream opens the streaming server's listener at addr (host:port);
// Serve serves it beside the gRPC socket. Without it Exec, Attach and
// PortForward answer Unavailable.
func (s *Server) ListenStream(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("CRI streaming server: %w", err)
	}
	// The streaming library logs through klog: into the daemon's log.
	klog.SetSlogLogger(s.log.With("component", "cri-streaming"))
	cfg := streaming.DefaultConfig
	cfg.Addr = l.Addr().String() // the URLs name the port actually bound
	// The CRI's streams carry no detach sequence, and a kubectl exec may
	// sit idle for long: the kubelet's own idle timeout applies.
	srv, err := streaming.NewServer(cfg, streamRuntime{s})
	if err != nil {
		l.Close()
		return fmt.Errorf("CRI streaming server: %w", err)
	}
	s.stream, s.streamL = srv, l
	return nil
}

// StreamAddr is the streaming server's address ("" when it is off).
func (s *Server) StreamAddr() string {
	if s.streamL == nil {
		return ""
	}
	return s.streamL.Addr().String()
}

// serveStream serves the streaming server until ctx ends; then it closes
// the listener and every open stream (their execs are killed, attaches
// end, the container runs on).
func (s *Server) serveStream(ctx context.Context) {
	if s.streamL == nil {
		return
	}
	hs := &http.Server{Handler: s.stream, ReadHeaderTimeout: 30 * time.Second}
	stop := context.AfterFunc(ctx, func() { hs.Close() })
	defer stop()
	if err := hs.Serve(s.streamL); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("CRI streaming server stopped", "err", err)
	}
}

func (s *Server) streamOff() error {
	return errdefs.Unavailable("the CRI streaming server is off")
}

// Exec hands out the URL of an exec in a running container.
func (s *Server) Exec(ctx context.Context, req *runtimeapi.ExecRequest) (*runtimeapi.ExecResponse, error) {
	if s.stream == nil {
		return nil, s.streamOff()
	}
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.Invalid("Exec: no command given")
	}
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.State == nil || !c.State.Running {
		return nil, errdefs.Conflict("Exec: container %s is not running", c.ID)
	}
	req.ContainerId = c.ID
	return s.stream.GetExec(req)
}

// Attach hands out the URL of an attach to a running container.
func (s *Server) Attach(ctx context.Context, req *runtimeapi.AttachRequest) (*runtimeapi.AttachResponse, error) {
	if s.stream == nil {
		return nil, s.streamOff()
	}
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if c.State == nil || !c.State.Running {
		return nil, errdefs.Conflict("Attach: container %s is not running", c.ID)
	}
	req.ContainerId = c.ID
	return s.stream.GetAttach(req)
}

// PortForward hands out the URL of port forwarding into a ready pod.
func (s *Server) PortForward(ctx context.Context, req *runtimeapi.PortForwardRequest) (*runtimeapi.PortForwardResponse, error) {
	if s.stream == nil {
		return nil, s.streamOff()
	}
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	if sb.State == nil || !sb.State.Running {
		return nil, errdefs.Conflict("PortForward: pod sandbox %s is not ready", sb.ID)
	}
	for _, p := range req.GetPort() {
		if p <= 0 || p > 65535 {
			return nil, errdefs.Invalid("PortForward: invalid port %d", p)
		}
	}
	req.PodSandboxId = sb.ID
	return s.stream.GetPortForward(req)
}

// streamRuntime runs what the streaming server's clients ask for.
type streamRuntime struct{ s *Server }

// Exec runs cmd in the container with the client's streams; its exit code
// goes back to the client (a non-zero one as an ExitError, which the
// server sends as the NonZeroExitCode status the clients turn into their
// own exit code). When the client goes away, the command is killed (as
// under containerd).
func (r streamRuntime) Exec(ctx context.Context, id string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	b := r.s.b
	req := &container.ExecCreateRequest{Cmd: cmd, Tty: tty, AttachStdin: in != nil, AttachStdout: out != nil, AttachStderr: errw != nil}
	xid, err := b.ExecCreate(ctx, id, req)
	if err != nil {
		return err
	}
	opts := engine.ExecStartOptions{NoDetachKeys: true}
	if in != nil {
		opts.Stdin = in
	}
	if out != nil {
		opts.Stdout = out
	}
	if errw != nil {
		opts.Stderr = errw
	}
	if tty {
		go r.resizeExec(ctx, xid, resize)
	}
	done := make(chan error, 1)
	go func() { done <- b.ExecStart(context.WithoutCancel(ctx), xid, opts) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		if ins, ierr := b.ExecInspect(context.WithoutCancel(ctx), xid); ierr == nil && ins.Running && ins.Pid > 0 {
			killTree(ins.Pid)
		}
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
		return ctx.Err()
	}
	ins, ierr := b.ExecInspect(context.WithoutCancel(ctx), xid)
	if ierr == nil && ins.ExitCode != nil && *ins.ExitCode != 0 {
		// A command that could not start (126, 127) is an exit code too,
		// as for a shell.
		return utilexec.CodeExitError{Err: fmt.Errorf("command %v exited with %d", cmd, *ins.ExitCode), Code: *ins.ExitCode}
	}
	if err != nil {
		return err
	}
	return ierr
}

// resizeExec applies the client's terminal sizes to the exec's pty. The
// first size usually comes before the pty exists: it is retried until the
// exec runs.
func (r streamRuntime) resizeExec(ctx context.Context, xid string, resize <-chan remotecommand.TerminalSize) {
	for {
		var size remotecommand.TerminalSize
		var ok bool
		select {
		case <-ctx.Done():
			return
		case size, ok = <-resize:
			if !ok {
				return
			}
		}
		for try := 0; try < 100; try++ {
			err := r.s.b.ExecResize(ctx, xid, uint(size.Height), uint(size.Width))
			if err == nil || !errdefs.IsConflict(err) {
				break
			}
			if ins, ierr := r.s.b.ExecInspect(ctx, xid); ierr != nil || ins.ExitCode != nil {
				return // it ran and ended
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Attach connects the client's streams to the container's until its output
// ends (it exited) or the client goes away; the container runs on.
func (r streamRuntime) Attach(ctx context.Context, id string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	opts := engine.AttachOptions{Stream: true, NoDetachKeys: true}
	if in != nil {
		opts.Stdin = in
	}
	if out != nil {
		opts.Stdout = out
	}
	if errw != nil {
		opts.Stderr = errw
	}
	if tty {
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case size, ok := <-resize:
					if !ok {
						return
					}
					if err := r.s.b.ContainerResize(ctx, id, uint(size.Height), uint(size.Width)); err != nil {
						r.s.log.Debug("attach: resize", "container", id, "err", err)
					}
				}
			}
		}()
	}
	err := r.s.b.ContainerAttach(ctx, id, opts)
	if ctx.Err() != nil {
		return nil // the client went away
	}
	return err
}

// PortForward connects stream to port on the pod's loopback: a TCP
// connection made inside the sandbox's network namespace (the pinned one
// of a CNI pod, else the pause process's), or on the host's for a
// host-network pod. It returns when the pod's side closes or the client
// goes away.
func (r streamRuntime) PortForward(ctx context.Context, id string, port int32, stream io.ReadWriteCloser) error {
	sb, err := r.s.sandbox(ctx, id)
	if err != nil {
		return err
	}
	if sb.State == nil || !sb.State.Running || sb.State.Pid == 0 {
		return errdefs.Conflict("pod sandbox %s is not ready", id)
	}
	var conn net.Conn
	if sb.HostConfig.NetworkMode.IsHost() {
		conn, err = dialLoopback(ctx, port)
	} else {
		path := r.s.netnsPath(sb.ID)
		if _, serr := os.Stat(path); serr != nil {
			path = "/proc/" + strconv.Itoa(sb.State.Pid) + "/ns/net"
		}
		conn, err = dialInNetNS(ctx, path, port)
	}
	if err != nil {
		return fmt.Errorf("port forward to %d in pod sandbox %s: %w", port, sb.ID, err)
	}
	defer conn.Close()
	toPod := make(chan error, 1)
	fromPod := make(chan error, 1)
	go func() {
		_, err := io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite() // the client is done sending: tell the pod
		}
		toPod <- err
	}()
	go func() {
		_, err := io.Copy(stream, conn)
		fromPod <- err
	}()
	select {
	case err = <-fromPod:
	case err = <-toPod:
		if err == nil { // the client closed its side: the pod answers on
			select {
			case err = <-fromPod:
			case <-ctx.Done():
			}
		}
	case <-ctx.Done():
	}
	return err
}

// dialLoopback connects to port on loopback, IPv4 first, as containerd.
func dialLoopback(ctx context.Context, port int32) (net.Conn, error) {
	var d net.Dialer
	p := strconv.Itoa(int(port))
	conn, err := d.DialContext(ctx, "tcp4", "127.0.0.1:"+p)
	if err != nil {
		if c6, err6 := d.DialContext(ctx, "tcp6", "[::1]:"+p); err6 == nil {
			return c6, nil
		}
	}
	return conn, err
}

// dialInNetNS dials loopback:port from inside the network namespace at
// path. The socket is made on an OS thread switched into that namespace
// (it stays in it after the thread switches back). A thread that cannot
// switch back is not reused: its goroutine ends locked, and the runtime
// discards it.
func dialInNetNS(ctx context.Context, path string, port int32) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	res := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("own network namespace: %w", err)}
			return
		}
		defer orig.Close()
		target, err := netns.GetFromPath(path)
		if err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("pod network namespace: %w", err)}
			return
		}
		defer target.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			res <- result{err: fmt.Errorf("enter the pod network namespace: %w", err)}
			return
		}
		conn, err := dialLoopback(ctx, port)
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		res <- result{conn, err}
	}()
	r := <-res
	return r.conn, r.err
}
