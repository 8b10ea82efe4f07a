package cli

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

const testID = "4f8e2b1c9d0a7e6f5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"

// fakeContainer plays one container: its output goes to the attached
// stream once it is started, then it exits with exitCode.
type fakeContainer struct {
	exitCode   int
	startError string // message of a failed start
	startCode  int
	started    chan struct{}
	exited     chan struct{}
	gotCreate  container.CreateRequest
	gotStdin   chan string
}

func newFakeContainer(f *fakeAPI, exitCode int) *fakeContainer {
	fc := &fakeContainer{exitCode: exitCode, started: make(chan struct{}), exited: make(chan struct{}), gotStdin: make(chan string, 1)}
	t := f.t
	f.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		if err := json.NewDecoder(r.Body).Decode(&fc.gotCreate); err != nil {
			t.Errorf("decode create: %v", err)
		}
		writeJSON(w, http.StatusCreated, container.CreateResponse{ID: testID, Warnings: []string{}})
	})
	f.handle("POST /containers/{id}/attach", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != testID {
			t.Errorf("attach to %q", r.PathValue("id"))
		}
		conn := hijack(t, w, r)
		if conn == nil {
			return
		}
		defer conn.Close()
		if r.URL.Query().Get("stdin") == "1" {
			go func() {
				b, _ := io.ReadAll(conn)
				fc.gotStdin <- string(b)
			}()
		}
		<-fc.started
		conn.Write(frame(1, "hello from stdout\n"))
		conn.Write(frame(2, "hello from stderr\n"))
		<-fc.exited
	})
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-fc.exited:
		case <-r.Context().Done():
			return
		}
		json.NewEncoder(w).Encode(container.WaitResponse{StatusCode: int64(fc.exitCode)})
	})
	f.handle("POST /containers/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		if fc.startError != "" {
			writeError(w, fc.startCode, fc.startError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
		close(fc.started)
		go func() {
			time.Sleep(20 * time.Millisecond)
			close(fc.exited)
		}()
	})
	return fc
}

func TestRunFlow(t *testing.T) {
	f := newFakeAPI(t)
	fc := newFakeContainer(f, 3)
	out, errOut, code := runCLI(t, f.host(), "", "run", "--name", "web", "busybox", "sh", "-c", "exit 3")
	if code != 3 {
		t.Errorf("exit code %d, want the container's 3 (stderr %q)", code, errOut)
	}
	if out != "hello from stdout\n" {
		t.Errorf("stdout %q", out)
	}
	if errOut != "hello from stderr\n" {
		t.Errorf("stderr %q", errOut)
	}
	want := []string{
		"POST /containers/create",
		"POST /containers/" + testID + "/attach",
		"POST /containers/" + testID + "/wait",
		"POST /containers/" + testID + "/start",
	}
	if got := f.callList(); !slices.Equal(got, want) {
		t.Errorf("calls\n got %q\nwant %q", got, want)
	}
	if c := fc.gotCreate; c.Image != "busybox" || !slices.Equal(c.Cmd, []string{"sh", "-c", "exit 3"}) || !c.AttachStdout || !c.AttachStderr || c.AttachStdin {
		t.Errorf("create request %+v", c.Config)
	}
}

func TestRunFlowWaitConditions(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "busybox"}, "next-exit"},
		{[]string{"run", "--rm", "busybox"}, "removed"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			f := newFakeAPI(t)
			newFakeContainer(f, 0)
			var got string
			inner := f.mux
			f.mux = http.NewServeMux()
			f.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "/wait") {
					got = r.URL.Query().Get("condition")
				}
				inner.ServeHTTP(w, r)
			})
			if _, errOut, code := runCLI(t, f.host(), "", tc.args...); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			if got != tc.want {
				t.Errorf("wait condition %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRunInteractiveSendsStdin(t *testing.T) {
	f := newFakeAPI(t)
	fc := newFakeContainer(f, 0)
	_, errOut, code := runCLI(t, f.host(), "some input\n", "run", "-i", "busybox", "cat")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	select {
	case got := <-fc.gotStdin:
		if got != "some input\n" {
			t.Errorf("container's stdin got %q", got)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stdin never reached the container")
	}
	if !fc.gotCreate.OpenStdin || !fc.gotCreate.AttachStdin || !fc.gotCreate.StdinOnce {
		t.Errorf("-i: OpenStdin %v AttachStdin %v StdinOnce %v", fc.gotCreate.OpenStdin, fc.gotCreate.AttachStdin, fc.gotCreate.StdinOnce)
	}
}

func TestRunDetached(t *testing.T) {
	f := newFakeAPI(t)
	fc := newFakeContainer(f, 0)
	out, errOut, code := runCLI(t, f.host(), "", "run", "-d", "busybox", "sleep", "1")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != testID+"\n" {
		t.Errorf("stdout %q, want the full id", out)
	}
	for _, call := range f.callList() {
		if strings.HasSuffix(call, "/attach") {
			t.Errorf("run -d attached: %q", f.callList())
		}
	}
	if fc.gotCreate.AttachStdout || fc.gotCreate.AttachStderr {
		t.Errorf("run -d asked to attach: %+v", fc.gotCreate.Config)
	}
}

func TestRunStartErrors(t *testing.T) {
	for _, tc := range []struct {
		name, msg string
		status    int
		want      int
	}{
		{"not found", `failed to create task: exec: "nosuch": executable file not found in $PATH`, 400, 127},
		{"no such file", `exec /bin/nosuch: no such file or directory`, 400, 127},
		{"permission denied", `exec /etc/passwd: permission denied`, 400, 126},
		{"other", `cgroup: device or resource busy`, 500, 125},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t)
			fc := newFakeContainer(f, 0)
			fc.startError, fc.startCode = tc.msg, tc.status
			_, errOut, code := runCLI(t, f.host(), "", "run", "busybox", "nosuch")
			if code != tc.want {
				t.Errorf("exit %d, want %d", code, tc.want)
			}
			wantMsg := "skiff: Error response from daemon: " + tc.msg
			if !strings.HasPrefix(errOut, wantMsg) {
				t.Errorf("stderr %q, want prefix %q", errOut, wantMsg)
			}
		})
	}
}

func TestRunRmRemovesAfterFailedStart(t *testing.T) {
	defer func(d time.Duration) { failedStartRemoveWait = d }(failedStartRemoveWait)
	failedStartRemoveWait = 50 * time.Millisecond
	f := newFakeAPI(t)
	fc := newFakeContainer(f, 0)
	fc.startError, fc.startCode = `exec: "nosuch": executable file not found in $PATH`, 400
	removed := make(chan struct{})
	f.handle("DELETE /containers/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("force") != "1" {
			t.Errorf("remove without force: %s", r.URL.RawQuery)
		}
		w.WriteHeader(http.StatusNoContent)
		close(removed)
	})
	_, _, code := runCLI(t, f.host(), "", "run", "--rm", "busybox", "nosuch")
	if code != 127 {
		t.Errorf("exit %d, want 127", code)
	}
	select {
	case <-removed:
	default:
		t.Errorf("--rm container not removed after failed start; calls %q", f.callList())
	}
}

func TestRunMissingImage(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("POST /containers/create", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such image: busybox:latest")
	})
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		if got := r.URL.Query().Get("fromImage"); got != "docker.io/library/busybox" {
			t.Errorf("pull fromImage %q", got)
		}
		writeError(w, http.StatusNotImplemented, "pulling images is not supported yet")
	})
	out, errOut, code := runCLI(t, f.host(), "", "run", "busybox")
	if code != 125 {
		t.Errorf("exit %d, want 125", code)
	}
	if out != "" {
		t.Errorf("stdout %q", out)
	}
	want := "Unable to find image 'busybox:latest' locally\nskiff: Error response from daemon: pulling images is not supported yet\n"
	if !strings.HasPrefix(errOut, want) {
		t.Errorf("stderr %q\nwant prefix %q", errOut, want)
	}
}

func TestRunBadFlagValue(t *testing.T) {
	// No server at all: a bad value must fail before any API call.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-m", "x", "busybox"}, `invalid argument "x" for "-m, --memory" flag: invalid size: 'x'`},
		{[]string{"run", "--memory-swap", "lots", "busybox"}, `invalid argument "lots" for "--memory-swap" flag: invalid size: 'lots'`},
		{[]string{"run", "--cpus", "abc", "busybox"}, `invalid argument "abc" for "--cpus" flag: failed to parse abc as a rational number`},
		{[]string{"create", "--nosuchflag", "busybox"}, `unknown flag: --nosuchflag`},
		{[]string{"run", "--rm", "--restart", "always", "busybox"}, `skiff: conflicting options: cannot specify both --restart and --rm`},
		{[]string{"run", "--pull", "sometimes", "busybox"}, `skiff: invalid pull option: 'sometimes'`},
		{[]string{"run", "-e", "=x", "busybox"}, `invalid argument "=x" for "-e, --env" flag: invalid environment variable: =x`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, errOut, code := runCLI(t, "unix:///nonexistent/none.sock", "", tc.args...)
			if code != 125 {
				t.Errorf("exit %d, want 125 (stderr %q)", code, errOut)
			}
			if !strings.HasPrefix(errOut, tc.want) {
				t.Errorf("stderr %q\nwant prefix %q", errOut, tc.want)
			}
		})
	}
}
