package monitor

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger/jsonfile"
)

// The test binary doubles as the monitor process (for Spawn) and as a
// short-lived parent that spawns one and exits.
func TestMain(m *testing.M) {
	switch os.Getenv("MONITOR_TEST_ROLE") {
	case "monitor":
		Main(fakeCreateFromBundle)
	case "spawner":
		os.Setenv("MONITOR_TEST_ROLE", "monitor") // for the monitor it spawns
		shim := os.Getenv("MONITOR_TEST_SHIM")
		if shim == "" {
			shim = os.Args[0]
		}
		proc, err := Spawn(context.Background(), shim, os.Getenv("MONITOR_TEST_BUNDLE"))
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println(proc.Pid)
		os.Exit(0)
	}
	flag.Parse()
	if f := flag.Lookup("test.fuzz"); f != nil && f.Value.String() != "" || flag.Lookup("test.fuzzworker").Value.String() == "true" {
		// Fuzzing (hack/fuzz.sh) needs no shim; its workers would each
		// spend seconds building one.
		os.Exit(m.Run())
	}
	cleanup, err := buildShim()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	cleanup()
	os.Exit(code)
}

type harness struct {
	t    *testing.T
	dir  string
	cfg  Config
	done chan error
}

// startMonitor runs the monitor in this process with a fake process.
func startMonitor(t *testing.T, cfg Config, create CreateFunc) *harness {
	t.Helper()
	dir := t.TempDir()
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(dir, "c-json.log")
	} else if cfg.LogPath == "-" {
		cfg.LogPath = ""
	}
	if cfg.LogMaxFiles == 0 {
		cfg.LogMaxFiles = 1
	}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600); err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, dir: dir, cfg: cfg, done: make(chan error, 1)}
	ready := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		h.done <- Run(ctx, Options{
			Bundle: dir, Create: create,
			Ready:        func(err error) { ready <- err },
			Logf:         t.Logf,
			DrainTimeout: 300 * time.Millisecond,
		})
	}()
	t.Cleanup(func() {
		// A test that failed half way must not leave its process running.
		cancel()
		select {
		case <-h.done:
		case <-time.After(15 * time.Second):
			t.Error("monitor did not stop")
		}
	})
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("monitor not ready: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("monitor not ready")
	}
	return h
}

func (h *harness) client() *Client {
	h.t.Helper()
	c, err := Dial(h.dir)
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// finished waits for Run to return and checks what it leaves behind.
func (h *harness) finished() Exit {
	h.t.Helper()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Fatalf("Run: %v", err)
		}
		h.done <- nil // for the cleanup
	case <-time.After(10 * time.Second):
		h.t.Fatal("monitor did not exit")
	}
	if _, err := os.Stat(filepath.Join(h.dir, SocketFile)); !errors.Is(err, os.ErrNotExist) {
		h.t.Errorf("monitor.sock left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(h.dir, ExitFile+".tmp")); !errors.Is(err, os.ErrNotExist) {
		h.t.Errorf("exit.json.tmp left behind: %v", err)
	}
	ex, err := ReadExit(h.dir)
	if err != nil {
		h.t.Fatalf("ReadExit: %v", err)
	}
	if ex.FinishedAt.IsZero() || time.Since(ex.FinishedAt) > time.Minute {
		h.t.Errorf("finishedAt %v", ex.FinishedAt)
	}
	return ex
}

func (h *harness) logEntries() []jsonfile.Entry {
	h.t.Helper()
	var es []jsonfile.Entry
	if err := jsonfile.Read(context.Background(), h.cfg.LogPath, jsonfile.ReadOptions{Tail: -1}, func(e jsonfile.Entry) error {
		es = append(es, e)
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
	return es
}

// demux splits a stdcopy stream.
func demux(r io.Reader) (stdout, stderr []byte, err error) {
	hdr := make([]byte, 8)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if err == io.EOF {
				return stdout, stderr, nil
			}
			return stdout, stderr, err
		}
		n := binary.BigEndian.Uint32(hdr[4:])
		if hdr[1] != 0 || hdr[2] != 0 || hdr[3] != 0 || n == 0 {
			return stdout, stderr, fmt.Errorf("bad frame header %v", hdr)
		}
		buf := make([]byte, n)
		if _, err := io.ReadFull(r, buf); err != nil {
			return stdout, stderr, err
		}
		switch hdr[0] {
		case StreamStdout:
			stdout = append(stdout, buf...)
		case StreamStderr:
			stderr = append(stderr, buf...)
		default:
			return stdout, stderr, fmt.Errorf("bad stream %d", hdr[0])
		}
	}
}

func TestLogAndExitCode(t *testing.T) {
	h := startMonitor(t, Config{ID: "c1"}, fakeCreate("/bin/sh", "-c",
		`echo out1; echo err1 >&2; printf 'tab\there\n'; printf partial; exit 3`))
	if _, err := ReadExit(h.dir); !errdefs.IsNotFound(err) {
		t.Errorf("exit.json before exit: %v", err)
	}
	c := h.client()
	pid, err := c.Start(ctxT(t))
	if err != nil || pid <= 0 {
		t.Fatalf("start: pid %d, %v", pid, err)
	}
	ex, err := c.Wait(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if ex.ExitCode != 3 || ex.Error != "" {
		t.Errorf("wait: %+v", ex)
	}
	if rec := h.finished(); rec.ExitCode != 3 || !rec.FinishedAt.Equal(ex.FinishedAt) {
		t.Errorf("exit.json %+v, wait said %+v", rec, ex)
	}
	var stdout, stderr []string
	for _, e := range h.logEntries() {
		switch e.Stream {
		case "stdout":
			stdout = append(stdout, string(e.Line))
		case "stderr":
			stderr = append(stderr, string(e.Line))
		default:
			t.Errorf("stream %q", e.Stream)
		}
		if time.Since(e.Time) > time.Minute {
			t.Errorf("time %v", e.Time)
		}
	}
	if want := []string{"out1\n", "tab\there\n", "partial"}; fmt.Sprint(stdout) != fmt.Sprint(want) {
		t.Errorf("stdout records %q, want %q", stdout, want)
	}
	if want := []string{"err1\n"}; fmt.Sprint(stderr) != fmt.Sprint(want) {
		t.Errorf("stderr records %q, want %q", stderr, want)
	}
	// The json-file bytes are Docker's.
	raw, _ := os.ReadFile(h.cfg.LogPath)
	if !bytes.Contains(raw, []byte(`{"log":"tab\u0009here\n","stream":"stdout","time":"`)) {
		t.Errorf("log file:\n%s", raw)
	}
}

func TestExitBySignal(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", `kill -TERM $$; sleep 5`))
	c := h.client()
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ex := h.finished(); ex.ExitCode != 128+15 {
		t.Errorf("exit code %d, want 143", ex.ExitCode)
	}
}

func TestNoLogDriver(t *testing.T) {
	h := startMonitor(t, Config{LogPath: "-"}, fakeCreate("/bin/sh", "-c", `echo hi`))
	c := h.client()
	conn, err := c.Attach(ctxT(t), false, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	out, _, err := demux(conn)
	if err != nil || string(out) != "hi\n" {
		t.Errorf("attached output %q, %v", out, err)
	}
	h.finished()
	ents, _ := os.ReadDir(h.dir)
	for _, e := range ents {
		if strings.Contains(e.Name(), "log") {
			t.Errorf("log file %s written with no log driver", e.Name())
		}
	}
}

func TestAttachFramesInOrder(t *testing.T) {
	// Enough output to take many reads, in both streams, interleaved.
	script := `i=0; while [ $i -lt 3000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done`
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", script))
	c := h.client()
	type result struct {
		out, err []byte
		e        error
	}
	attach := func(stdout, stderr bool) chan result {
		conn, err := c.Attach(ctxT(t), false, stdout, stderr)
		if err != nil {
			t.Fatal(err)
		}
		ch := make(chan result, 1)
		go func() {
			defer conn.Close()
			o, e, err := demux(conn)
			ch <- result{o, e, err}
		}()
		return ch
	}
	both, onlyErr := attach(true, true), attach(false, true)
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	var wantOut, wantErr strings.Builder
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&wantOut, "out %d\n", i)
		fmt.Fprintf(&wantErr, "err %d\n", i)
	}
	r := <-both
	if r.e != nil || string(r.out) != wantOut.String() || string(r.err) != wantErr.String() {
		t.Errorf("attach stdout+stderr: err %v, stdout ok %v, stderr ok %v", r.e,
			string(r.out) == wantOut.String(), string(r.err) == wantErr.String())
	}
	r = <-onlyErr
	if r.e != nil || len(r.out) != 0 || string(r.err) != wantErr.String() {
		t.Errorf("attach stderr: err %v, %d stdout bytes, stderr ok %v", r.e, len(r.out), string(r.err) == wantErr.String())
	}
	h.finished()
	var n int
	for _, e := range h.logEntries() {
		if e.Stream == "stdout" {
			if want := fmt.Sprintf("out %d\n", n); string(e.Line) != want {
				t.Fatalf("log record %d: %q, want %q", n, e.Line, want)
			}
			n++
		}
	}
	if n != 3000 {
		t.Errorf("%d stdout records, want 3000", n)
	}
}

func TestLongLines(t *testing.T) {
	// 40000 bytes without newline, then a newline: 16K + 16K + 7232+"\n".
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c",
		`head -c 40000 /dev/zero | tr '\0' x; echo; head -c 100 /dev/zero | tr '\0' y`))
	if _, err := h.client().Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	h.finished()
	var sizes []int
	for _, e := range h.logEntries() {
		sizes = append(sizes, len(e.Line))
	}
	if want := []int{16384, 16384, 40000 - 2*16384 + 1, 100}; fmt.Sprint(sizes) != fmt.Sprint(want) {
		t.Errorf("record sizes %v, want %v", sizes, want)
	}
}

func TestLineSplitter(t *testing.T) {
	tests := []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"lines", []string{"a\nb\n"}, []string{"a\n", "b\n"}},
		{"split across chunks", []string{"ab", "c\nd", "e\n", "f"}, []string{"abc\n", "de\n", "f"}},
		{"empty lines", []string{"\n\n", "\n"}, []string{"\n", "\n", "\n"}},
		{"exactly max content", []string{strings.Repeat("x", maxLine) + "\n"}, []string{strings.Repeat("x", maxLine), "\n"}},
		{"max with newline fits", []string{strings.Repeat("x", maxLine-1) + "\n"}, []string{strings.Repeat("x", maxLine-1) + "\n"}},
		{"long across chunks", []string{strings.Repeat("x", 10000), strings.Repeat("y", 10000) + "\nz"},
			[]string{strings.Repeat("x", 10000) + strings.Repeat("y", 6384), strings.Repeat("y", 3616) + "\n", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			ls := lineSplitter{stream: "stdout", out: func(es []jsonfile.Entry) {
				for _, e := range es {
					got = append(got, string(e.Line)) // copies: records are valid only during out
				}
			}}
			for _, c := range tt.chunks {
				b := []byte(c)
				ls.split(b, time.Now())
				for i := range b {
					b[i] = '#' // the splitter must not keep pointers into the chunk
				}
			}
			ls.flush(time.Now())
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestStdinOnce(t *testing.T) {
	h := startMonitor(t, Config{OpenStdin: true, StdinOnce: true}, fakeCreate("/bin/sh", "-c", `cat; echo done`))
	c := h.client()
	conn, err := c.Attach(ctxT(t), true, true, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte("hello\nworld\n")); err != nil {
		t.Fatal(err)
	}
	// Half-close: the container's stdin ends, cat exits.
	if err := conn.(*net.UnixConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	out, _, err := demux(conn)
	if err != nil || string(out) != "hello\nworld\ndone\n" {
		t.Errorf("output %q, %v", out, err)
	}
	if ex := h.finished(); ex.ExitCode != 0 {
		t.Errorf("exit %+v", ex)
	}
}

func TestStdinStaysOpenWithoutStdinOnce(t *testing.T) {
	h := startMonitor(t, Config{OpenStdin: true}, fakeCreate("/bin/sh", "-c", `exec cat`))
	c := h.client()
	out, err := c.Attach(ctxT(t), false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	// Two clients write stdin in turn; the first one's EOF does not close it.
	for _, msg := range []string{"one\n", "two\n"} {
		in, err := c.Attach(ctxT(t), true, false, false)
		if err != nil {
			t.Fatal(err)
		}
		in.Write([]byte(msg))
		in.(*net.UnixConn).CloseWrite()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if ex, err := c.Wait(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("container ended after stdin EOF: %+v %v", ex, err)
	}
	if err := c.Kill(ctxT(t), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Two clients' input is copied concurrently: either order is right.
	stdout, _, err := demux(out)
	if got := string(stdout); err != nil || (got != "one\ntwo\n" && got != "two\none\n") {
		t.Errorf("output %q, %v", stdout, err)
	}
	if ex := h.finished(); ex.ExitCode != 143 {
		t.Errorf("exit %+v, want 143", ex)
	}
}

func TestNoStdinIsDevNull(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", `cat; echo "eof $?"`))
	c := h.client()
	// Without OpenStdin, an attacher's input goes nowhere.
	conn, err := c.Attach(ctxT(t), true, true, false)
	if err != nil {
		t.Fatal(err)
	}
	conn.Write([]byte("ignored\n"))
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	out, _, err := demux(conn)
	if err != nil || string(out) != "eof 0\n" {
		t.Errorf("output %q, %v", out, err)
	}
	h.finished()
}

func TestKillAndWaiters(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sleep", "100"))
	c := h.client()
	if err := c.Kill(ctxT(t), 0); !errdefs.IsInvalid(err) {
		t.Errorf("kill with signal 0: %v", err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); !errdefs.IsNotModified(err) {
		t.Errorf("second start: %v", err)
	}
	var wg sync.WaitGroup
	exits := make([]Exit, 5)
	for i := range exits {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ex, err := c.Wait(ctxT(t))
			if err != nil {
				t.Error(err)
			}
			exits[i] = ex
		}()
	}
	time.Sleep(50 * time.Millisecond) // the waiters are waiting
	if err := c.Kill(ctxT(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	rec := h.finished()
	for _, ex := range exits {
		if ex != rec || ex.ExitCode != 137 {
			t.Errorf("waiter got %+v, exit.json %+v", ex, rec)
		}
	}
	// Gone: kill is refused as not running, wait reads exit.json.
	if err := c.Kill(ctxT(t), syscall.SIGTERM); !errdefs.IsConflict(err) {
		t.Errorf("kill after exit: %v", err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex != rec {
		t.Errorf("wait after exit: %+v %v", ex, err)
	}
	if _, err := Dial(h.dir); !errdefs.IsConflict(err) {
		t.Errorf("dial after exit: %v", err)
	}
}

func TestKillBeforeStart(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sleep", "100"))
	c := h.client()
	if err := c.Kill(ctxT(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex := h.finished(); ex.ExitCode != 137 {
		t.Errorf("exit %+v", ex)
	}
}

func TestStartFailure(t *testing.T) {
	noexec := filepath.Join(t.TempDir(), "noexec")
	os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644)
	tests := []struct {
		name string
		path string
		kind errdefs.Kind
		code int
	}{
		{"not found", "/nonexistent/cmd", errdefs.KindCommandNotFound, 127},
		{"not executable", noexec, errdefs.KindCannotInvoke, 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := startMonitor(t, Config{}, fakeCreate(tt.path))
			c := h.client()
			conn, err := c.Attach(ctxT(t), false, true, true)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Start(ctxT(t))
			var se *StartError
			if errdefs.KindOf(err) != tt.kind || !errors.As(err, &se) || se.ExitCode != tt.code {
				t.Fatalf("start: %v (kind %v)", err, errdefs.KindOf(err))
			}
			// The failure is on record by the time start replies.
			rec, rerr := ReadExit(h.dir)
			if rerr != nil || rec.ExitCode != tt.code || rec.Error == "" || !strings.Contains(rec.Error, filepath.Base(tt.path)) {
				t.Errorf("exit.json %+v %v", rec, rerr)
			}
			if out, _, err := demux(conn); err != nil || len(out) != 0 {
				t.Errorf("attach got %q %v", out, err)
			}
			if ex := h.finished(); ex != rec {
				t.Errorf("exit.json changed: %+v then %+v", rec, ex)
			}
		})
	}
}

func TestCreateFailure(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{}`), 0o600)
	var readyErr error
	err := Run(context.Background(), Options{Bundle: dir,
		Create: func(context.Context, *Config, Stdio) (Process, error) {
			return nil, errdefs.Invalid("bad spec")
		},
		Ready: func(err error) { readyErr = err }})
	if !errdefs.IsInvalid(err) || readyErr != err {
		t.Errorf("Run: %v, ready: %v", err, readyErr)
	}
	if _, err := os.Stat(filepath.Join(dir, SocketFile)); err == nil {
		t.Error("socket left behind")
	}
}

// Background processes holding the output open are killed (Destroy) after
// the drain timeout, and nothing keeps running.
func TestNothingLeftRunning(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", `sleep 100 & echo $!; exit 7`))
	c := h.client()
	conn, err := c.Attach(ctxT(t), false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := c.Start(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	out, _, err := demux(conn)
	if err != nil {
		t.Fatal(err)
	}
	if ex := h.finished(); ex.ExitCode != 7 {
		t.Errorf("exit %+v", ex)
	}
	bg, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	for _, p := range []int{pid, bg} {
		if p <= 0 {
			t.Fatalf("pid %d (output %q)", p, out)
		}
		// The sleep was our grandchild: once killed, init reaps it.
		deadline := time.Now().Add(5 * time.Second)
		for syscall.Kill(p, 0) == nil && !isZombie(p) {
			if time.Now().After(deadline) {
				t.Fatalf("process %d still running", p)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i > 0 && len(s) > i+2 && s[i+2] == 'Z'
}

// A client that does not read is dropped; the log gets everything and the
// monitor does not wait for the client.
func TestSlowAttacherDoesNotBlockLog(t *testing.T) {
	const size = 8 << 20
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", fmt.Sprintf(`head -c %d /dev/zero | tr '\0' 'x'`, size)))
	c := h.client()
	conn, err := c.Attach(ctxT(t), false, true, true) // never read
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	h.finished()
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("monitor took %v with a stuck client", d)
	}
	total := 0
	for _, e := range h.logEntries() {
		total += len(e.Line)
	}
	if total != size {
		t.Errorf("logged %d bytes, want %d", total, size)
	}
	// The client got a prefix and then the end of the connection.
	n, _ := io.Copy(io.Discard, conn)
	if n >= size {
		t.Errorf("stuck client received %d bytes", n)
	}
}

func TestLogRotation(t *testing.T) {
	h := startMonitor(t, Config{LogMaxSize: 4096, LogMaxFiles: 3}, fakeCreate("/bin/sh", "-c",
		`i=0; while [ $i -lt 500 ]; do echo "line $i"; i=$((i+1)); done`))
	if _, err := h.client().Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	h.finished()
	for _, name := range []string{"", ".1", ".2"} {
		st, err := os.Stat(h.cfg.LogPath + name)
		if err != nil || st.Size() > 4096 {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := os.Stat(h.cfg.LogPath + ".3"); err == nil {
		t.Error("kept a 4th file")
	}
	es := h.logEntries()
	if len(es) == 0 || string(es[len(es)-1].Line) != "line 499\n" {
		t.Fatalf("last record wrong")
	}
	first, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(string(es[0].Line), "line ")))
	for i, e := range es {
		if want := fmt.Sprintf("line %d\n", first+i); string(e.Line) != want {
			t.Fatalf("record %d: %q, want %q", i, e.Line, want)
		}
	}
}

// Attaching once the monitor is gone is refused as not running.
func TestAttachAfterExit(t *testing.T) {
	h := startMonitor(t, Config{}, fakeCreate("/bin/sh", "-c", `echo x`))
	c := h.client()
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	h.finished()
	if _, err := c.Attach(ctxT(t), false, true, true); !errdefs.IsConflict(err) {
		t.Errorf("attach after exit: %v", err)
	}
}

func TestLongBundlePath(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(Config{LogPath: filepath.Join(long, "log.json"), LogMaxFiles: 1})
	os.WriteFile(filepath.Join(long, ConfigFile), b, 0o600)
	done := make(chan error, 1)
	ready := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), Options{Bundle: long, Create: fakeCreate("/bin/sh", "-c", "exit 4"),
			Ready: func(err error) { ready <- err }})
	}()
	if err := <-ready; err != nil {
		t.Fatal(err)
	}
	startAndWait(t, long, 4)
	<-done
	if _, err := os.Stat(filepath.Join(long, SocketFile)); err == nil {
		t.Error("socket left behind")
	}
}

// spawnBundle prepares a bundle for a monitor run as a separate process.
func spawnBundle(t *testing.T, args ...string) string {
	dir := t.TempDir()
	b, _ := json.Marshal(Config{LogPath: filepath.Join(dir, "c-json.log"), LogMaxFiles: 1})
	os.WriteFile(filepath.Join(dir, ConfigFile), b, 0o600)
	if err := writeFakeCmd(dir, args...); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSpawn(t *testing.T) {
	t.Setenv("MONITOR_TEST_ROLE", "monitor")
	dir := spawnBundle(t, "/bin/sh", "-c", `read x; echo "got $x"; exit 5`)
	proc, err := Spawn(ctxT(t), os.Args[0], dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Kill(); proc.Wait() })
	// Its own session, so a terminal's or the engine's process group
	// signals do not reach it.
	if sid, _, _ := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(proc.Pid), 0, 0); int(sid) != proc.Pid {
		t.Errorf("monitor session %d, want its own (%d)", sid, proc.Pid)
	}
	// SIGTERM and SIGINT do not stop it.
	proc.Signal(syscall.SIGTERM)
	proc.Signal(syscall.SIGINT)
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != 5 {
		t.Errorf("wait %+v %v", ex, err)
	}
	st, err := proc.Wait()
	if err != nil || !st.Success() {
		t.Errorf("monitor exit: %v %v", st, err)
	}
	// stdin was /dev/null (the container had no stdin): read got EOF.
	b, _ := os.ReadFile(filepath.Join(dir, "c-json.log"))
	if !bytes.Contains(b, []byte(`"log":"got \n"`)) {
		t.Errorf("log: %s", b)
	}
	if ex, err := ReadExit(dir); err != nil || ex.ExitCode != 5 {
		t.Errorf("exit.json %+v %v", ex, err)
	}
}

// A pool's monitor is started ahead and serves the next bundle; the pool
// then starts another, and Close ends the one left waiting.
func TestPool(t *testing.T) {
	t.Setenv("MONITOR_TEST_ROLE", "monitor")
	p := NewPool(os.Args[0])
	waiting := func() *os.Process {
		for i := 0; i < 500; i++ {
			p.mu.Lock()
			m := p.next
			p.mu.Unlock()
			if m != nil {
				return m.proc
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Fatal("no monitor started ahead")
		return nil
	}
	warm := waiting()
	dir := spawnBundle(t, "/bin/sh", "-c", "echo served; exit 4")
	proc, err := p.Spawn(ctxT(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if proc.Pid != warm.Pid {
		t.Errorf("served by pid %d, not the waiting monitor %d", proc.Pid, warm.Pid)
	}
	// Its command line names its bundle, as a monitor started for it does.
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", proc.Pid)); !bytes.Contains(b, []byte("\x00monitor\x00--bundle\x00"+dir+"\x00")) {
		t.Errorf("command line of the monitor serving %s: %q", dir, b)
	}
	startAndWait(t, dir, 4)
	proc.Wait()
	if b, _ := os.ReadFile(filepath.Join(dir, "c-json.log")); !bytes.Contains(b, []byte("served")) {
		t.Errorf("log: %s", b)
	}
	next := waiting()
	if next.Pid == warm.Pid {
		t.Fatal("no new monitor started after the first was taken")
	}
	p.Close()
	// Close reaped it: signal 0 to its pid finds nothing.
	if err := syscall.Kill(next.Pid, 0); err == nil {
		t.Errorf("waiting monitor %d still there after Close", next.Pid)
	}
	// After Close, a start still works, the usual way.
	dir2 := spawnBundle(t, "/bin/sh", "-c", "exit 0")
	proc2, err := p.Spawn(ctxT(t), dir2)
	if err != nil {
		t.Fatal(err)
	}
	startAndWait(t, dir2, 0)
	proc2.Wait()
}

// startAndWait starts the container of the monitor serving dir and checks
// its exit code.
func startAndWait(t *testing.T, dir string, code int) {
	t.Helper()
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != code {
		t.Errorf("wait %+v %v, want exit %d", ex, err, code)
	}
}

func TestSpawnErrors(t *testing.T) {
	t.Setenv("MONITOR_TEST_ROLE", "monitor")
	// No fake.json: Create fails with NotFound, reported on the ready line.
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{}`), 0o600)
	if _, err := Spawn(ctxT(t), os.Args[0], dir); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "fake command") {
		t.Errorf("spawn with failing create: %v", err)
	}
	// A bad monitor.json is Invalid.
	os.WriteFile(filepath.Join(dir, ConfigFile), []byte(`{`), 0o600)
	if _, err := Spawn(ctxT(t), os.Args[0], dir); !errdefs.IsInvalid(err) {
		t.Errorf("spawn with bad config: %v", err)
	}
	// A monitor that dies before ready: the error quotes its log.
	t.Setenv("MONITOR_TEST_ROLE", "")
	if _, err := Spawn(ctxT(t), "/bin/sh", dir); err == nil {
		t.Error("spawn of a non-monitor succeeded")
	}
}

// The monitor outlives the process that spawned it.
func TestMonitorSurvivesSpawner(t *testing.T) {
	dir := spawnBundle(t, "/bin/sh", "-c", `echo started; exec sleep 100`)
	mpid := spawnOrphan(t, "MONITOR_TEST_BUNDLE="+dir)
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := c.Attach(ctxT(t), false, true, false)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := c.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 8+len("started\n"))
	if _, err := io.ReadFull(conn, frame); err != nil || string(frame[8:]) != "started\n" {
		t.Fatalf("attach read %q %v", frame, err)
	}
	if err := c.Kill(ctxT(t), syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if ex, err := c.Wait(ctxT(t)); err != nil || ex.ExitCode != 137 {
		t.Errorf("wait %+v %v", ex, err)
	}
	waitOrphan(t, mpid)
	b, _ := os.ReadFile(filepath.Join(dir, "c-json.log"))
	if !bytes.Contains(b, []byte(`"log":"started\n"`)) {
		ml, _ := os.ReadFile(filepath.Join(dir, MonitorLog))
		t.Errorf("log: %s\nmonitor.log: %s", b, ml)
	}
}

// spawnOrphan runs a spawner process (the test binary) that spawns a monitor
// and exits at once, and returns the monitor's pid. Meanwhile this process
// is a child subreaper, so the orphaned monitor becomes our child rather
// than init's and waitOrphan can reap it (some inits here do not reap).
func spawnOrphan(t *testing.T, env ...string) int {
	t.Helper()
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		t.Fatalf("set child subreaper: %v", errno)
	}
	t.Cleanup(func() { syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 0, 0) })
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), "MONITOR_TEST_ROLE=spawner"), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("spawner: %v %s", err, out)
	}
	mpid, _ := strconv.Atoi(strings.TrimSpace(string(out)))
	// The spawner is gone; the monitor is not.
	if mpid <= 0 || syscall.Kill(mpid, 0) != nil || isZombie(mpid) {
		t.Fatalf("monitor %d not running (spawner said %q)", mpid, out)
	}
	t.Cleanup(func() {
		// Only when the test failed half way: do not leave it behind.
		if syscall.Kill(mpid, syscall.SIGKILL) == nil {
			var ws syscall.WaitStatus
			syscall.Wait4(mpid, &ws, 0, nil)
		}
	})
	return mpid
}

// waitOrphan reaps the monitor that spawnOrphan returned and checks that it
// exited 0.
func waitOrphan(t *testing.T, mpid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(mpid, &ws, syscall.WNOHANG, nil)
		if err != nil {
			t.Fatalf("wait for monitor %d: %v", mpid, err)
		}
		if pid == mpid {
			if !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("monitor exit status %v", ws)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("monitor did not exit")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
