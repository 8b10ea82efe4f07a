package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// Environment variables that choose the daemon; SKIFF_HOST wins.
const (
	envSkiffHost  = "SKIFF_HOST"
	envDockerHost = "DOCKER_HOST"
)

// autoStartTimeout bounds the wait for a daemon the CLI started itself.
const autoStartTimeout = 10 * time.Second

// resolveHost picks the daemon address: -H, else SKIFF_HOST, else
// DOCKER_HOST, else defaultHost.
func resolveHost(flagHosts []string, getenv func(string) string, defaultHost string) (string, error) {
	switch {
	case len(flagHosts) > 1:
		return "", errors.New("Specify only one -H")
	case len(flagHosts) == 1:
		return parseHost(flagHosts[0], defaultHost)
	}
	for _, env := range []string{envSkiffHost, envDockerHost} {
		if h := getenv(env); h != "" {
			return parseHost(h, defaultHost)
		}
	}
	return defaultHost, nil
}

// parseHost normalizes a daemon address like docker's opts.ParseHost: a
// bare host[:port] is tcp, "unix://" alone is the default socket.
func parseHost(val, defaultHost string) (string, error) {
	host := strings.TrimSpace(val)
	if host == "" {
		return defaultHost, nil
	}
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		proto, addr = "tcp", host
	}
	switch proto {
	case "unix":
		if strings.Contains(addr, "://") {
			return "", fmt.Errorf("invalid proto, expected unix: %s", addr)
		}
		if addr == "" {
			return defaultHost, nil
		}
		return "unix://" + addr, nil
	case "tcp":
		return parseTCPAddr(addr, val)
	case "fd", "ssh", "npipe":
		return host, nil
	}
	return "", fmt.Errorf("invalid bind address format: %s", val)
}

func parseTCPAddr(addr, orig string) (string, error) {
	const defaultPort = "2375"
	if addr == "" {
		return "tcp://localhost:" + defaultPort, nil
	}
	if strings.Contains(addr, "://") {
		return "", fmt.Errorf("invalid proto, expected tcp: %s", orig)
	}
	if strings.HasSuffix(addr, "]:") {
		addr += defaultPort
	}
	u, err := url.Parse("tcp://" + addr)
	if err != nil {
		return "", err
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil {
		host, port, err = net.SplitHostPort(net.JoinHostPort(u.Host, defaultPort))
	}
	if err != nil {
		return "", fmt.Errorf("invalid bind address format: %s", orig)
	}
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = defaultPort
	}
	if p, err := strconv.Atoi(port); err != nil || p <= 0 || p > 65535 {
		return "", fmt.Errorf("invalid bind address format: %s", orig)
	}
	return "tcp://" + net.JoinHostPort(host, port) + u.Path, nil
}

func (c *CLI) newClient(ctx context.Context) (*client.Client, error) {
	host, err := resolveHost(c.hosts.GetSlice(), c.getenv, c.defaultHost)
	if err != nil {
		return nil, err
	}
	// Only the default socket is ours to bring up: an address the user chose
	// belongs to a daemon they manage.
	if host == c.defaultHost && c.startDaemon != nil {
		if err := c.ensureDaemon(ctx, host); err != nil {
			return nil, err
		}
	}
	opts := []client.Opt{
		client.WithHost(host),
		client.WithUserAgent(binName + "/" + Version),
		client.WithHTTPRequestHook(addRequestHeaders), // build's fast path (build_cmds.go)
	}
	if v := c.getenv("DOCKER_API_VERSION"); v != "" {
		opts = append(opts, client.WithAPIVersion(v))
	}
	return client.New(opts...)
}

// ensureDaemon starts a daemon when nothing listens on the unix socket of
// host. Other failures (permissions, a tcp host) are left to the API client,
// which reports them in docker's words.
func (c *CLI) ensureDaemon(ctx context.Context, host string) error {
	path, ok := strings.CutPrefix(host, "unix://")
	if !ok || socketAnswers(path) {
		return nil
	}
	if err := dialError(path); !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ECONNREFUSED) {
		return nil
	}
	return c.startDaemon(ctx)
}

func dialError(path string) error {
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		conn.Close()
	}
	return err
}

func socketAnswers(path string) bool { return dialError(path) == nil }

// pingSocket reports whether the API on the socket at path answers /_ping.
func pingSocket(ctx context.Context, path string) bool {
	tr := &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", path)
	}}
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://skiff/_ping", nil)
	if err != nil {
		return false
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// autoStartDaemon runs `<this executable> daemon` in its own session with
// its output in a log file, and waits until its API answers. A lock file
// keeps two CLIs started at once from starting two daemons.
func (c *CLI) autoStartDaemon(ctx context.Context) error {
	socket := strings.TrimPrefix(c.defaultHost, "unix://")
	execRoot := filepath.Dir(socket)
	if err := os.MkdirAll(execRoot, 0o711); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(execRoot, "autostart.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("start daemon: lock: %w", err)
	}
	defer unix.Flock(int(lock.Fd()), unix.LOCK_UN)
	// Another CLI may have started it while we waited for the lock.
	if pingSocket(ctx, socket) {
		return nil
	}

	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("start daemon: find own executable: %w", err)
	}
	logPaths := []string{"/var/log/skiff.log", filepath.Join(execRoot, "skiff.log")}
	if c.daemonLogPath != "" {
		logPaths = []string{c.daemonLogPath}
	}
	logPath, logFile, err := openDaemonLog(logPaths)
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer logFile.Close()
	startOffset, _ := logFile.Seek(0, 2)

	cmd := exec.Command(exe, "daemon", "--host", c.defaultHost)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Dir = "/"
	// A session of its own: the daemon must not get the terminal's signals
	// (Ctrl-C on this CLI) nor die with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.NewTimer(autoStartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if pingSocket(ctx, socket) {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the skiff daemon exited while starting (%v); see %s%s", err, logPath, logTail(logPath, startOffset))
		case <-deadline.C:
			return fmt.Errorf("the skiff daemon did not answer on %s within %s; see %s", c.defaultHost, autoStartTimeout, logPath)
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// openDaemonLog opens the first of paths that can be opened for appending:
// /var/log/skiff.log, or <exec-root>/skiff.log when /var/log is not writable.
func openDaemonLog(paths []string) (string, *os.File, error) {
	var firstErr error
	for _, p := range paths {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err == nil {
			return p, f, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return "", nil, firstErr
}

// logTail returns the last lines the daemon wrote, for the error message.
func logTail(path string, from int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) <= from {
		return ""
	}
	b = bytes.TrimSpace(b[from:])
	lines := bytes.Split(b, []byte{'\n'})
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return ":\n" + string(bytes.Join(lines, []byte{'\n'}))
}
