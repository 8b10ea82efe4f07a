package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a Docker Engine API server on a unix socket that answers only
// the routes a test gives it and records every call in order.
type fakeAPI struct {
	t      *testing.T
	socket string
	mux    *http.ServeMux

	mu    sync.Mutex
	calls []string
}

var apiVersionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{t: t, mux: http.NewServeMux()}
	// A short path: unix socket paths are limited to 108 bytes.
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	f.socket = filepath.Join(dir, "api.sock")
	l, err := net.Listen("unix", f.socket)
	if err != nil {
		t.Fatal(err)
	}
	f.mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.47")
		w.Header().Set("OSType", "linux")
		w.Write([]byte("OK"))
	})
	f.mux.HandleFunc("HEAD /_ping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("API-Version", "1.47")
	})
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = apiVersionPrefix.ReplaceAllString(r.URL.Path, "")
		if r.URL.Path != "/_ping" {
			f.mu.Lock()
			f.calls = append(f.calls, r.Method+" "+r.URL.Path)
			f.mu.Unlock()
		}
		f.mux.ServeHTTP(w, r)
	})}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		srv.Close()
	})
	return f
}

func shortTempDir(t *testing.T) (string, error) {
	dir := t.TempDir()
	if len(dir) < 90 {
		return dir, nil
	}
	d, err := os.MkdirTemp("", "skiffcli")
	if err != nil {
		return "", err
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d, nil
}

func (f *fakeAPI) host() string { return "unix://" + f.socket }

func (f *fakeAPI) handle(pattern string, h http.HandlerFunc) { f.mux.HandleFunc(pattern, h) }

func (f *fakeAPI) callList() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"message": msg})
}

// hijack answers an attach/exec-start with a raw stream.
func hijack(t *testing.T, w http.ResponseWriter, r *http.Request) net.Conn {
	// Read the request body first, or the client's write of it fails.
	io.Copy(io.Discard, r.Body)
	conn, _, err := w.(http.Hijacker).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return nil
	}
	conn.Write([]byte("HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"))
	return conn
}

// frame is one stdcopy frame (stream 1 stdout, 2 stderr).
func frame(stream byte, s string) []byte {
	b := []byte{stream, 0, 0, 0, 0, 0, 0, 0}
	n := len(s)
	b[4], b[5], b[6], b[7] = byte(n>>24), byte(n>>16), byte(n>>8), byte(n)
	return append(b, s...)
}

// runCLI runs the command line against host with a fixed clock and returns
// stdout, stderr and the exit status.
func runCLI(t *testing.T, host string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	env := map[string]string{}
	if host != "" {
		env["SKIFF_HOST"] = host
	}
	code := Main(args,
		WithStreams(strings.NewReader(stdin), &out, &errb),
		WithEnv(func(k string) string { return env[k] }),
		WithDefaultHost("unix:///nonexistent/skiff-test.sock", nil),
		WithClock(func() time.Time { return fixedNow }),
	)
	return out.String(), errb.String(), code
}

var fixedNow = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
