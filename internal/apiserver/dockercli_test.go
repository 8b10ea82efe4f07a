package apiserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// dockerCLI finds the docker CLI, and fails the test without one: a skip
// reads as ok in `go test`, and hack/deps.sh provides the CLI everywhere.
func dockerCLI(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/usr/local/bin/docker"); err == nil {
		return "/usr/local/bin/docker"
	}
	p, err := exec.LookPath("docker")
	if err != nil {
		t.Fatalf("docker CLI not installed (%v): run hack/deps.sh, which builds it from github.com/docker/cli", err)
	}
	return p
}

// docker runs the real docker CLI against sock and returns its output and
// exit code.
func docker(t *testing.T, sock string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return dockerIn(t, sock, nil, args...)
}

func dockerIn(t *testing.T, sock string, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	dockerBin := dockerCLI(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, dockerBin, args...)
	home := t.TempDir()
	cmd.Env = []string{"DOCKER_HOST=unix://" + sock, "DOCKER_CONFIG=" + home, "HOME=" + home, "PATH=/usr/bin:/bin"}
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("docker %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

const fullID = "c0ffee0123456789abcdef0123456789abcdef0123456789abcdef0123456789"

func TestDockerCLIVersionAndPs(t *testing.T) {
	fb := &fakeBackend{
		list: func(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error) {
			if !opts.All {
				return nil, nil
			}
			return []container.Summary{{
				ID: fullID, Names: []string{"/web"}, Image: "busybox", Command: "sleep 100",
				Created: time.Now().Add(-time.Minute).Unix(), State: "exited", Status: "Exited (0) 5 seconds ago",
			}}, nil
		},
	}
	sock := serve(t, fb)

	out, errOut, code := docker(t, sock, "version")
	if code != 0 {
		t.Fatalf("docker version: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"Server:", "Engine:", "test", "1.51 (minimum version 1.24)", "Experimental:     false"} {
		if !strings.Contains(out, want) {
			t.Errorf("docker version output lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = docker(t, sock, "ps", "-a")
	if code != 0 {
		t.Fatalf("docker ps -a: exit %d\n%s%s", code, out, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "CONTAINER ID") || !strings.HasPrefix(lines[1], fullID[:12]) ||
		!strings.Contains(lines[1], "busybox") || !strings.HasSuffix(lines[1], "web") || !strings.Contains(lines[1], "Exited (0)") {
		t.Errorf("docker ps -a:\n%s", out)
	}
	out, _, _ = docker(t, sock, "ps", "-q")
	if strings.TrimSpace(out) != "" {
		t.Errorf("docker ps without -a listed %q", out)
	}
}

// TestDockerCLIRun drives `docker run` through create, attach, wait and
// start — the hijack and the early wait header with the real client.
func TestDockerCLIRun(t *testing.T) {
	var mu sync.Mutex
	started := map[string]chan struct{}{}
	startedCh := func(id string) chan struct{} {
		mu.Lock()
		defer mu.Unlock()
		if started[id] == nil {
			started[id] = make(chan struct{})
		}
		return started[id]
	}
	attached := make(chan struct{}, 8)
	fb := &fakeBackend{
		create: func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
			if req.Image != "busybox" {
				return container.CreateResponse{}, noImage(req.Image)
			}
			return container.CreateResponse{ID: req.Cmd[0] + strings.Repeat("0", 64-len(req.Cmd[0]))}, nil
		},
		attachTTY: func(ctx context.Context, id string) (bool, error) { return false, nil },
		attach: func(ctx context.Context, id string, opts engine.AttachOptions) error {
			attached <- struct{}{}
			select {
			case <-startedCh(id):
			case <-ctx.Done():
				return ctx.Err()
			}
			switch {
			case strings.HasPrefix(id, "echo"):
				io.WriteString(opts.Stdout, "hello from the fake\n")
				io.WriteString(opts.Stderr, "to stderr\n")
			case strings.HasPrefix(id, "cat") && opts.Stdin != nil:
				io.Copy(opts.Stdout, opts.Stdin)
			}
			return nil
		},
		wait: func(ctx context.Context, id, cond string) (<-chan container.WaitResponse, error) {
			ch := make(chan container.WaitResponse, 1)
			go func() {
				select {
				case <-startedCh(id):
					ch <- container.WaitResponse{StatusCode: 3}
				case <-ctx.Done():
				}
			}()
			return ch, nil
		},
		start: func(ctx context.Context, id string) error {
			if strings.HasPrefix(id, "nonexist") {
				return errdefs.CommandNotFound(`failed to create task for container: failed to create shim task: OCI runtime create failed: exec: "nonexist": executable file not found in $PATH: unknown`)
			}
			close(startedCh(id))
			return nil
		},
		remove: func(ctx context.Context, id string, force, v bool) error { return nil },
	}
	sock := serve(t, fb)

	out, errOut, code := docker(t, sock, "run", "busybox", "echo")
	if code != 3 || out != "hello from the fake\n" || errOut != "to stderr\n" {
		t.Errorf("docker run: exit %d stdout %q stderr %q", code, out, errOut)
	}

	out, errOut, code = dockerIn(t, sock, strings.NewReader("piped in\n"), "run", "-i", "busybox", "cat")
	if code != 3 || out != "piped in\n" {
		t.Errorf("docker run -i: exit %d stdout %q stderr %q", code, out, errOut)
	}

	out, errOut, code = docker(t, sock, "run", "busybox", "nonexist")
	if code != 127 || !strings.Contains(errOut, `exec: "nonexist": executable file not found in $PATH`) {
		t.Errorf("docker run of a missing command: exit %d stdout %q stderr %q", code, out, errOut)
	}

	out, errOut, code = docker(t, sock, "run", "nosuchimage", "true")
	if code != 125 || !strings.Contains(errOut, "Unable to find image 'nosuchimage:latest' locally") ||
		!strings.Contains(errOut, "pull access denied for") {
		t.Errorf("docker run of a missing image: exit %d stdout %q stderr %q", code, out, errOut)
	}
}

func TestDockerCLILogsAndExec(t *testing.T) {
	fb := &fakeBackend{
		logs: func(ctx context.Context, id string, opts engine.LogsOptions) (<-chan engine.LogMessage, bool, error) {
			if id != "web" && id != fullID {
				return nil, false, noContainer(id)
			}
			ch := make(chan engine.LogMessage, 3)
			for _, m := range logLines() {
				ch <- m
			}
			close(ch)
			return ch, false, nil
		},
		// The CLI inspects first, for the tty and the state.
		inspect: func(ctx context.Context, id string, size bool) (*container.InspectResponse, error) {
			if id != "web" && id != fullID {
				return nil, noContainer(id)
			}
			return &container.InspectResponse{ID: fullID, Name: "/web", Config: &container.Config{Image: "busybox"},
				State: &container.State{Status: "running", Running: true}}, nil
		},
		execCreate: func(ctx context.Context, id string, req *container.ExecCreateRequest) (string, error) {
			return "exec1", nil
		},
		execTTY: func(ctx context.Context, id string) (bool, error) { return false, nil },
		execStart: func(ctx context.Context, id string, opts engine.ExecStartOptions) error {
			io.WriteString(opts.Stdout, "from exec\n")
			return nil
		},
		execInsp: func(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
			code := 5
			return &container.ExecInspectResponse{ID: id, ExitCode: &code}, nil
		},
	}
	sock := serve(t, fb)

	out, errOut, code := docker(t, sock, "logs", "-t", "web")
	if code != 0 || out != "2024-05-06T07:08:09.120000000Z out one\n2024-05-06T07:08:11.120000000Z out two\n" ||
		errOut != "2024-05-06T07:08:10.120000000Z err one\n" {
		t.Errorf("docker logs: exit %d stdout %q stderr %q", code, out, errOut)
	}
	_, errOut, code = docker(t, sock, "logs", "nosuch")
	if code != 1 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("docker logs nosuch: exit %d stderr %q", code, errOut)
	}

	out, errOut, code = docker(t, sock, "exec", "web", "echo")
	if code != 5 || out != "from exec\n" {
		t.Errorf("docker exec: exit %d stdout %q stderr %q", code, out, errOut)
	}
}
