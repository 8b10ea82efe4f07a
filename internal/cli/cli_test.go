package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestExitCodeFor(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"plain", errors.New("boom"), 1},
		{"container status", StatusError{StatusCode: 42}, 42},
		{"wrapped status", fmt.Errorf("x: %w", StatusError{StatusCode: 7}), 7},
		{"status without code", StatusError{Status: "x"}, 1},
		{"usage", usageError(errors.New("bad"), "run"), 125},
		{"run engine error", toRunError(errors.New("Error response from daemon: conflict"), "run"), 125},
		{"run not found", toRunError(errors.New(`exec: "x": executable file not found in $PATH`), "run"), 127},
		{"run no such file", toRunError(errors.New("exec /x: no such file or directory"), "run"), 127},
		{"run permission", toRunError(errors.New("exec /etc: permission denied"), "run"), 126},
		{"run is a directory", toRunError(errors.New("exec /etc: is a directory"), "run"), 126},
		{"run kind", toRunError(errdefs.CommandNotFound("nope"), "run"), 127},
		{"kind cannot invoke", errdefs.CannotInvoke("x"), 126},
		{"kind not found", errdefs.NotFound("x"), 1},
		{"inspect template", &formatter.InspectError{Code: 64, Err: errors.New("t")}, 64},
		{"inspect missing", &formatter.InspectError{Code: 1, Err: errors.New("t")}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := exitCodeFor(tc.err); got != tc.want {
				t.Errorf("exitCodeFor(%v) = %d, want %d", tc.err, got, tc.want)
			}
		})
	}
}

func TestResolveHost(t *testing.T) {
	const def = "unix:///run/skiff/skiff.sock"
	for _, tc := range []struct {
		name  string
		flags []string
		env   map[string]string
		want  string
		err   string
	}{
		{"default", nil, nil, def, ""},
		{"docker host", nil, map[string]string{"DOCKER_HOST": "unix:///d.sock"}, "unix:///d.sock", ""},
		{"skiff wins over docker", nil, map[string]string{"DOCKER_HOST": "unix:///d.sock", "SKIFF_HOST": "unix:///s.sock"}, "unix:///s.sock", ""},
		{"flag wins", []string{"unix:///f.sock"}, map[string]string{"DOCKER_HOST": "unix:///d.sock", "SKIFF_HOST": "unix:///s.sock"}, "unix:///f.sock", ""},
		{"bare tcp", []string{"127.0.0.1:2375"}, nil, "tcp://127.0.0.1:2375", ""},
		{"tcp default port", []string{"tcp://127.0.0.1"}, nil, "tcp://127.0.0.1:2375", ""},
		{"unix default", []string{"unix://"}, nil, def, ""},
		{"two flags", []string{"unix:///a", "unix:///b"}, nil, "", "Specify only one -H"},
		{"bad proto", []string{"foo://x"}, nil, "", "invalid bind address format: foo://x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := resolveHost(tc.flags, func(k string) string { return tc.env[k] }, def)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Errorf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// runWithAutoStart runs args with a default host at a socket nobody
// listens on, and records whether the CLI tried to start a daemon.
func runWithAutoStart(t *testing.T, env map[string]string, args ...string) (started bool, stderr string, code int) {
	t.Helper()
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	def := "unix://" + filepath.Join(dir, "default.sock")
	var errb strings.Builder
	code = Main(args,
		WithStreams(strings.NewReader(""), io.Discard, &errb),
		WithEnv(func(k string) string { return env[k] }),
		WithDefaultHost(def, func(ctx context.Context) error {
			started = true
			return errors.New("test: not starting a daemon")
		}),
	)
	return started, errb.String(), code
}

func TestAutoStart(t *testing.T) {
	dir, err := shortTempDir(t)
	if err != nil {
		t.Fatal(err)
	}
	other := "unix://" + filepath.Join(dir, "other.sock")

	started, stderr, code := runWithAutoStart(t, nil, "ps")
	if !started || code != 1 || !strings.Contains(stderr, "test: not starting a daemon") {
		t.Errorf("default socket: started %v code %d stderr %q", started, code, stderr)
	}

	for name, tc := range map[string]struct {
		env  map[string]string
		args []string
	}{
		"-H":          {nil, []string{"-H", other, "ps"}},
		"SKIFF_HOST":  {map[string]string{"SKIFF_HOST": other}, []string{"ps"}},
		"DOCKER_HOST": {map[string]string{"DOCKER_HOST": other}, []string{"ps"}},
	} {
		t.Run(name, func(t *testing.T) {
			started, stderr, code := runWithAutoStart(t, tc.env, tc.args...)
			if started {
				t.Error("started a daemon for an explicit host")
			}
			want := "failed to connect to the docker API at " + other + ";"
			if code != 1 || !strings.Contains(stderr, want) {
				t.Errorf("code %d stderr %q, want %q", code, stderr, want)
			}
		})
	}

	// Commands that need no engine start none.
	if started, _, _ := runWithAutoStart(t, nil, "run", "-m", "bad", "busybox"); started {
		t.Error("a usage error started a daemon")
	}
}

func TestAutoStartSkippedWhenDaemonAnswers(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []container.Summary{})
	})
	var out strings.Builder
	started := false
	code := Main([]string{"ps", "-q"},
		WithStreams(strings.NewReader(""), &out, io.Discard),
		WithEnv(func(string) string { return "" }),
		WithDefaultHost(f.host(), func(context.Context) error { started = true; return nil }),
	)
	if code != 0 || started {
		t.Errorf("code %d started %v", code, started)
	}
}

func TestNotFoundErrors(t *testing.T) {
	f := newFakeAPI(t)
	noSuch := func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such container: "+r.PathValue("id"))
	}
	f.handle("DELETE /containers/{id}", noSuch)
	f.handle("POST /containers/{id}/stop", noSuch)
	f.handle("POST /containers/{id}/kill", noSuch)
	f.handle("POST /containers/{id}/start", noSuch)
	f.handle("GET /containers/{id}/json", noSuch)
	f.handle("GET /images/{name}/json", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "No such image: "+r.PathValue("name")+":latest")
	})
	for _, tc := range []struct {
		args   []string
		stderr string
		code   int
	}{
		{[]string{"rm", "nosuch"}, "Error response from daemon: No such container: nosuch\n", 1},
		{[]string{"rm", "-f", "nosuch"}, "", 0},
		{[]string{"stop", "nosuch"}, "Error response from daemon: No such container: nosuch\n", 1},
		{[]string{"kill", "nosuch"}, "Error response from daemon: No such container: nosuch\n", 1},
		{[]string{"start", "nosuch"}, "Error response from daemon: No such container: nosuch\nError: failed to start containers: nosuch\n", 1},
		{[]string{"inspect", "nosuch"}, "Error: No such object: nosuch\n", 1},
		{[]string{"container", "inspect", "nosuch"}, "Error response from daemon: No such container: nosuch\n", 1},
		{[]string{"image", "inspect", "nosuch"}, "Error response from daemon: No such image: nosuch:latest\n", 1},
		{[]string{"logs", "nosuch"}, "Error response from daemon: No such container: nosuch\n", 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := runCLI(t, f.host(), "", tc.args...)
			if code != tc.code || stderr != tc.stderr {
				t.Errorf("code %d stderr %q; want %d %q (stdout %q)", code, stderr, tc.code, tc.stderr, out)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		prefix string
		code   int
	}{
		{[]string{"run"}, "skiff: 'skiff run' requires at least 1 argument", 1},
		{[]string{"rename", "a"}, "skiff: 'skiff rename' requires 2 arguments", 1},
		{[]string{"ps", "extra"}, "skiff: 'skiff ps' accepts no arguments", 1},
		{[]string{"nosuchcmd"}, "skiff: unknown command: skiff nosuchcmd", 1},
		{[]string{"container", "nosuch"}, "skiff: unknown command: skiff container nosuch", 1},
		{[]string{"ps", "--bogus"}, "unknown flag: --bogus\n\nUsage:  skiff ps [OPTIONS]", 125},
		{[]string{"stop", "-t", "x", "c"}, `invalid argument "x" for "-t, --timeout" flag`, 125},
		{[]string{"inspect", "--type", "volume", "x"}, `unknown type: "volume"`, 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, stderr, code := runCLI(t, "unix:///nonexistent/x.sock", "", tc.args...)
			if code != tc.code || !strings.HasPrefix(stderr, tc.prefix) {
				t.Errorf("code %d stderr %q; want %d and prefix %q", code, stderr, tc.code, tc.prefix)
			}
		})
	}
}

func TestPsCommand(t *testing.T) {
	f := newFakeAPI(t)
	var gotQuery []string
	f.handle("GET /containers/json", func(w http.ResponseWriter, r *http.Request) {
		gotQuery = append(gotQuery, r.URL.RawQuery)
		writeJSON(w, 200, []container.Summary{{
			ID: testID, Names: []string{"/web"}, Image: "busybox", Command: "sleep 1000",
			Created: fixedNow.Add(-2 * time.Minute).Unix(), State: "running", Status: "Up 2 minutes", SizeRw: 12,
		}})
	})
	out, stderr, code := runCLI(t, f.host(), "", "ps", "-a", "--filter", "name=web")
	want := "CONTAINER ID   IMAGE     COMMAND        CREATED         STATUS         PORTS     NAMES\n" +
		"4f8e2b1c9d0a   busybox   \"sleep 1000\"   2 minutes ago   Up 2 minutes             web\n"
	if code != 0 || out != want {
		t.Errorf("code %d stderr %q\ngot\n%s\nwant\n%s", code, stderr, out, want)
	}
	if q := gotQuery[0]; !strings.Contains(q, "all=1") || !strings.Contains(q, "filters=") || strings.Contains(q, "size=1") {
		t.Errorf("query %q", q)
	}
	out, _, _ = runCLI(t, f.host(), "", "ps", "--format", "{{.Names}}: {{.Size}}")
	if out != "web: 12B\n" || !strings.Contains(gotQuery[1], "size=1") {
		t.Errorf("format with .Size: out %q query %q", out, gotQuery[1])
	}
	out, _, _ = runCLI(t, f.host(), "", "ps", "-q", "--no-trunc")
	if out != testID+"\n" {
		t.Errorf("ps -q --no-trunc: %q", out)
	}
	runCLI(t, f.host(), "", "ps", "-n", "3")
	runCLI(t, f.host(), "", "container", "ls", "-l")
	if !strings.Contains(gotQuery[3], "limit=3") || !strings.Contains(gotQuery[4], "limit=1") {
		t.Errorf("limits: %q", gotQuery[3:])
	}
}

func TestImagesCommand(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /images/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, []image.Summary{
			{ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{"busybox:latest"}, Created: fixedNow.Add(-time.Hour).Unix(), Size: 4_261_550, Containers: -1},
			{ID: "sha256:" + strings.Repeat("cd", 32), Created: fixedNow.Add(-time.Hour).Unix(), Size: 10, Containers: -1},
		})
	})
	out, stderr, code := runCLI(t, f.host(), "", "images")
	want := "REPOSITORY   TAG       IMAGE ID       CREATED             SIZE\nbusybox      latest    abababababab   About an hour ago   4.26MB\n"
	if code != 0 || out != want {
		t.Errorf("code %d stderr %q\ngot\n%s\nwant\n%s", code, stderr, out, want)
	}
	out, _, _ = runCLI(t, f.host(), "", "image", "ls", "-a", "-q")
	if out != "abababababab\ncdcdcdcdcdcd\n" {
		t.Errorf("image ls -a -q: %q", out)
	}
}

func TestRmiAndTag(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("DELETE /images/{name}", func(w http.ResponseWriter, r *http.Request) {
		switch r.PathValue("name") {
		case "busybox":
			if r.URL.Query().Get("force") != "1" || r.URL.Query().Get("noprune") != "1" {
				t.Errorf("rmi query %q", r.URL.RawQuery)
			}
			writeJSON(w, 200, []image.DeleteResponse{{Untagged: "busybox:latest"}, {Deleted: "sha256:abc"}})
		default:
			writeError(w, 404, "No such image: "+r.PathValue("name")+":latest")
		}
	})
	var tagQuery string
	f.handle("POST /images/{name}/tag", func(w http.ResponseWriter, r *http.Request) {
		tagQuery = r.PathValue("name") + "?" + r.URL.RawQuery
		w.WriteHeader(http.StatusCreated)
	})
	out, stderr, code := runCLI(t, f.host(), "", "rmi", "-f", "--no-prune", "busybox", "gone")
	if code != 0 || out != "Untagged: busybox:latest\nDeleted: sha256:abc\n" || stderr != "Error response from daemon: No such image: gone:latest\n" {
		t.Errorf("rmi -f: code %d out %q stderr %q", code, out, stderr)
	}
	if _, stderr, code := runCLI(t, f.host(), "", "image", "rm", "gone"); code != 1 || stderr != "Error response from daemon: No such image: gone:latest\n" {
		t.Errorf("image rm: code %d stderr %q", code, stderr)
	}
	if _, stderr, code := runCLI(t, f.host(), "", "tag", "busybox", "me/box:v1"); code != 0 || tagQuery != "busybox?repo=docker.io%2Fme%2Fbox&tag=v1" {
		t.Errorf("tag: code %d stderr %q query %q", code, stderr, tagQuery)
	}
}

func TestImportStreamsBody(t *testing.T) {
	f := newFakeAPI(t)
	var got struct {
		body, query string
	}
	f.handle("POST /images/create", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.body, got.query = string(b), r.URL.RawQuery
		writeJSON(w, 200, map[string]string{"status": "sha256:0123"})
	})
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	os.WriteFile(file, []byte("pretend tar"), 0o644)

	out, stderr, code := runCLI(t, f.host(), "", "import", "-c", "CMD [\"sh\"]", "-m", "hello", file, "me/img:v2")
	if code != 0 || out != "sha256:0123\n" {
		t.Fatalf("code %d out %q stderr %q", code, out, stderr)
	}
	if got.body != "pretend tar" {
		t.Errorf("body %q", got.body)
	}
	for _, want := range []string{"fromSrc=-", "repo=me%2Fimg%3Av2", "message=hello", "changes=CMD"} {
		if !strings.Contains(got.query, want) {
			t.Errorf("query %q lacks %q", got.query, want)
		}
	}
	if _, _, code := runCLI(t, f.host(), "from stdin", "image", "import", "-"); code != 0 || got.body != "from stdin" {
		t.Errorf("import -: code %d body %q", code, got.body)
	}
}

func TestInspectCommand(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "web" {
			writeError(w, 404, "No such container: "+r.PathValue("id"))
			return
		}
		writeJSON(w, 200, container.InspectResponse{ID: testID, Name: "/web", State: &container.State{ExitCode: 3, Status: "exited"}, Config: &container.Config{Image: "busybox", Env: []string{"A=1"}}})
	})
	f.handle("GET /images/{name}/json", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != "busybox" {
			writeError(w, 404, "No such image: "+r.PathValue("name"))
			return
		}
		writeJSON(w, 200, image.InspectResponse{ID: "sha256:abc", RepoTags: []string{"busybox:latest"}})
	})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"inspect", "-f", "{{.State.ExitCode}} {{.Name}}", "web"}, "3 /web\n"},
		{[]string{"container", "inspect", "--format", "{{json .Config.Env}}", "web"}, "[\"A=1\"]\n"},
		{[]string{"inspect", "--format", "{{.Id}}", "busybox"}, "sha256:abc\n"},
		{[]string{"image", "inspect", "-f", "{{index .RepoTags 0}}", "busybox"}, "busybox:latest\n"},
		{[]string{"inspect", "--type", "image", "-f", "{{.Id}}", "busybox"}, "sha256:abc\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := runCLI(t, f.host(), "", tc.args...)
			if code != 0 || out != tc.want {
				t.Errorf("code %d stderr %q out %q, want %q", code, stderr, out, tc.want)
			}
		})
	}
	out, _, code := runCLI(t, f.host(), "", "inspect", "web")
	if code != 0 || !strings.HasPrefix(out, "[\n    {\n        \"Id\": \""+testID+"\",") {
		t.Errorf("inspect: code %d out %q", code, out)
	}
}

func TestStartAttachPassesExitCode(t *testing.T) {
	f := newFakeAPI(t)
	newFakeContainer(f, 9)
	f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, container.InspectResponse{ID: testID, Config: &container.Config{}, HostConfig: &container.HostConfig{}})
	})
	out, _, code := runCLI(t, f.host(), "", "start", "-a", "web")
	if code != 9 || out != "hello from stdout\n" {
		t.Errorf("code %d out %q", code, out)
	}
	want := []string{"GET /containers/web/json", "POST /containers/" + testID + "/attach", "POST /containers/" + testID + "/wait", "POST /containers/" + testID + "/start"}
	if got := f.callList(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

func TestWaitAndStopAndKill(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("POST /containers/{id}/wait", func(w http.ResponseWriter, r *http.Request) {
		code := map[string]int64{"a": 0, "b": 5}[r.PathValue("id")]
		writeJSON(w, 200, container.WaitResponse{StatusCode: code})
	})
	var stopQuery, killQuery string
	f.handle("POST /containers/{id}/stop", func(w http.ResponseWriter, r *http.Request) {
		stopQuery = r.URL.RawQuery
		w.WriteHeader(http.StatusNoContent)
	})
	f.handle("POST /containers/{id}/kill", func(w http.ResponseWriter, r *http.Request) {
		killQuery = r.URL.RawQuery
		w.WriteHeader(http.StatusNoContent)
	})
	if out, _, code := runCLI(t, f.host(), "", "wait", "a", "b"); code != 0 || out != "0\n5\n" {
		t.Errorf("wait: code %d out %q", code, out)
	}
	if out, _, code := runCLI(t, f.host(), "", "stop", "-t", "3", "-s", "SIGUSR1", "a"); code != 0 || out != "a\n" || stopQuery != "signal=SIGUSR1&t=3" {
		t.Errorf("stop: code %d out %q query %q", code, out, stopQuery)
	}
	if _, _, code := runCLI(t, f.host(), "", "stop", "a"); code != 0 || stopQuery != "" {
		t.Errorf("stop without -t sent %q", stopQuery)
	}
	if out, _, code := runCLI(t, f.host(), "", "kill", "-s", "HUP", "a", "b"); code != 0 || out != "a\nb\n" || killQuery != "signal=HUP" {
		t.Errorf("kill: code %d out %q query %q", code, out, killQuery)
	}
}

func TestExecExitCode(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, container.InspectResponse{ID: testID, Config: &container.Config{}})
	})
	f.handle("POST /containers/{id}/exec", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, container.ExecCreateResponse{ID: "exec1"})
	})
	f.handle("POST /exec/{id}/start", func(w http.ResponseWriter, r *http.Request) {
		conn := hijack(t, w, r)
		defer conn.Close()
		conn.Write(frame(1, "out\n"))
		conn.Write(frame(2, "err\n"))
	})
	f.handle("GET /exec/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		four := 4
		writeJSON(w, 200, container.ExecInspectResponse{ID: "exec1", ExitCode: &four})
	})
	out, stderr, code := runCLI(t, f.host(), "", "exec", "web", "sh", "-c", "exit 4")
	if code != 4 || out != "out\n" || stderr != "err\n" {
		t.Errorf("code %d out %q stderr %q", code, out, stderr)
	}
}

func TestLogsDemux(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, container.InspectResponse{ID: testID, Config: &container.Config{}})
	})
	var q string
	f.handle("GET /containers/{id}/logs", func(w http.ResponseWriter, r *http.Request) {
		q = r.URL.RawQuery
		w.Write(frame(1, "line 1\n"))
		w.Write(frame(2, "oops\n"))
	})
	out, stderr, code := runCLI(t, f.host(), "", "logs", "--tail", "2", "-t", "web")
	if code != 0 || out != "line 1\n" || stderr != "oops\n" {
		t.Errorf("code %d out %q stderr %q", code, out, stderr)
	}
	if !strings.Contains(q, "tail=2") || !strings.Contains(q, "timestamps=1") || !strings.Contains(q, "stdout=1") {
		t.Errorf("query %q", q)
	}
}

func TestPrune(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("POST /containers/prune", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, container.PruneReport{ContainersDeleted: []string{"aaa", "bbb"}, SpaceReclaimed: 2048})
	})
	out, _, code := runCLI(t, f.host(), "", "container", "prune", "-f")
	if code != 0 || out != "Deleted Containers:\naaa\nbbb\n\nTotal reclaimed space: 2.048kB\n" {
		t.Errorf("code %d out %q", code, out)
	}
	if _, stderr, code := runCLI(t, f.host(), "n\n", "container", "prune"); code != 1 || !strings.Contains(stderr, "cancelled") || len(f.callList()) != 1 {
		t.Errorf("declined prune: code %d stderr %q calls %q", code, stderr, f.callList())
	}
}

func TestEvents(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /events", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, events.Message{Type: "container", Action: "start", Actor: events.Actor{ID: "abc", Attributes: map[string]string{"name": "web", "image": "busybox"}}, TimeNano: fixedNow.UnixNano()})
	})
	out, _, code := runCLI(t, f.host(), "", "events", "--until", "0s")
	want := fixedNow.Local().Format(rfc3339NanoFixed) + " container start abc (image=busybox, name=web)\n"
	if code != 0 || out != want {
		t.Errorf("code %d out %q want %q", code, out, want)
	}
	out, _, _ = runCLI(t, f.host(), "", "system", "events", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	if out != "start web\n" {
		t.Errorf("format: %q", out)
	}
	if _, stderr, code := runCLI(t, f.host(), "", "events", "--format", "{{.Nope}}"); code != 64 || !strings.HasPrefix(stderr, "Error parsing format:") {
		t.Errorf("bad format: code %d stderr %q", code, stderr)
	}
}

func TestVersionWithoutServer(t *testing.T) {
	out, stderr, code := runCLI(t, "unix:///nonexistent/x.sock", "", "version", "--format", "{{.Client.Version}} {{.Client.Os}}")
	if code != 1 || out != Version+" linux\n" || !strings.Contains(stderr, "failed to connect to the docker API") {
		t.Errorf("code %d out %q stderr %q", code, out, stderr)
	}
}

// A socket that does not exist says "no such file or directory"; that is the
// engine being unreachable (125), not a missing command (127).
func TestRunWithoutEngineIs125(t *testing.T) {
	api, err := client.New(client.WithHost("unix://" + t.TempDir() + "/none.sock"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = api.Ping(context.Background(), client.PingOptions{})
	if err == nil {
		t.Fatal("ping of a missing socket succeeded")
	}
	if got := exitCodeFor(toRunError(err, "run")); got != 125 {
		t.Errorf("exit %d for %v, want 125", got, err)
	}
}

func TestRequestedCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "c", "true"}, "exec"},
		{[]string{"-H", "unix:///x.sock", "run", "--rm", "busybox"}, "run"},
		{[]string{"--host=unix:///x.sock", "-D", "ps", "-a"}, "ps"},
		{[]string{"-l", "debug", "logs", "c"}, "logs"},
		{[]string{"-DH", "unix:///x.sock", "ps"}, ""}, // clustered: full tree
		{[]string{"--version"}, ""},
		{[]string{"--", "ps"}, ""},
		{nil, ""},
	} {
		if got := requestedCommand(tt.args); got != tt.want {
			t.Errorf("requestedCommand(%q) = %q, want %q", tt.args, got, tt.want)
		}
	}
}

// A hot command built alone is the command of the full tree: same usage,
// flags and help.
func TestHotCommandsMatchTheFullTree(t *testing.T) {
	c := New()
	full := c.newRootCommand("")
	for name := range hotCommands {
		alone := c.newRootCommand(name)
		a, _, err := alone.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		f, _, err := full.Find([]string{name})
		if err != nil {
			t.Fatal(err)
		}
		if a.Name() != name || a.UsageString() != f.UsageString() || a.Long != f.Long {
			t.Errorf("%s alone differs from the full tree's:\n%s\nvs\n%s", name, a.UsageString(), f.UsageString())
		}
		if len(alone.Commands()) != 1 {
			t.Errorf("%s: %d commands built, want only it", name, len(alone.Commands()))
		}
	}
}

// TestRemoveEachName covers the commands that act on each name in order:
// names that worked are printed, failures are reported after, and -f of a
// network that is gone is not an error (docker network rm -f).
func TestRemoveEachName(t *testing.T) {
	f := newFakeAPI(t)
	gone := func(w http.ResponseWriter, r *http.Request, kind string) bool {
		if strings.HasPrefix(r.PathValue("name"), "gone") {
			writeError(w, 404, "No such "+kind+": "+r.PathValue("name"))
			return true
		}
		return false
	}
	f.handle("DELETE /networks/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !gone(w, r, "network") {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	f.handle("DELETE /volumes/{name}", func(w http.ResponseWriter, r *http.Request) {
		if !gone(w, r, "volume") {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	f.handle("POST /containers/{name}/restart", func(w http.ResponseWriter, r *http.Request) {
		if !gone(w, r, "container") {
			w.WriteHeader(http.StatusNoContent)
		}
	})
	for _, tc := range []struct {
		args         []string
		out, errText string
		code         int
	}{
		{[]string{"network", "rm", "a", "gone1", "b"}, "a\nb\n", "Error response from daemon: No such network: gone1\n", 1},
		{[]string{"network", "rm", "-f", "a", "gone1"}, "a\n", "", 0},
		{[]string{"volume", "rm", "gone2", "v"}, "v\n", "Error response from daemon: No such volume: gone2\n", 1},
		{[]string{"restart", "c", "gone3"}, "c\n", "Error response from daemon: No such container: gone3\n", 1},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out, stderr, code := runCLI(t, f.host(), "", tc.args...)
			if out != tc.out || stderr != tc.errText || code != tc.code {
				t.Errorf("code %d out %q stderr %q; want %d %q %q", code, out, stderr, tc.code, tc.out, tc.errText)
			}
		})
	}
}
