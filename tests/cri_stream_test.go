package tests

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// crictlRunner runs crictl against a test daemon's CRI socket.
type crictlRunner struct {
	t   *testing.T
	bin string
	d   *daemon
	dir string
}

func newCrictl(t *testing.T, d *daemon) *crictlRunner {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "crictl.yaml"), nil, 0o644)
	return &crictlRunner{t: t, bin: crictl(t), d: d, dir: dir}
}

func (c *crictlRunner) cmd(args ...string) *exec.Cmd {
	cmd := exec.Command(c.bin, append([]string{"--runtime-endpoint", "unix://" + c.d.criSock, "--image-endpoint", "unix://" + c.d.criSock, "--timeout", "60s"}, args...)...)
	cmd.Env = append(os.Environ(), "CRI_CONFIG_FILE="+filepath.Join(c.dir, "crictl.yaml"))
	return cmd
}

// run runs crictl with stdin, returning stdout, stderr and the exit code.
func (c *crictlRunner) run(stdin string, args ...string) (string, string, int) {
	c.t.Helper()
	cmd := c.cmd(args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("crictl %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (c *crictlRunner) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run("", args...)
	if code != 0 {
		c.t.Fatalf("crictl %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return strings.TrimSpace(out)
}

func (c *crictlRunner) write(name, body string) string {
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

// ptyTerm is a pseudo-terminal whose slave is a client's stdio and
// controlling terminal; the test types into the master and reads what the
// client shows.
type ptyTerm struct {
	master, slave *os.File
	mu            sync.Mutex
	out           bytes.Buffer
}

func newPty(t *testing.T, rows, cols uint16) *ptyTerm {
	t.Helper()
	m, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(m, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatalf("unlockpt: %v", err)
	}
	s, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(m), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY)
	if errno != 0 {
		t.Fatalf("pty peer: %v", errno)
	}
	p := &ptyTerm{master: os.NewFile(uintptr(m), "ptmx"), slave: os.NewFile(s, "pts")}
	p.resize(t, rows, cols)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := p.master.Read(buf)
			p.mu.Lock()
			p.out.Write(buf[:n])
			p.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { p.master.Close(); p.slave.Close() })
	return p
}

func (p *ptyTerm) resize(t *testing.T, rows, cols uint16) {
	if err := unix.IoctlSetWinsize(int(p.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("resize pty: %v", err)
	}
}

// start runs cmd with the slave as its terminal.
func (p *ptyTerm) start(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	cmd.Stdin, cmd.Stdout, cmd.Stderr = p.slave, p.slave, p.slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// expect waits until the output matches re.
func (p *ptyTerm) expect(t *testing.T, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for {
		p.mu.Lock()
		out := p.out.String()
		p.mu.Unlock()
		if rx.MatchString(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q:\n%q", re, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// retypeUntil types s once a second until the output matches re: for
// what arrives beside the input (a terminal's first size), not after it.
func (p *ptyTerm) retypeUntil(t *testing.T, s, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(15 * time.Second)
	for next := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(next) {
			p.typeIn(t, s)
			next = time.Now().Add(time.Second)
		}
		p.mu.Lock()
		out := p.out.String()
		p.mu.Unlock()
		if rx.MatchString(out) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q:\n%q", re, out)
		}
	}
}

func (p *ptyTerm) typeIn(t *testing.T, s string) {
	t.Helper()
	if _, err := p.master.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// waitExit waits for a client started on the pty and returns its code.
func waitExit(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(20 * time.Second):
		t.Fatalf("%v did not exit", cmd.Args)
		return -1
	}
}

// The CRI streaming server, driven by crictl as a user would: exec with
// stdin, an exec's exit code (also of a program that is not there),
// `exec -it` in a terminal with its size and a resize, attach (with stdin
// to a stdin_once container, and with a terminal), and port-forward to a
// server on the pod's loopback.
func TestCRIStreaming(t *testing.T) {
	streamPort := freePort(t)
	d := startDaemonSetup(t, false, func(d *daemon) {
		d.extraConfig = fmt.Sprintf(`"cri-stream-address": "127.0.0.1:%d"`, streamPort)
	})
	d.importBusybox()
	c := newCrictl(t, d)
	podJSON := c.write("pod.json", `{"metadata": {"name": "stream", "namespace": "e2e", "uid": "uid-stream"}, "linux": {}}`)
	pod := c.must("runp", podJSON)
	t.Cleanup(func() { c.run("", "rmp", "-f", pod) })
	ctr := func(name, body string) string {
		t.Helper()
		id := c.must("create", pod, c.write(name+".json", body), podJSON)
		c.must("start", id)
		return id
	}
	web := ctr("web", `{"metadata": {"name": "web"}, "image": {"image": "busybox"}, "linux": {},
  "command": ["sh", "-c", "mkdir -p /srv && echo forwarded > /srv/index.html && exec httpd -f -p 127.0.0.1:8080 -h /srv"]}`)

	// The URLs are the configured address's; an exec of a stopped
	// container is refused before any URL.
	rt, _ := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if r, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: web, Cmd: []string{"true"}, Stdout: true}); err != nil ||
		!strings.HasPrefix(r.Url, fmt.Sprintf("http://127.0.0.1:%d/exec/", streamPort)) {
		t.Errorf("Exec URL = %v, %v; want one on 127.0.0.1:%d", r, err, streamPort)
	}
	stopped := c.must("create", pod, c.write("stopped.json", `{"metadata": {"name": "stopped"}, "image": {"image": "busybox"}, "linux": {}, "command": ["true"]}`), podJSON)
	if _, err := rt.Exec(ctx, &runtimeapi.ExecRequest{ContainerId: stopped, Cmd: []string{"true"}, Stdout: true}); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("Exec in a container that never ran: %v, want FailedPrecondition", err)
	}

	t.Run("exec", func(t *testing.T) {
		// crictl's websocket transport speaks only v5.channel.k8s.io, which
		// the API server translates to SPDY before the kubelet: no runtime
		// serves it (containerd's streaming server is this one).
		for _, transport := range []string{"spdy"} {
			out, errOut, code := c.run("from-stdin\n", "exec", "-i", "--transport", transport, web, "cat")
			if code != 0 || out != "from-stdin\n" {
				t.Errorf("exec -i cat over %s: exit %d, stdout %q, stderr %q", transport, code, out, errOut)
			}
			out, errOut, code = c.run("", "exec", "--transport", transport, web, "sh", "-c", "echo out; echo err >&2; exit 7")
			if code == 0 || out != "out\n" || !strings.Contains(errOut, "err\n") || !strings.Contains(errOut, "exit code 7") {
				t.Errorf("exec exiting 7 over %s: exit %d, stdout %q, stderr %q", transport, code, out, errOut)
			}
		}
		if _, errOut, code := c.run("", "exec", web, "no-such-program"); code == 0 || !strings.Contains(errOut, "exit code 127") {
			t.Errorf("exec of a missing program: exit %d, stderr %q; want exit code 127", code, errOut)
		}
	})

	t.Run("exec -it", func(t *testing.T) {
		p := newPty(t, 30, 100)
		cmd := c.cmd("exec", "-it", web, "sh")
		p.start(t, cmd)
		// The size travels on the stream's resize channel, beside the
		// exec's start: ask until it has arrived.
		p.retypeUntil(t, "stty size; tty\r", `30 100\r?\n/dev/pts/\d+`)
		p.resize(t, 40, 120) // crictl gets SIGWINCH and sends the size
		time.Sleep(200 * time.Millisecond)
		p.typeIn(t, "stty size\r")
		p.expect(t, `40 120`)
		// ctrl-p is input like any other (no detach sequence in the CRI).
		p.typeIn(t, "echo \x10done-$((6*7))\r")
		p.expect(t, `done-42`)
		p.typeIn(t, "exit 3\r")
		if code := waitExit(t, cmd); code == 0 {
			t.Errorf("crictl exec -it after `exit 3`: exit 0")
		}
	})

	t.Run("attach", func(t *testing.T) {
		reader := ctr("reader", `{"metadata": {"name": "reader"}, "image": {"image": "busybox"}, "linux": {},
  "stdin": true, "stdin_once": true,
  "command": ["sh", "-c", "while read l; do echo got:$l; done; echo stdin-closed"]}`)
		out, errOut, code := c.run("one\ntwo\n", "attach", "-i", reader)
		if code != 0 || out != "got:one\ngot:two\nstdin-closed\n" {
			t.Errorf("attach -i: exit %d, stdout %q, stderr %q", code, out, errOut)
		}

		term := ctr("term", `{"metadata": {"name": "term"}, "image": {"image": "busybox"}, "linux": {},
  "stdin": true, "tty": true, "command": ["sh"]}`)
		p := newPty(t, 33, 111)
		cmd := c.cmd("attach", "-it", term)
		p.start(t, cmd)
		p.retypeUntil(t, "stty size\r", `33 111`) // the attach and its first resize

		p.typeIn(t, "exit\r")
		waitExit(t, cmd)
	})

	t.Run("port-forward", func(t *testing.T) {
		cmd := c.cmd("port-forward", pod, ":8080")
		stdout, _ := cmd.StdoutPipe()
		var errOut bytes.Buffer
		cmd.Stderr = &errOut
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { cmd.Process.Kill(); cmd.Wait() }()
		lines := make(chan string, 8)
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
			close(lines)
		}()
		var local string
		re := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> 8080`)
		timeout := time.After(20 * time.Second)
		for local == "" {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("crictl port-forward ended: %s", errOut.String())
				}
				if m := re.FindStringSubmatch(l); m != nil {
					local = m[1]
				}
			case <-timeout:
				t.Fatalf("crictl port-forward printed no local port: %s", errOut.String())
			}
		}
		for i := range 2 { // each connection is a new stream
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%s/", local))
			if err != nil {
				t.Fatalf("GET %d through port-forward: %v", i, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(body) != "forwarded\n" {
				t.Errorf("GET %d through port-forward: %q", i, body)
			}
		}
	})
}
