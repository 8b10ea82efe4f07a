package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// serve runs a Server for fb on a unix socket in a temp dir and returns the
// socket path. Cleanup stops it and checks that Serve returned cleanly.
func serve(t *testing.T, fb Backend) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := New(fb, Options{Debug: true, Logger: logger})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return sock
}

// newClient is the official client on sock; version "" negotiates.
func newClient(t *testing.T, sock, version string) *client.Client {
	t.Helper()
	opts := []client.Opt{client.WithHost("unix://" + sock)}
	if version != "" {
		opts = append(opts, client.WithAPIVersion(version))
	}
	c, err := client.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// rawClient speaks plain HTTP on sock, to see statuses and headers as sent.
func rawClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func rawDo(t *testing.T, sock, method, path string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://docker"+path, body)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := rawClient(sock).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errMessage(t *testing.T, b []byte) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return m.Message
}

func TestVersionPrefix(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	cases := []struct {
		path   string
		status int
		msg    string
	}{
		{"/version", 200, ""},
		{"/v1.24/version", 200, ""},
		{"/v1.41/version", 200, ""},
		{"/v1.51/version", 200, ""},
		{"/v1.52/version", 400, "client version 1.52 is too new. Maximum supported API version is 1.51"},
		{"/v1.99/version", 400, "client version 1.99 is too new. Maximum supported API version is 1.51"},
		{"/v2.0/version", 400, "client version 2.0 is too new. Maximum supported API version is 1.51"},
		{"/v1.12/version", 400, "client version 1.12 is too old. Minimum supported API version is 1.24, please upgrade your client to a newer version"},
		{"/v1/version", 400, `malformed API version "1": must be MAJOR.MINOR`},
		{"/v1.x/version", 400, `malformed API version "1.x": must be MAJOR.MINOR`},
		{"/v1.41/nonexistent", 404, "page not found"},
		{"/nonexistent", 404, "page not found"},
		{"/v1.41", 404, "page not found"},
	}
	for _, tc := range cases {
		resp, body := rawDo(t, sock, "GET", tc.path, nil)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.path, resp.StatusCode, tc.status, body)
			continue
		}
		if resp.Header.Get("Api-Version") != "1.51" {
			t.Errorf("%s: Api-Version %q", tc.path, resp.Header.Get("Api-Version"))
		}
		if tc.msg != "" {
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("%s: error Content-Type %q", tc.path, ct)
			}
			if got := errMessage(t, body); got != tc.msg {
				t.Errorf("%s: message %q, want %q", tc.path, got, tc.msg)
			}
		}
	}
}

func TestVersionNegotiation(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	ctx := context.Background()

	c := newClient(t, sock, "")
	v, err := c.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c.ClientVersion() != APIVersion {
		t.Errorf("negotiated %s, want %s", c.ClientVersion(), APIVersion)
	}
	if v.Version != "test" || v.APIVersion != APIVersion || v.MinAPIVersion != MinAPIVersion || v.Os != "linux" {
		t.Errorf("version %+v", v)
	}

	old := newClient(t, sock, "1.41")
	if _, err := old.ServerVersion(ctx, client.ServerVersionOptions{}); err != nil {
		t.Fatalf("client at 1.41: %v", err)
	}
	if old.ClientVersion() != "1.41" {
		t.Errorf("fixed client moved to %s", old.ClientVersion())
	}
	if _, err := old.Info(ctx, client.InfoOptions{}); err != nil {
		t.Fatalf("info at 1.41: %v", err)
	}

	tooNew := newClient(t, sock, "1.56")
	_, err = tooNew.ServerVersion(ctx, client.ServerVersionOptions{})
	if err == nil || !strings.Contains(err.Error(), "client version 1.56 is too new. Maximum supported API version is 1.51") || !cerrdefs.IsInvalidArgument(err) {
		t.Errorf("client at 1.56: %v", err)
	}
}

func TestPing(t *testing.T) {
	sock := serve(t, &fakeBackend{})
	for _, method := range []string{"GET", "HEAD"} {
		resp, body := rawDo(t, sock, method, "/_ping", nil)
		if resp.StatusCode != 200 {
			t.Fatalf("%s /_ping: %d", method, resp.StatusCode)
		}
		want := map[string]string{
			"Api-Version":         "1.51",
			"Server":              "skiff/test (linux)",
			"Docker-Experimental": "false",
			"Ostype":              "linux",
			"Builder-Version":     "1",
			"Swarm":               "inactive",
			"Cache-Control":       "no-cache, no-store, must-revalidate",
		}
		for k, v := range want {
			if got := resp.Header.Get(k); got != v {
				t.Errorf("%s /_ping: %s = %q, want %q", method, k, got, v)
			}
		}
		wantBody := "OK"
		if method == "HEAD" {
			wantBody = ""
		}
		if string(body) != wantBody {
			t.Errorf("%s /_ping body %q", method, body)
		}
	}

	c := newClient(t, sock, "")
	p, err := c.Ping(context.Background(), client.PingOptions{NegotiateAPIVersion: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != "1.51" || p.OSType != "linux" || p.Experimental || p.BuilderVersion != "1" || p.SwarmStatus == nil || p.SwarmStatus.NodeState != "inactive" {
		t.Errorf("ping %+v", p)
	}
}

func TestContainerCreateInspectList(t *testing.T) {
	var mu sync.Mutex
	var gotName string
	var gotReq *container.CreateRequest
	var gotList engine.ListOptions
	var gotSize bool
	fb := &fakeBackend{
		create: func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
			mu.Lock()
			defer mu.Unlock()
			gotName, gotReq = name, req
			return container.CreateResponse{ID: "c0ffee"}, nil
		},
		inspect: func(ctx context.Context, id string, size bool) (*container.InspectResponse, error) {
			if id != "web" {
				return nil, noContainer(id)
			}
			gotSize = size
			return &container.InspectResponse{ID: "c0ffee", Name: "/web", Config: &container.Config{Image: "busybox"}}, nil
		},
		list: func(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error) {
			gotList = opts
			return []container.Summary{{ID: "c0ffee", Names: []string{"/web"}, Image: "busybox", State: "running"}}, nil
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx := context.Background()

	res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name:       "web",
		Config:     &container.Config{Image: "busybox", Cmd: []string{"echo", "hi"}, Labels: map[string]string{"a": "b"}},
		HostConfig: &container.HostConfig{AutoRemove: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ID != "c0ffee" {
		t.Errorf("create result %+v", res)
	}
	if gotName != "web" || gotReq == nil || gotReq.Image != "busybox" || !reflect.DeepEqual(gotReq.Cmd, []string{"echo", "hi"}) ||
		gotReq.Labels["a"] != "b" || gotReq.HostConfig == nil || !gotReq.HostConfig.AutoRemove {
		t.Errorf("backend got name %q req %+v", gotName, gotReq)
	}

	// The raw reply: 201, with Warnings as a list.
	resp, body := rawDo(t, sock, "POST", "/v1.51/containers/create?name=db", strings.NewReader(`{"Image":"busybox"}`))
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"Id":"c0ffee"`) || !strings.Contains(string(body), `"Warnings":[]`) {
		t.Errorf("raw create: %d %s", resp.StatusCode, body)
	}
	if gotReq.HostConfig == nil {
		t.Errorf("missing HostConfig not defaulted")
	}

	for _, bad := range []string{"-x", "a", "no/slash", "sp ace", "/"} {
		_, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: bad, Config: &container.Config{Image: "busybox"}})
		want := "Invalid container name (" + bad + "), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
		if err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	for _, good := range []string{"/web", "web.1", "a_b-c", "9z"} {
		if _, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: good, Config: &container.Config{Image: "busybox"}}); err != nil {
			t.Errorf("name %q: %v", good, err)
		}
	}

	// Bad bodies are 400s.
	for _, body := range []string{`{"Image":`, `[1,2]`, `{"Image":1}`} {
		resp, b := rawDo(t, sock, "POST", "/containers/create", strings.NewReader(body))
		if resp.StatusCode != 400 || !strings.HasPrefix(errMessage(t, b), "invalid JSON") {
			t.Errorf("body %q: %d %s", body, resp.StatusCode, b)
		}
	}
	resp, b := rawDo(t, sock, "POST", "/containers/create", nil)
	if resp.StatusCode != 400 || errMessage(t, b) != "config cannot be empty in order to create a container" {
		t.Errorf("empty create: %d %s", resp.StatusCode, b)
	}

	ins, err := c.ContainerInspect(ctx, "web", client.ContainerInspectOptions{Size: true})
	if err != nil {
		t.Fatal(err)
	}
	if ins.Container.ID != "c0ffee" || ins.Container.Name != "/web" || !gotSize {
		t.Errorf("inspect %+v size %v", ins.Container, gotSize)
	}

	lr, err := c.ContainerList(ctx, client.ContainerListOptions{
		All: true, Limit: 3,
		Filters: make(client.Filters).Add("status", "running").Add("label", "a=b", "c"),
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lr.Items) != 1 || lr.Items[0].Names[0] != "/web" {
		t.Errorf("list %+v", lr.Items)
	}
	if !gotList.All || gotList.Limit != 3 || !reflect.DeepEqual(gotList.Filters["status"], []string{"running"}) || len(gotList.Filters["label"]) != 2 {
		t.Errorf("list options %+v", gotList)
	}

	// The legacy filter form reaches the backend too.
	if resp, b := rawDo(t, sock, "GET", `/containers/json?filters={"name":["web"]}`, nil); resp.StatusCode != 200 {
		t.Errorf("legacy filters: %d %s", resp.StatusCode, b)
	}
	if !reflect.DeepEqual(gotList.Filters, filters.Args{"name": {"web"}}) {
		t.Errorf("legacy filters reached backend as %v", gotList.Filters)
	}
	if resp, b := rawDo(t, sock, "GET", `/containers/json?filters=garbage`, nil); resp.StatusCode != 400 {
		t.Errorf("bad filters: %d %s", resp.StatusCode, b)
	}
	if resp, b := rawDo(t, sock, "GET", `/containers/json?limit=x`, nil); resp.StatusCode != 400 {
		t.Errorf("bad limit: %d %s", resp.StatusCode, b)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	var stopT *int
	var stopSig string
	fb := &fakeBackend{
		start: func(ctx context.Context, id string) error {
			switch id {
			case "running":
				return errdefs.NotModified("container already started")
			case "nocmd":
				return errdefs.CommandNotFound(`failed to create task for container: exec: "nonexist": executable file not found in $PATH: unknown`)
			case "noexec":
				return errdefs.CannotInvoke(`exec: "/etc": permission denied`)
			case "boom":
				return errors.New("disk on fire")
			case "nyi":
				return errdefs.NotImplemented("not yet")
			case "busy":
				return errdefs.Unavailable("engine busy")
			case "denied":
				return errdefs.Forbidden("forbidden")
			}
			return noContainer(id)
		},
		stop: func(ctx context.Context, id string, timeout *int, signal string) error {
			stopT, stopSig = timeout, signal
			if id == "stopped" {
				return errdefs.NotModified("not running")
			}
			return nil
		},
		remove: func(ctx context.Context, id string, force, v bool) error {
			return errdefs.Conflict("You cannot remove a running container %s. Stop the container before attempting removal or force remove", id)
		},
		kill: func(ctx context.Context, id, signal string) error {
			return errdefs.Conflict("container %s is not running", id)
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")

	type check func(error) bool
	cases := []struct {
		id     string
		status int
		is     check
		msg    string
	}{
		{"nosuch", 404, cerrdefs.IsNotFound, "No such container: nosuch"},
		{"running", 304, nil, ""},
		{"nocmd", 400, cerrdefs.IsInvalidArgument, `exec: "nonexist": executable file not found in $PATH`},
		{"noexec", 400, cerrdefs.IsInvalidArgument, "permission denied"},
		{"boom", 500, cerrdefs.IsInternal, "disk on fire"},
		{"nyi", 501, cerrdefs.IsNotImplemented, "not yet"},
		{"busy", 503, cerrdefs.IsUnavailable, "engine busy"},
		{"denied", 403, cerrdefs.IsPermissionDenied, "forbidden"},
	}
	for _, tc := range cases {
		resp, _ := rawDo(t, sock, "POST", "/v1.51/containers/"+tc.id+"/start", nil)
		if resp.StatusCode != tc.status {
			t.Errorf("start %s: status %d, want %d", tc.id, resp.StatusCode, tc.status)
		}
		_, err := c.ContainerStart(ctx, tc.id, client.ContainerStartOptions{})
		if tc.is == nil {
			if err != nil {
				t.Errorf("start %s: %v, want success (304)", tc.id, err)
			}
			continue
		}
		if err == nil || !tc.is(err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("start %s: %v", tc.id, err)
		}
	}

	if _, err := c.ContainerStop(ctx, "stopped", client.ContainerStopOptions{}); err != nil {
		t.Errorf("stop of a stopped container: %v", err)
	}
	ten := 10
	if _, err := c.ContainerStop(ctx, "web", client.ContainerStopOptions{Timeout: &ten, Signal: "SIGINT"}); err != nil || stopT == nil || *stopT != 10 || stopSig != "SIGINT" {
		t.Errorf("stop options: %v t=%v sig=%q", err, stopT, stopSig)
	}
	if _, err := c.ContainerStop(ctx, "web", client.ContainerStopOptions{}); err != nil || stopT != nil {
		t.Errorf("stop without timeout: %v t=%v", err, stopT)
	}
	_, err := c.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{})
	if err == nil || !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "You cannot remove a running container web") {
		t.Errorf("remove: %v", err)
	}
	_, err = c.ContainerKill(ctx, "web", client.ContainerKillOptions{})
	if err == nil || !cerrdefs.IsConflict(err) || !strings.Contains(err.Error(), "cannot kill container: web: container web is not running") {
		t.Errorf("kill: %v", err)
	}
	// A HEAD error has headers and no body.
	resp, body := rawDo(t, sock, "HEAD", "/nonexistent", nil)
	if resp.StatusCode != 404 || len(body) != 0 {
		t.Errorf("HEAD 404: %d %q", resp.StatusCode, body)
	}
}

func TestWaitFlushesHeaderFirst(t *testing.T) {
	result := make(chan container.WaitResponse, 1)
	var gotCond string
	fb := &fakeBackend{
		wait: func(ctx context.Context, id, cond string) (<-chan container.WaitResponse, error) {
			if id != "web" {
				return nil, noContainer(id)
			}
			gotCond = cond
			return result, nil
		},
	}
	sock := serve(t, fb)

	conn, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "POST /v1.51/containers/web/wait?condition=next-exit HTTP/1.1\r\nHost: docker\r\nContent-Length: 0\r\n\r\n")
	br := bufio.NewReader(conn)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no header before the result: %v", err)
	}
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("wait header: %d %v", resp.StatusCode, resp.Header)
	}
	if gotCond != "next-exit" {
		t.Errorf("condition %q", gotCond)
	}
	result <- container.WaitResponse{StatusCode: 3}
	var wr container.WaitResponse
	if err := json.NewDecoder(resp.Body).Decode(&wr); err != nil || wr.StatusCode != 3 || wr.Error != nil {
		t.Errorf("wait body: %+v %v", wr, err)
	}

	// Through the client, with an error during the wait.
	c := newClient(t, sock, "")
	wres := c.ContainerWait(context.Background(), "web", client.ContainerWaitOptions{})
	result <- container.WaitResponse{StatusCode: 137, Error: &container.WaitExitError{Message: "removal failed"}}
	select {
	case r := <-wres.Result:
		if r.StatusCode != 137 || r.Error == nil || r.Error.Message != "removal failed" {
			t.Errorf("wait result %+v", r)
		}
	case err := <-wres.Error:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("wait did not return")
	}
	if gotCond != "not-running" {
		t.Errorf("default condition %q", gotCond)
	}

	wres = c.ContainerWait(context.Background(), "nosuch", client.ContainerWaitOptions{})
	if err := <-wres.Error; !cerrdefs.IsNotFound(err) {
		t.Errorf("wait on missing container: %v", err)
	}
	if resp, b := rawDo(t, sock, "POST", "/containers/web/wait?condition=bogus", nil); resp.StatusCode != 400 {
		t.Errorf("bad condition: %d %s", resp.StatusCode, b)
	}
}

func logLines() []engine.LogMessage {
	t0 := time.Date(2024, 5, 6, 7, 8, 9, 120000000, time.UTC)
	return []engine.LogMessage{
		{Stream: "stdout", Line: []byte("out one\n"), Time: t0},
		{Stream: "stderr", Line: []byte("err one\n"), Time: t0.Add(time.Second)},
		{Stream: "stdout", Line: []byte("out two\n"), Time: t0.Add(2 * time.Second)},
	}
}

func TestLogs(t *testing.T) {
	var got engine.LogsOptions
	tty := false
	fb := &fakeBackend{
		logs: func(ctx context.Context, id string, opts engine.LogsOptions) (<-chan engine.LogMessage, bool, error) {
			if id != "web" {
				return nil, false, noContainer(id)
			}
			got = opts
			ch := make(chan engine.LogMessage, 10)
			for _, m := range logLines() {
				ch <- m
			}
			close(ch)
			return ch, tty, nil
		},
	}
	sock := serve(t, fb)
	ctx := context.Background()
	c := newClient(t, sock, "")

	rc, err := c.ContainerLogs(ctx, "web", client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: "5", Since: "1700000000.5", Until: "2030-01-02T03:04:05Z"})
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &errb, rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if out.String() != "out one\nout two\n" || errb.String() != "err one\n" {
		t.Errorf("demuxed stdout %q stderr %q", out.String(), errb.String())
	}
	if got.Tail != 5 || !got.Since.Equal(time.Unix(1700000000, 500000000)) || !got.Until.Equal(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)) || !got.Stdout || !got.Stderr || got.Follow {
		t.Errorf("options %+v", got)
	}

	// Only stderr, timestamps.
	rc, err = c.ContainerLogs(ctx, "web", client.ContainerLogsOptions{ShowStderr: true, Timestamps: true})
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	stdcopy.StdCopy(&out, &errb, rc)
	rc.Close()
	if out.Len() != 0 || errb.String() != "2024-05-06T07:08:10.120000000Z err one\n" {
		t.Errorf("timestamps: stdout %q stderr %q", out.String(), errb.String())
	}
	if got.Tail != -1 || !got.Timestamps {
		t.Errorf("options %+v", got)
	}

	// Media types: multiplexed from 1.42, raw before (still framed), raw with a tty.
	resp, body := rawDo(t, sock, "GET", "/v1.51/containers/web/logs?stdout=1&tail=all", nil)
	if ct := resp.Header.Get("Content-Type"); ct != mediaMultiplexed {
		t.Errorf("1.51 Content-Type %q", ct)
	}
	if want := "\x01\x00\x00\x00\x00\x00\x00\x08out one\n"; !strings.HasPrefix(string(body), want) {
		t.Errorf("frame %q", body)
	}
	resp, body = rawDo(t, sock, "GET", "/v1.41/containers/web/logs?stdout=1", nil)
	if ct := resp.Header.Get("Content-Type"); ct != mediaRaw || body[0] != 1 {
		t.Errorf("1.41 Content-Type %q body %q", ct, body)
	}
	tty = true
	resp, body = rawDo(t, sock, "GET", "/v1.51/containers/web/logs?stdout=1&stderr=1", nil)
	if ct := resp.Header.Get("Content-Type"); ct != mediaRaw || string(body) != "out one\nerr one\nout two\n" {
		t.Errorf("tty: Content-Type %q body %q", ct, body)
	}

	for _, q := range []string{"", "stdout=1&since=yesterday", "stdout=1&until=x1"} {
		if resp, b := rawDo(t, sock, "GET", "/containers/web/logs?"+q, nil); resp.StatusCode != 400 {
			t.Errorf("logs?%s: %d %s", q, resp.StatusCode, b)
		}
	}
	if resp, _ := rawDo(t, sock, "GET", "/containers/nosuch/logs?stdout=1", nil); resp.StatusCode != 404 {
		t.Errorf("logs of a missing container: %d", resp.StatusCode)
	}
}

func TestLogsFollowStreamsLive(t *testing.T) {
	live := make(chan engine.LogMessage)
	ended := make(chan struct{})
	fb := &fakeBackend{
		logs: func(ctx context.Context, id string, opts engine.LogsOptions) (<-chan engine.LogMessage, bool, error) {
			go func() {
				<-ctx.Done()
				close(ended)
			}()
			return live, false, nil
		},
	}
	sock := serve(t, fb)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rc, err := newClient(t, sock, "").ContainerLogs(ctx, "web", client.ContainerLogsOptions{ShowStdout: true, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	live <- engine.LogMessage{Stream: "stdout", Line: []byte("now\n"), Time: time.Now()}
	var hdr [8]byte
	done := make(chan error, 1)
	go func() {
		if _, err := io.ReadFull(rc, hdr[:]); err != nil {
			done <- err
			return
		}
		line := make([]byte, 4)
		_, err := io.ReadFull(rc, line)
		if err == nil && string(line) != "now\n" {
			err = errors.New("got " + string(line))
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a followed line was not flushed")
	}
	cancel()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the backend's context did not end when the client left")
	}
}

// Cancelling Serve's context ends long polls at once instead of waiting for
// the shutdown grace period.
func TestServeShutdownEndsStreams(t *testing.T) {
	fb := &fakeBackend{
		wait: func(ctx context.Context, id, cond string) (<-chan container.WaitResponse, error) {
			return make(chan container.WaitResponse), nil // never exits
		},
		attachTTY: func(ctx context.Context, id string) (bool, error) { return false, nil },
		attach: func(ctx context.Context, id string, opts engine.AttachOptions) error {
			<-ctx.Done()
			return ctx.Err()
		},
	}
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(fb, Options{}).Serve(ctx, l) }()

	c := newClient(t, sock, "")
	wres := c.ContainerWait(context.Background(), "web", client.ContainerWaitOptions{})
	att, err := c.ContainerAttach(context.Background(), "web", client.ContainerAttachOptions{Stream: true, Stdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %v", d)
	}
	select {
	case <-wres.Result:
		t.Error("wait returned a result")
	case <-wres.Error:
	case <-time.After(5 * time.Second):
		t.Error("wait still open after shutdown")
	}
	att.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.ReadAll(att.Reader); err != nil {
		t.Errorf("attach stream after shutdown: %v", err)
	}
}

func TestPruneRenameRestart(t *testing.T) {
	var gotPrune filters.Args
	var gotRename [2]string
	var gotRestartT *int
	var gotRemove []bool
	fb := &fakeBackend{
		prune: func(ctx context.Context, f filters.Args) (container.PruneReport, error) {
			gotPrune = f
			return container.PruneReport{ContainersDeleted: []string{"a", "b"}, SpaceReclaimed: 42}, nil
		},
		rename: func(ctx context.Context, id, name string) error {
			gotRename = [2]string{id, name}
			if name == "taken" {
				return errdefs.Conflict(`Conflict. The container name "/taken" is already in use`)
			}
			return nil
		},
		restart: func(ctx context.Context, id string, timeout *int, signal string) error {
			gotRestartT = timeout
			return nil
		},
		remove: func(ctx context.Context, id string, force, v bool) error {
			gotRemove = []bool{force, v}
			return nil
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx := context.Background()

	pr, err := c.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: make(client.Filters).Add("until", "24h")})
	if err != nil || len(pr.Report.ContainersDeleted) != 2 || pr.Report.SpaceReclaimed != 42 {
		t.Errorf("prune: %+v %v", pr, err)
	}
	if !reflect.DeepEqual(gotPrune, filters.Args{"until": {"24h"}}) {
		t.Errorf("prune filters %v", gotPrune)
	}

	if _, err := c.ContainerRename(ctx, "web", client.ContainerRenameOptions{NewName: "web2"}); err != nil || gotRename != [2]string{"web", "web2"} {
		t.Errorf("rename: %v %v", err, gotRename)
	}
	if _, err := c.ContainerRename(ctx, "web", client.ContainerRenameOptions{NewName: "taken"}); !cerrdefs.IsConflict(err) {
		t.Errorf("rename to a taken name: %v", err)
	}
	if resp, b := rawDo(t, sock, "POST", "/containers/web/rename?name=bad%20name", nil); resp.StatusCode != 400 ||
		errMessage(t, b) != "Invalid container name (bad name), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed" {
		t.Errorf("rename to a bad name: %d %s", resp.StatusCode, b)
	}
	if resp, _ := rawDo(t, sock, "POST", "/containers/web/rename", nil); resp.StatusCode != 400 {
		t.Errorf("rename without a name: %d", resp.StatusCode)
	}

	five := 5
	if _, err := c.ContainerRestart(ctx, "web", client.ContainerRestartOptions{Timeout: &five}); err != nil || gotRestartT == nil || *gotRestartT != 5 {
		t.Errorf("restart: %v %v", err, gotRestartT)
	}
	if resp, _ := rawDo(t, sock, "POST", "/containers/web/restart?t=soon", nil); resp.StatusCode != 400 {
		t.Errorf("restart with a bad timeout: %d", resp.StatusCode)
	}

	if _, err := c.ContainerRemove(ctx, "web", client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); err != nil || !reflect.DeepEqual(gotRemove, []bool{true, true}) {
		t.Errorf("remove: %v %v", err, gotRemove)
	}
	if resp, _ := rawDo(t, sock, "DELETE", "/containers/web?link=1", nil); resp.StatusCode != 501 {
		t.Errorf("remove link: %d", resp.StatusCode)
	}
}
