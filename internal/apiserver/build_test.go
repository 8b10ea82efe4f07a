package apiserver

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// fakeBuilds records the request and answers with fn.
type fakeBuilds struct {
	got     *BuildRequest
	context []byte // what was read from req.Context
	fn      func(out io.Writer) (string, error)
}

func (f *fakeBuilds) PruneCache(ctx context.Context, all bool) (build.CachePruneReport, error) {
	if all {
		return build.CachePruneReport{CachesDeleted: []string{"k1", "k2"}}, nil
	}
	return build.CachePruneReport{CachesDeleted: []string{"k1"}}, nil
}

func (f *fakeBuilds) CacheUsage(ctx context.Context) ([]*build.CacheRecord, error) {
	return []*build.CacheRecord{{ID: "k1", Type: "regular", Description: "/bin/sh -c make", Size: 4096, Shared: true}}, nil
}

func (f *fakeBuilds) Build(ctx context.Context, req *BuildRequest, out io.Writer) (string, error) {
	f.got = req
	if req.Context != nil {
		f.context, _ = io.ReadAll(req.Context)
	}
	if f.fn == nil {
		return "sha256:" + strings.Repeat("ab", 32), nil
	}
	return f.fn(out)
}

type exitErr struct{ code int }

func (e exitErr) Error() string {
	return fmt.Sprintf("The command '/bin/sh -c exit %d' returned a non-zero code: %d", e.code, e.code)
}
func (e exitErr) ExitCode() int { return e.code }

// serveBuilds runs a Server with fb for builds on l (a unix socket in a
// temp dir when l is nil) and returns its address.
func serveBuilds(t *testing.T, fb BuildBackend, l net.Listener) net.Addr {
	t.Helper()
	if l == nil {
		var err error
		if l, err = net.Listen("unix", filepath.Join(t.TempDir(), "api.sock")); err != nil {
			t.Fatal(err)
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := New(&fakeBackend{}, Options{Logger: logger, Build: fb})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return")
		}
	})
	return l.Addr()
}

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(data))
	}
	tw.Close()
	return buf.Bytes()
}

// messages decodes a JSON stream.
func messages(t *testing.T, r io.Reader) []jsonstream.Message {
	t.Helper()
	var out []jsonstream.Message
	dec := json.NewDecoder(r)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("decode stream: %v", err)
		}
		out = append(out, m)
	}
}

func TestBuildOptionsAndStream(t *testing.T) {
	fb := &fakeBuilds{fn: func(out io.Writer) (string, error) {
		io.WriteString(out, "Step 1/1 : FROM busybox\n")
		io.WriteString(out, "Successfully built abababababab\n")
		return "sha256:" + strings.Repeat("ab", 32), nil
	}}
	addr := serveBuilds(t, fb, nil)
	api := newClient(t, addr.String(), "")
	ctxTar := tarOf(t, map[string]string{"Dockerfile": "FROM busybox\n"})
	val := "v"
	res, err := api.ImageBuild(context.Background(), bytes.NewReader(ctxTar), client.ImageBuildOptions{
		Tags: []string{"a:1", "b"}, Dockerfile: "sub/Dockerfile", Target: "t", NetworkMode: "none",
		NoCache: true, PullParent: true, Remove: true, ForceRemove: true,
		BuildArgs: map[string]*string{"K": &val, "NIL": nil}, Labels: map[string]string{"l": "x"},
		Version: build.BuilderV1,
	})
	if err != nil {
		t.Fatal(err)
	}
	msgs := messages(t, res.Body)
	res.Body.Close()

	g := fb.got
	if g == nil {
		t.Fatal("backend not called")
	}
	if !bytes.Equal(fb.context, ctxTar) {
		t.Errorf("context: got %d bytes, want the %d sent", len(fb.context), len(ctxTar))
	}
	if g.Dockerfile != "sub/Dockerfile" || g.Target != "t" || g.NetworkMode != "none" || !g.NoCache || !g.Pull || !g.Rm || !g.ForceRm || g.Quiet {
		t.Errorf("options: %+v", g)
	}
	if strings.Join(g.Tags, ",") != "a:1,b" {
		t.Errorf("tags: %v", g.Tags)
	}
	if v, ok := g.BuildArgs["NIL"]; !ok || v != nil || g.BuildArgs["K"] == nil || *g.BuildArgs["K"] != "v" {
		t.Errorf("build args: %v", g.BuildArgs)
	}
	if g.Labels["l"] != "x" {
		t.Errorf("labels: %v", g.Labels)
	}
	var stream []string
	var auxID string
	for _, m := range msgs {
		if m.Stream != "" {
			stream = append(stream, m.Stream)
		}
		if m.Aux != nil {
			var r build.Result
			json.Unmarshal(*m.Aux, &r)
			auxID = r.ID
		}
	}
	if want := []string{"Step 1/1 : FROM busybox\n", "Successfully built abababababab\n"}; strings.Join(stream, "|") != strings.Join(want, "|") {
		t.Errorf("stream: %q, want %q", stream, want)
	}
	if auxID != "sha256:"+strings.Repeat("ab", 32) {
		t.Errorf("aux ID: %q", auxID)
	}
}

func TestBuildDefaults(t *testing.T) {
	fb := &fakeBuilds{}
	addr := serveBuilds(t, fb, nil)
	resp, body := rawDo(t, addr.String(), "POST", "/v1.51/build", bytes.NewReader(tarOf(t, map[string]string{"Dockerfile": "FROM scratch\n"})))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if g := fb.got; !g.Rm || g.ForceRm || g.NoCache || g.Dockerfile != "" || g.ContextDir != "" {
		t.Errorf("defaults: %+v", g)
	}
}

func TestBuildErrors(t *testing.T) {
	cases := []struct {
		name     string
		err      error
		wantCode int
	}{
		{"failing RUN carries its exit code", exitErr{3}, 3},
		{"wrapped exit code", fmt.Errorf("step 2: %w", exitErr{42}), 42},
		{"other errors are 1", errdefs.Invalid("Dockerfile:3: unknown instruction: FOO"), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fb := &fakeBuilds{fn: func(out io.Writer) (string, error) {
				io.WriteString(out, "output before\n")
				return "", tc.err
			}}
			addr := serveBuilds(t, fb, nil)
			resp, body := rawDo(t, addr.String(), "POST", "/build", bytes.NewReader(tarOf(t, nil)))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			msgs := messages(t, bytes.NewReader(body))
			last := msgs[len(msgs)-1]
			if last.Error == nil || last.Error.Code != tc.wantCode || last.Error.Message != tc.err.Error() {
				t.Fatalf("last message %+v, want code %d message %q", last.Error, tc.wantCode, tc.err)
			}
			var legacy struct{ Error string }
			lines := bytes.Split(bytes.TrimSpace(body), []byte("\n"))
			json.Unmarshal(lines[len(lines)-1], &legacy)
			if legacy.Error != tc.err.Error() {
				t.Errorf("legacy error field %q", legacy.Error)
			}
			if msgs[0].Stream != "output before\n" {
				t.Errorf("output before the error: %+v", msgs[0])
			}
		})
	}
}

func TestBuildRefusals(t *testing.T) {
	addr := serveBuilds(t, &fakeBuilds{}, nil)
	cases := []struct {
		query  string
		status int
		msg    string
	}{
		{"version=2", 501, "DOCKER_BUILDKIT=0"},
		{"t=UPPER:x", 400, "invalid reference format"},
		{"t=" + url.QueryEscape("busybox@sha256:"+strings.Repeat("a", 64)), 400, "digest"},
		{"buildargs=notjson", 400, "invalid buildargs"},
		{"squash=1", 400, "experimental"},
	}
	for _, tc := range cases {
		resp, body := rawDo(t, addr.String(), "POST", "/build?"+tc.query, bytes.NewReader(nil))
		if resp.StatusCode != tc.status || !strings.Contains(errMessage(t, body), tc.msg) {
			t.Errorf("%s: %d %s, want %d containing %q", tc.query, resp.StatusCode, body, tc.status, tc.msg)
		}
	}
	// Without a build backend the route says so.
	sock := serve(t, &fakeBackend{})
	if resp, body := rawDo(t, sock, "POST", "/build", bytes.NewReader(nil)); resp.StatusCode != 501 {
		t.Errorf("no builder: %d %s", resp.StatusCode, body)
	}
}

func postFastPath(t *testing.T, c *http.Client, base string, hdr map[string]string, body string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/build?dockerfile=Dockerfile.x", strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func TestBuildFastPath(t *testing.T) {
	fb := &fakeBuilds{}
	addr := serveBuilds(t, fb, nil)
	c := rawClient(addr.String())

	dir := t.TempDir()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	id := fmt.Sprintf("%d:%d", st.Dev, st.Ino)

	resp, body := postFastPath(t, c, "http://docker", map[string]string{HeaderContextDir: dir + "/", HeaderContextID: id}, "")
	if resp.StatusCode != 200 || fb.got.ContextDir != dir || fb.got.Context != nil || fb.got.DockerfileContent != nil || fb.got.Dockerfile != "Dockerfile.x" {
		t.Fatalf("fast path: %d %s %+v", resp.StatusCode, body, fb.got)
	}
	resp, body = postFastPath(t, c, "http://docker", map[string]string{HeaderContextDir: dir, HeaderDockerfile: "body"}, "FROM busybox\n")
	if resp.StatusCode != 200 || fb.got.ContextDir != dir || string(fb.got.DockerfileContent) != "FROM busybox\n" {
		t.Fatalf("fast path with a Dockerfile: %d %s %+v", resp.StatusCode, body, fb.got)
	}
	for _, tc := range []struct {
		name   string
		hdr    map[string]string
		status int
	}{
		{"relative dir", map[string]string{HeaderContextDir: "relative/dir"}, 400},
		{"missing dir", map[string]string{HeaderContextDir: filepath.Join(dir, "missing")}, 409},
		{"another directory than the client's", map[string]string{HeaderContextDir: dir, HeaderContextID: "1:2"}, 409},
	} {
		if resp, body := postFastPath(t, c, "http://docker", tc.hdr, ""); resp.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, resp.StatusCode, body, tc.status)
		}
	}

	// Over TCP the daemon cannot trust a path: refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	taddr := serveBuilds(t, &fakeBuilds{}, l)
	resp, body = postFastPath(t, http.DefaultClient, "http://"+taddr.String(), map[string]string{HeaderContextDir: dir}, "")
	if resp.StatusCode != 403 || !strings.Contains(errMessage(t, body), "unix socket") {
		t.Errorf("fast path over tcp: %d %s", resp.StatusCode, body)
	}
}

func TestBuildQuiet(t *testing.T) {
	id := "sha256:" + strings.Repeat("cd", 32)
	fb := &fakeBuilds{fn: func(out io.Writer) (string, error) {
		io.WriteString(out, "Step 1/1 : FROM busybox\n")
		return id, nil
	}}
	addr := serveBuilds(t, fb, nil)
	_, body := rawDo(t, addr.String(), "POST", "/build?q=1", bytes.NewReader(tarOf(t, nil)))
	msgs := messages(t, bytes.NewReader(body))
	if len(msgs) != 1 || msgs[0].Stream != id+"\n" {
		t.Errorf("quiet success: %s", body)
	}

	fb.fn = func(out io.Writer) (string, error) {
		io.WriteString(out, "Step 1/2 : RUN false\n")
		return "", exitErr{1}
	}
	_, body = rawDo(t, addr.String(), "POST", "/build?q=1", bytes.NewReader(tarOf(t, nil)))
	msgs = messages(t, bytes.NewReader(body))
	if len(msgs) != 2 || msgs[0].Stream != "Step 1/2 : RUN false\n" || msgs[1].Error == nil {
		t.Errorf("quiet failure shows the kept output then the error: %s", body)
	}
}

func TestBuildRemote(t *testing.T) {
	ctxTar := tarOf(t, map[string]string{"Dockerfile": "FROM busybox\n"})
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ctx.tar":
			w.Write(ctxTar)
		case "/Dockerfile":
			io.WriteString(w, "FROM busybox\nRUN true\n")
		default:
			http.NotFound(w, r)
		}
	}))
	defer web.Close()
	fb := &fakeBuilds{}
	addr := serveBuilds(t, fb, nil)

	resp, body := rawDo(t, addr.String(), "POST", "/build?remote="+url.QueryEscape(web.URL+"/ctx.tar"), nil)
	if resp.StatusCode != 200 || !bytes.Equal(fb.context, ctxTar) || fb.got.DockerfileContent != nil {
		t.Fatalf("remote tar: %d %s", resp.StatusCode, body)
	}
	resp, body = rawDo(t, addr.String(), "POST", "/build?remote="+url.QueryEscape(web.URL+"/Dockerfile"), nil)
	if resp.StatusCode != 200 || string(fb.got.DockerfileContent) != "FROM busybox\nRUN true\n" {
		t.Fatalf("remote Dockerfile: %d %s", resp.StatusCode, body)
	}
	if _, err := tar.NewReader(bytes.NewReader(fb.context)).Next(); !errors.Is(err, io.EOF) {
		t.Errorf("a remote Dockerfile comes with an empty context, got %d bytes (%v)", len(fb.context), err)
	}
	resp, body = rawDo(t, addr.String(), "POST", "/build?remote="+url.QueryEscape(web.URL+"/missing"), nil)
	if resp.StatusCode != 503 || !strings.Contains(errMessage(t, body), "404") {
		t.Errorf("missing remote: %d %s", resp.StatusCode, body)
	}
	resp, body = rawDo(t, addr.String(), "POST", "/build?remote="+url.QueryEscape("git@github.com:x/y.git"), nil)
	if resp.StatusCode != 501 {
		t.Errorf("git remote: %d %s", resp.StatusCode, body)
	}
}
