package cli

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const fakeDaemonEnv = "SKIFF_CLI_TEST_FAKE_DAEMON"

// TestMain lets the test binary play `skiff daemon` for TestAutoStartDaemon:
// the CLI starts its own executable, which here is this binary.
func TestMain(m *testing.M) {
	if os.Getenv(fakeDaemonEnv) == "1" && len(os.Args) > 1 && os.Args[1] == "daemon" {
		os.Exit(fakeDaemon(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// fakeDaemon serves /_ping and an empty container list on --host and writes
// its pid next to the socket so that the test can stop it.
func fakeDaemon(args []string) int {
	var host string
	for i, a := range args {
		if a == "--host" && i+1 < len(args) {
			host = args[i+1]
		}
	}
	path := strings.TrimPrefix(host, "unix://")
	if path == "" {
		return 2
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(path), "fail")); err == nil {
		os.Stderr.WriteString("fake daemon: told to fail\n")
		return 3
	}
	os.WriteFile(filepath.Join(filepath.Dir(path), "daemon.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644)
	os.Stdout.WriteString("fake daemon: started in session " + strconv.Itoa(mustGetsid()) + "\n")
	time.Sleep(100 * time.Millisecond) // answer only after a while, like a real start
	l, err := net.Listen("unix", path)
	if err != nil {
		return 1
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.47")
		w.Write([]byte("OK"))
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte("[]"))
	})
	go http.Serve(l, mux)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	<-sig
	l.Close()
	return 0
}

func mustGetsid() int {
	sid, _ := unix.Getsid(0)
	return sid
}

func TestAutoStartDaemon(t *testing.T) {
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeDaemonEnv, "1")
	logPath := filepath.Join(dir, "skiff.log")
	run := func() (string, int) {
		var out, errb strings.Builder
		c := New(WithStreams(strings.NewReader(""), &out, &errb), WithEnv(func(string) string { return "" }))
		c.defaultHost = "unix://" + filepath.Join(dir, "skiff.sock")
		c.daemonLogPath = logPath
		err := c.Run(context.Background(), []string{"ps", "-q"})
		c.Close()
		if err != nil {
			return err.Error(), exitCodeFor(err)
		}
		return out.String(), 0
	}
	t.Cleanup(func() {
		if b, err := os.ReadFile(filepath.Join(dir, "daemon.pid")); err == nil {
			if pid, err := strconv.Atoi(string(b)); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})

	// A daemon that dies at once is reported with its log.
	os.WriteFile(filepath.Join(dir, "fail"), nil, 0o644)
	msg, code := run()
	if code != 1 || !strings.Contains(msg, "the skiff daemon exited while starting") || !strings.Contains(msg, "fake daemon: told to fail") {
		t.Errorf("failing daemon: code %d %q", code, msg)
	}
	os.Remove(filepath.Join(dir, "fail"))

	start := time.Now()
	if msg, code := run(); code != 0 || msg != "" {
		t.Fatalf("ps with auto-started daemon: code %d %q", code, msg)
	}
	t.Logf("auto-start took %s", time.Since(start))
	b, err := os.ReadFile(filepath.Join(dir, "daemon.pid"))
	if err != nil {
		t.Fatal("daemon did not start")
	}
	pid, _ := strconv.Atoi(string(b))
	// It runs in a session of its own, and its output is in the log.
	if sid, err := unix.Getsid(pid); err != nil || sid != pid {
		t.Errorf("daemon session %d (%v), want its own (%d)", sid, err, pid)
	}
	if logb, _ := os.ReadFile(logPath); !strings.Contains(string(logb), "fake daemon: started in session "+strconv.Itoa(pid)) {
		t.Errorf("log %q", logb)
	}
	// The second command finds it running and starts nothing.
	if msg, code := run(); code != 0 || msg != "" {
		t.Fatalf("second ps: code %d %q", code, msg)
	}
	if b2, _ := os.ReadFile(filepath.Join(dir, "daemon.pid")); string(b2) != string(b) {
		t.Errorf("a second daemon was started")
	}
	syscall.Kill(pid, syscall.SIGTERM)
}
