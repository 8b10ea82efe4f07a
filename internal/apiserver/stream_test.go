package apiserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// readFrame reads one stdcopy frame.
func readFrame(t *testing.T, r io.Reader) (byte, string) {
	t.Helper()
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("frame header: %v", err)
	}
	p := make([]byte, binary.BigEndian.Uint32(hdr[4:]))
	if _, err := io.ReadFull(r, p); err != nil {
		t.Fatalf("frame payload: %v", err)
	}
	return hdr[0], string(p)
}

func withTimeout(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: timed out", what)
	}
}

func TestAttach(t *testing.T) {
	type record struct {
		opts        engine.AttachOptions
		stdinCtxErr error // the context after stdin's EOF: a half-close is no hang-up
	}
	recs := make(chan record, 4)
	hungUp := make(chan struct{})
	fb := &fakeBackend{
		attachTTY: func(ctx context.Context, id string) (bool, error) {
			switch id {
			case "web", "hang":
				return false, nil
			case "tty":
				return true, nil
			}
			return false, noContainer(id)
		},
		attach: func(ctx context.Context, id string, opts engine.AttachOptions) error {
			if id == "hang" {
				<-ctx.Done()
				close(hungUp)
				return ctx.Err()
			}
			io.WriteString(opts.Stderr, "ready\n")
			var rec record
			rec.opts = opts
			if opts.Stdin != nil {
				data, err := io.ReadAll(opts.Stdin)
				if err != nil {
					return err
				}
				rec.stdinCtxErr = ctx.Err()
				opts.Stdout.Write(bytes.ToUpper(data))
			}
			recs <- rec
			return nil
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx := context.Background()

	t.Run("multiplexed", func(t *testing.T) {
		res, err := c.ContainerAttach(ctx, "web", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true, DetachKeys: "ctrl-x"})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if mt, ok := res.MediaType(); !ok || mt != mediaMultiplexed {
			t.Errorf("media type %q", mt)
		}
		// Output reaches the client while the backend still waits for stdin.
		withTimeout(t, "first frame", func() {
			if s, p := readFrame(t, res.Reader); s != 2 || p != "ready\n" {
				t.Errorf("first frame %d %q", s, p)
			}
		})
		io.WriteString(res.Conn, "hello\n")
		res.CloseWrite()
		var out, errb bytes.Buffer
		withTimeout(t, "rest of stream", func() {
			if _, err := stdcopy.StdCopy(&out, &errb, res.Reader); err != nil {
				t.Error(err)
			}
		})
		if out.String() != "HELLO\n" || errb.Len() != 0 {
			t.Errorf("stdout %q stderr %q", out.String(), errb.String())
		}
		rec := <-recs
		if !rec.opts.Stream || rec.opts.Logs || rec.opts.DetachKeys != "ctrl-x" || rec.stdinCtxErr != nil {
			t.Errorf("backend saw %+v, ctx after stdin EOF: %v", rec.opts, rec.stdinCtxErr)
		}
	})

	t.Run("no stdin", func(t *testing.T) {
		res, err := c.ContainerAttach(ctx, "web", client.ContainerAttachOptions{Stream: true, Stdout: true, Stderr: true, Logs: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		res.CloseWrite()
		var out, errb bytes.Buffer
		withTimeout(t, "stream", func() { stdcopy.StdCopy(&out, &errb, res.Reader) })
		if errb.String() != "ready\n" {
			t.Errorf("stderr %q", errb.String())
		}
		rec := <-recs
		if rec.opts.Stdin != nil || !rec.opts.Logs {
			t.Errorf("backend saw %+v", rec.opts)
		}
	})

	t.Run("tty", func(t *testing.T) {
		res, err := c.ContainerAttach(ctx, "tty", client.ContainerAttachOptions{Stream: true, Stdin: true, Stdout: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if mt, _ := res.MediaType(); mt != mediaRaw {
			t.Errorf("media type %q", mt)
		}
		io.WriteString(res.Conn, "abc")
		res.CloseWrite()
		var all []byte
		withTimeout(t, "stream", func() { all, _ = io.ReadAll(res.Reader) })
		if string(all) != "ready\nABC" {
			t.Errorf("raw stream %q", all)
		}
		<-recs
	})

	t.Run("without upgrade", func(t *testing.T) {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "POST /v1.51/containers/web/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\nHost: docker\r\n\r\n")
		conn.(*net.UnixConn).CloseWrite()
		var all []byte
		withTimeout(t, "stream", func() { all, _ = io.ReadAll(conn) })
		s := string(all)
		if !strings.HasPrefix(s, "HTTP/1.1 200 OK\r\n") || !strings.Contains(s, "Content-Type: "+mediaRaw+"\r\n") ||
			!strings.Contains(s, "Api-Version: 1.51\r\n") || !strings.HasSuffix(s, "\r\n\r\n\x02\x00\x00\x00\x00\x00\x00\x06ready\n") {
			t.Errorf("reply %q", s)
		}
		<-recs
	})

	t.Run("old API is raw-typed", func(t *testing.T) {
		old := newClient(t, sock, "1.41")
		res, err := old.ContainerAttach(ctx, "web", client.ContainerAttachOptions{Stream: true, Stderr: true})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Close()
		if mt, _ := res.MediaType(); mt != mediaRaw {
			t.Errorf("media type at 1.41 %q", mt)
		}
		res.CloseWrite()
		withTimeout(t, "stream", func() { io.ReadAll(res.Reader) })
		<-recs
	})

	t.Run("missing container", func(t *testing.T) {
		_, err := c.ContainerAttach(ctx, "nosuch", client.ContainerAttachOptions{Stream: true, Stdout: true})
		if err == nil || !strings.Contains(err.Error(), "404") {
			t.Errorf("attach to missing container: %v", err)
		}
	})

	t.Cleanup(func() {
		// Every session's hang-up watch has ended: none is left in poll(2).
		deadline := time.Now().Add(5 * time.Second)
		for {
			buf := make([]byte, 1<<20)
			stacks := string(buf[:runtime.Stack(buf, true)])
			if !strings.Contains(stacks, "apiserver.watchHangup") {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("hang-up watches left running:\n%s", stacks)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})

	t.Run("hang-up cancels", func(t *testing.T) {
		res, err := c.ContainerAttach(ctx, "hang", client.ContainerAttachOptions{Stream: true, Stdout: true})
		if err != nil {
			t.Fatal(err)
		}
		res.Close()
		select {
		case <-hungUp:
		case <-time.After(5 * time.Second):
			t.Fatal("the backend's context did not end when the client hung up")
		}
	})
}

func TestExec(t *testing.T) {
	var gotCreate *container.ExecCreateRequest
	var gotDetach bool
	fb := &fakeBackend{
		execCreate: func(ctx context.Context, id string, req *container.ExecCreateRequest) (string, error) {
			if id != "web" {
				return "", noContainer(id)
			}
			gotCreate = req
			return "e1", nil
		},
		execTTY: func(ctx context.Context, id string) (bool, error) {
			switch id {
			case "e1", "bad":
				return false, nil
			}
			return false, errdefs.NotFound("No such exec instance: %s", id)
		},
		execStart: func(ctx context.Context, id string, opts engine.ExecStartOptions) error {
			gotDetach = opts.Detach
			if id == "bad" {
				return errdefs.CommandNotFound(`exec: "nonexist": executable file not found in $PATH`)
			}
			if opts.Detach {
				return nil
			}
			io.WriteString(opts.Stdout, "out\n")
			io.WriteString(opts.Stderr, "err\n")
			data, _ := io.ReadAll(opts.Stdin)
			opts.Stdout.Write(data)
			return nil
		},
		execInsp: func(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
			seven := 7
			return &container.ExecInspectResponse{ID: id, ExitCode: &seven, ContainerID: "web"}, nil
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx := context.Background()

	cr, err := c.ExecCreate(ctx, "web", client.ExecCreateOptions{Cmd: []string{"sh", "-c", "cat"}, AttachStdin: true, AttachStdout: true, AttachStderr: true, Env: []string{"A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	if cr.ID != "e1" || !reflect.DeepEqual(gotCreate.Cmd, []string{"sh", "-c", "cat"}) || !gotCreate.AttachStdin || gotCreate.Env[0] != "A=1" {
		t.Errorf("exec create %q %+v", cr.ID, gotCreate)
	}
	if _, err := c.ExecCreate(ctx, "web", client.ExecCreateOptions{}); err == nil || !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "No exec command specified") {
		t.Errorf("exec create without a command: %v", err)
	}
	if _, err := c.ExecCreate(ctx, "nosuch", client.ExecCreateOptions{Cmd: []string{"true"}}); !cerrdefs.IsNotFound(err) {
		t.Errorf("exec create in a missing container: %v", err)
	}

	at, err := c.ExecAttach(ctx, "e1", client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := at.MediaType(); mt != mediaMultiplexed {
		t.Errorf("exec media type %q", mt)
	}
	io.WriteString(at.Conn, "in\n")
	at.CloseWrite()
	var out, errb bytes.Buffer
	withTimeout(t, "exec stream", func() { stdcopy.StdCopy(&out, &errb, at.Reader) })
	at.Close()
	if out.String() != "out\nin\n" || errb.String() != "err\n" || gotDetach {
		t.Errorf("exec stdout %q stderr %q detach %v", out.String(), errb.String(), gotDetach)
	}

	// A failed start is reported in the output, as dockerd does.
	at, err = c.ExecAttach(ctx, "bad", client.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	at.CloseWrite()
	out.Reset()
	errb.Reset()
	withTimeout(t, "failed exec stream", func() { stdcopy.StdCopy(&out, &errb, at.Reader) })
	at.Close()
	if !strings.Contains(out.String(), "executable file not found in $PATH\r\n") {
		t.Errorf("failed exec output %q", out.String())
	}

	if _, err := c.ExecStart(ctx, "e1", client.ExecStartOptions{Detach: true}); err != nil || !gotDetach {
		t.Errorf("detached start: %v (detach %v)", err, gotDetach)
	}
	if _, err := c.ExecStart(ctx, "nosuch", client.ExecStartOptions{Detach: true}); !cerrdefs.IsNotFound(err) {
		t.Errorf("start of a missing exec: %v", err)
	}
	ins, err := c.ExecInspect(ctx, "e1", client.ExecInspectOptions{})
	if err != nil || ins.ExitCode != 7 {
		t.Errorf("exec inspect %+v %v", ins, err)
	}
	if _, err := c.ExecResize(ctx, "e1", client.ExecResizeOptions{Height: 24, Width: 80}); err != nil {
		t.Errorf("exec resize: %v", err)
	}
	if resp, _ := rawDo(t, sock, "POST", "/exec/e1/resize?h=x&w=80", nil); resp.StatusCode != 400 {
		t.Errorf("bad resize: %d", resp.StatusCode)
	}
}

func TestImages(t *testing.T) {
	var mu sync.Mutex
	calls := map[string][]string{}
	rec := func(k string, v ...string) {
		mu.Lock()
		defer mu.Unlock()
		calls[k] = v
	}
	var gotImport engine.ImportOptions
	var gotBody string
	fb := &fakeBackend{
		imgImport: func(ctx context.Context, src io.Reader, opts engine.ImportOptions) (string, error) {
			b, err := io.ReadAll(src)
			if err != nil {
				return "", err
			}
			gotBody, gotImport = string(b), opts
			if opts.Repo == "broken" {
				return "", errdefs.Invalid("archive/tar: invalid tar header")
			}
			return "sha256:abc123", nil
		},
		imgPull: func(ctx context.Context, ref string, opts engine.PullOptions) error {
			rec("pull", ref, opts.Platform)
			if strings.HasPrefix(ref, "half") {
				opts.Progress(jsonstream.Message{Status: "Pulling from library/half", ID: "latest"})
				return errdefs.System("connection reset by peer")
			}
			return errdefs.NotFound("pull access denied for nonexist, repository does not exist or may require 'docker login'")
		},
		imgInspect: func(ctx context.Context, ref string) (*image.InspectResponse, error) {
			rec("inspect", ref)
			return &image.InspectResponse{ID: "sha256:abc123", RepoTags: []string{ref}}, nil
		},
		imgHistory: func(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
			rec("history", ref)
			return []image.HistoryResponseItem{{ID: "sha256:abc123", CreatedBy: "import"}}, nil
		},
		imgTag: func(ctx context.Context, source, repo, tag string) error {
			rec("tag", source, repo, tag)
			return nil
		},
		imgRemove: func(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error) {
			rec("remove", ref, fmt.Sprint(force), fmt.Sprint(noPrune))
			return []image.DeleteResponse{{Untagged: ref}, {Deleted: "sha256:abc123"}}, nil
		},
		imgList: func(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error) {
			rec("list", fmt.Sprint(opts.All), fmt.Sprint(opts.Filters))
			return []image.Summary{{ID: "sha256:abc123", RepoTags: []string{"busybox:latest"}}}, nil
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx := context.Background()

	rc, err := c.ImageImport(ctx, client.ImageImportSource{Source: strings.NewReader("TARBYTES"), SourceName: "-"}, "example.com/me/app:v1",
		client.ImageImportOptions{Message: "hello", Changes: []string{`CMD ["sh"]`, "ENV A=1"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(rc)
	rc.Close()
	if string(body) != `{"status":"sha256:abc123"}`+"\n" {
		t.Errorf("import stream %q", body)
	}
	want := engine.ImportOptions{Repo: "example.com/me/app", Tag: "v1", Message: "hello", Changes: []string{`CMD ["sh"]`, "ENV A=1"}}
	if gotBody != "TARBYTES" || !reflect.DeepEqual(gotImport, want) {
		t.Errorf("import got %q %+v", gotBody, gotImport)
	}
	// Without a message, dockerd's default.
	resp, _ := rawDo(t, sock, "POST", "/images/create?fromSrc=-&repo=x", strings.NewReader("T"))
	if resp.StatusCode != 200 || gotImport.Message != "Imported from -" || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("import default message: %d %q", resp.StatusCode, gotImport.Message)
	}
	// An import that fails before any output is an HTTP error.
	resp, b := rawDo(t, sock, "POST", "/images/create?fromSrc=-&repo=broken", strings.NewReader("x"))
	if resp.StatusCode != 400 || !strings.Contains(errMessage(t, b), "invalid tar header") {
		t.Errorf("failed import: %d %s", resp.StatusCode, b)
	}

	// Pull: an error before any progress is a status the CLI prints.
	_, err = c.ImagePull(ctx, "nonexist", client.ImagePullOptions{})
	if err == nil || !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "pull access denied for nonexist, repository does not exist or may require 'docker login'") {
		t.Errorf("pull: %v", err)
	}
	// The client sends the normalized name; the engine turns it back into
	// the familiar one for messages.
	if got := calls["pull"]; len(got) == 0 || got[0] != "docker.io/library/nonexist:latest" {
		t.Errorf("pull ref %v", got)
	}
	// After progress, the error travels in the stream.
	resp, b = rawDo(t, sock, "POST", "/v1.51/images/create?fromImage=half&tag=latest&platform=linux/amd64", nil)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if resp.StatusCode != 200 || len(lines) != 2 || lines[0] != `{"status":"Pulling from library/half","id":"latest"}` ||
		lines[1] != `{"errorDetail":{"message":"connection reset by peer"},"error":"connection reset by peer"}` {
		t.Errorf("pull stream %d %q", resp.StatusCode, b)
	}
	if got := calls["pull"]; got[0] != "half:latest" || got[1] != "linux/amd64" {
		t.Errorf("pull call %v", got)
	}
	rawDo(t, sock, "POST", "/images/create?fromImage=half&tag=sha256:0123", nil)
	if got := calls["pull"]; got[0] != "half@sha256:0123" {
		t.Errorf("pull by digest %v", got)
	}

	// Names with registries, ports, slashes and tags.
	name := "localhost:5000/team/app:1.0"
	if _, err := c.ImageInspect(ctx, name); err != nil || calls["inspect"][0] != name {
		t.Errorf("inspect: %v %v", err, calls["inspect"])
	}
	if h, err := c.ImageHistory(ctx, name); err != nil || calls["history"][0] != name || len(h.Items) != 1 {
		t.Errorf("history: %v %v", err, calls["history"])
	}
	if _, err := c.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: "my/repo:v2"}); err != nil ||
		!reflect.DeepEqual(calls["tag"], []string{"busybox", "docker.io/my/repo", "v2"}) {
		t.Errorf("tag: %v %v", err, calls["tag"])
	}
	if resp, _ := rawDo(t, sock, "POST", "/images/busybox/tag?repo=x&tag=y", nil); resp.StatusCode != 201 {
		t.Errorf("tag status %d", resp.StatusCode)
	}
	rr, err := c.ImageRemove(ctx, "my/repo:v2", client.ImageRemoveOptions{Force: true})
	if err != nil || len(rr.Items) != 2 || !reflect.DeepEqual(calls["remove"], []string{"my/repo:v2", "true", "true"}) {
		t.Errorf("remove: %v %+v %v", err, rr, calls["remove"])
	}
	il, err := c.ImageList(ctx, client.ImageListOptions{All: true, Filters: make(client.Filters).Add("reference", "busy*")})
	if err != nil || len(il.Items) != 1 || !reflect.DeepEqual(calls["list"], []string{"true", "map[reference:[busy*]]"}) {
		t.Errorf("list: %v %+v %v", err, il, calls["list"])
	}
	for _, p := range []string{"/images/busybox", "/images/busybox/bogus", "/images/json/x/y"} {
		if resp, _ := rawDo(t, sock, "GET", p, nil); resp.StatusCode != 404 {
			t.Errorf("GET %s: %d", p, resp.StatusCode)
		}
	}
}

func TestEvents(t *testing.T) {
	type sub struct {
		since, until time.Time
		f            filters.Args
	}
	subs := make(chan sub, 4)
	live := make(chan events.Message)
	cancelled := make(chan struct{}, 4)
	past := events.Message{Type: events.ContainerEventType, Action: events.ActionStart,
		Actor: events.Actor{ID: "c0ffee", Attributes: map[string]string{"image": "busybox", "name": "web"}}, Time: 1700000001, TimeNano: 1700000001000000000}
	fb := &fakeBackend{
		subscribe: func(since, until time.Time, f filters.Args) ([]events.Message, <-chan events.Message, func()) {
			subs <- sub{since, until, f}
			var l <-chan events.Message
			if until.IsZero() {
				l = live
			}
			return []events.Message{past}, l, func() { cancelled <- struct{}{} }
		},
	}
	sock := serve(t, fb)
	c := newClient(t, sock, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	res := c.Events(ctx, client.EventsListOptions{Since: "1700000000", Filters: make(client.Filters).Add("type", "container")})
	recv := func() events.Message {
		t.Helper()
		select {
		case m := <-res.Messages:
			return m
		case err := <-res.Err:
			t.Fatalf("events: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no event")
		}
		return events.Message{}
	}
	if m := recv(); m.Actor.ID != "c0ffee" || m.Action != events.ActionStart {
		t.Errorf("stored event %+v", m)
	}
	s := <-subs
	if !s.since.Equal(time.Unix(1700000000, 0)) || !s.until.IsZero() || !reflect.DeepEqual(s.f, filters.Args{"type": {"container"}}) {
		t.Errorf("subscription %+v", s)
	}
	select {
	case live <- events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{ID: "sha256:1"}}:
	case <-time.After(5 * time.Second):
		t.Fatal("live event not taken")
	}
	if m := recv(); m.Type != events.ImageEventType || m.Action != events.ActionTag {
		t.Errorf("live event %+v", m)
	}
	cancel()
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("subscription not cancelled after the client left")
	}

	// until in the past: the stored events, then the end; legacy fields for
	// API < 1.52.
	var body []byte
	withTimeout(t, "past events", func() {
		_, body = rawDo(t, sock, "GET", "/v1.51/events?since=1700000000&until=1700000100", nil)
	})
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("%q: %v", body, err)
	}
	if m["status"] != "start" || m["id"] != "c0ffee" || m["from"] != "busybox" || m["Action"] != "start" || m["Type"] != "container" {
		t.Errorf("event with legacy fields %s", body)
	}
	<-subs
	<-cancelled

	// until shortly in the future: the stream ends then.
	until := time.Now().Add(300 * time.Millisecond)
	withTimeout(t, "events until", func() {
		rawDo(t, sock, "GET", fmt.Sprintf("/events?until=%d.%09d", until.Unix(), until.Nanosecond()), nil)
	})
	if s := <-subs; !s.until.Equal(until) {
		t.Errorf("until %v, want %v", s.until, until)
	}
	if resp, _ := rawDo(t, sock, "GET", "/events?since=10&until=5", nil); resp.StatusCode != 400 {
		t.Errorf("until before since: %d", resp.StatusCode)
	}
	if resp, _ := rawDo(t, sock, "GET", "/events?since=abc", nil); resp.StatusCode != 400 {
		t.Errorf("bad since: %d", resp.StatusCode)
	}
}

func TestMuxerFraming(t *testing.T) {
	var buf bytes.Buffer
	m := newMuxer(&buf)
	out, errw := m.stream(streamStdout), m.stream(streamStderr)
	big := bytes.Repeat([]byte("x"), bigFrame+10)
	const n = 500
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			fmt.Fprintf(out, "out %d\n", i)
		}
		out.Write(big)
	}()
	go func() {
		defer wg.Done()
		for i := 0; i < n; i++ {
			fmt.Fprintf(errw, "err %d\n", i)
		}
	}()
	wg.Wait()
	if k, err := out.Write(nil); k != 0 || err != nil {
		t.Errorf("empty write: %d %v", k, err)
	}
	raw := buf.Bytes()
	if raw[0] != 1 && raw[0] != 2 || raw[1] != 0 || raw[2] != 0 || raw[3] != 0 {
		t.Errorf("header %v", raw[:8])
	}
	var o, e bytes.Buffer
	if _, err := stdcopy.StdCopy(&o, &e, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	var wantO, wantE strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&wantO, "out %d\n", i)
		fmt.Fprintf(&wantE, "err %d\n", i)
	}
	wantO.Write(big)
	if o.String() != wantO.String() || e.String() != wantE.String() {
		t.Errorf("demuxed streams differ (stdout %d bytes, stderr %d bytes)", o.Len(), e.Len())
	}
}

func TestParseTime(t *testing.T) {
	cases := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"", time.Time{}, false},
		{"1700000000", time.Unix(1700000000, 0), false},
		{"1700000000.5", time.Unix(1700000000, 500000000), false},
		{"1700000000.000000001", time.Unix(1700000000, 1), false},
		{"1700000000.1234567891234", time.Unix(1700000000, 123456789), false},
		{"2024-01-02T03:04:05.5Z", time.Date(2024, 1, 2, 3, 4, 5, 500000000, time.UTC), false},
		{"2024-01-02T03:04:05+02:00", time.Date(2024, 1, 2, 1, 4, 5, 0, time.UTC), false},
		{"abc", time.Time{}, true},
		{"1.-5", time.Time{}, true},
		{"10m", time.Time{}, true},
	}
	for _, tc := range cases {
		got, err := parseTime(tc.in)
		if (err != nil) != tc.err || !got.Equal(tc.want) {
			t.Errorf("parseTime(%q) = %v, %v; want %v (err %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// BenchmarkPing measures the common path of every request; run with
// -benchmem to see its allocations (zero when this was written).
func BenchmarkPing(b *testing.B) {
	s := New(&fakeBackend{}, Options{})
	r, _ := http.NewRequest("GET", "/v1.51/_ping", nil)
	w := &discardWriter{h: http.Header{}}
	b.ReportAllocs()
	for b.Loop() {
		r.URL.Path = "/v1.51/_ping"
		clear(w.h)
		s.ServeHTTP(w, r)
	}
}

type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}
