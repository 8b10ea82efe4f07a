package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// buildCall is what the fake daemon saw of a POST /build.
type buildCall struct {
	query   url.Values
	header  http.Header
	body    []byte
	entries map[string]string // the body as a tar: name -> content ("" for dirs, "->target" for links)
}

// fakeBuildAPI answers /version as platform (a skiff daemon or another)
// and /build with reply, recording each build.
func fakeBuildAPI(t *testing.T, platform string, reply func(w http.ResponseWriter)) (*fakeAPI, func() buildCall) {
	f := newFakeAPI(t)
	var mu sync.Mutex
	var last buildCall
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"Platform": map[string]string{"Name": platform}, "ApiVersion": "1.47"})
	})
	f.handle("POST /build", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		c := buildCall{query: r.URL.Query(), header: r.Header.Clone(), body: body}
		if len(body) > 0 {
			c.entries = map[string]string{}
			tr := tar.NewReader(bytes.NewReader(body))
			for {
				h, err := tr.Next()
				if err != nil {
					break
				}
				data, _ := io.ReadAll(tr)
				if h.Typeflag == tar.TypeSymlink {
					data = []byte("->" + h.Linkname)
				}
				c.entries[h.Name] = string(data)
			}
		}
		mu.Lock()
		last = c
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		reply(w)
	})
	return f, func() buildCall {
		mu.Lock()
		defer mu.Unlock()
		return last
	}
}

const builtID = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func replyOK(w http.ResponseWriter) {
	io.WriteString(w, `{"stream":"Step 1/1 : FROM busybox\n"}`+"\n")
	io.WriteString(w, `{"aux":{"ID":"`+builtID+`"}}`+"\n")
	io.WriteString(w, `{"stream":"Successfully built 111111111111\n"}`+"\n")
}

// contextFixture is a context directory with a .dockerignore.
func contextFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range map[string]string{
		"Dockerfile":    "FROM busybox\nCOPY . /\n",
		"keep.txt":      "keep",
		"ignored.txt":   "no",
		"logs/a.log":    "no",
		"logs/keep.log": "yes",
		".dockerignore": "ignored.txt\nlogs\n!logs/keep.log\nDockerfile\n.dockerignore\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestBuildFastPath(t *testing.T) {
	f, last := fakeBuildAPI(t, "skiff Engine", replyOK)
	dir := contextFixture(t)
	iid := filepath.Join(t.TempDir(), "iid")
	out, errOut, code := runCLI(t, f.host(), "", "build", "-t", "x:1", "--iidfile", iid, "--build-arg", "A=1", "--build-arg", "SKIFF_TEST_SURELY_UNSET", "--label", "l=v", dir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if out != "Step 1/1 : FROM busybox\nSuccessfully built 111111111111\n" {
		t.Errorf("output %q", out)
	}
	c := last()
	if c.header.Get(headerContextDir) != dir || len(c.body) != 0 || c.query.Get("dockerfile") != "Dockerfile" {
		t.Errorf("fast path request: header %q, %d body bytes, dockerfile %q", c.header.Get(headerContextDir), len(c.body), c.query.Get("dockerfile"))
	}
	var args map[string]*string
	json.Unmarshal([]byte(c.query.Get("buildargs")), &args)
	if args["A"] == nil || *args["A"] != "1" || args["SKIFF_TEST_SURELY_UNSET"] != nil {
		t.Errorf("buildargs %s", c.query.Get("buildargs"))
	}
	if c.query.Get("t") != "x:1" || c.query.Get("labels") != `{"l":"v"}` || c.query.Get("version") != "1" {
		t.Errorf("query %v", c.query)
	}
	if b, _ := os.ReadFile(iid); string(b) != builtID {
		t.Errorf("iidfile %q", b)
	}

	// -f - sends the Dockerfile alone in the body.
	_, errOut, code = runCLI(t, f.host(), "FROM scratch\n", "build", "-f", "-", dir)
	c = last()
	if code != 0 || c.header.Get(headerDockerfile) != "body" || string(c.body) != "FROM scratch\n" || c.query.Get("dockerfile") != "" {
		t.Errorf("-f -: exit %d %s; header %q body %q dockerfile %q", code, errOut, c.header.Get(headerDockerfile), c.body, c.query.Get("dockerfile"))
	}
}

func TestBuildSendsTarToOtherDaemons(t *testing.T) {
	f, last := fakeBuildAPI(t, "Docker Engine - Community", replyOK)
	dir := contextFixture(t)
	if _, errOut, code := runCLI(t, f.host(), "", "build", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c := last()
	if c.header.Get(headerContextDir) != "" {
		t.Errorf("fast path header sent to a non-skiff daemon")
	}
	var names []string
	for n := range c.entries {
		names = append(names, n)
	}
	slices.Sort(names)
	// .dockerignore's rules; the Dockerfile and .dockerignore always go.
	want := []string{".dockerignore", "Dockerfile", "keep.txt", "link", "logs/keep.log"}
	if !slices.Equal(names, want) {
		t.Errorf("tar entries %q, want %q", names, want)
	}
	if c.entries["link"] != "->/etc/passwd" {
		t.Errorf("symlink sent as %q", c.entries["link"])
	}

	// -f -: the Dockerfile joins the tar under a name .dockerignore hides.
	if _, errOut, code := runCLI(t, f.host(), "FROM scratch\n", "build", "-f", "-", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	c = last()
	df := c.query.Get("dockerfile")
	if !strings.HasPrefix(df, ".dockerfile.") || c.entries[df] != "FROM scratch\n" || !strings.Contains(c.entries[".dockerignore"], "\n"+df+"\n") {
		t.Errorf("-f - over tar: dockerfile %q, entries %v", df, c.entries)
	}
}

func TestBuildFromStdin(t *testing.T) {
	f, last := fakeBuildAPI(t, "skiff Engine", replyOK)
	// A Dockerfile alone: wrapped in a tar.
	if _, errOut, code := runCLI(t, f.host(), "FROM busybox\nRUN true\n", "build", "-"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if c := last(); len(c.entries) != 1 || c.entries["Dockerfile"] != "FROM busybox\nRUN true\n" || c.query.Get("dockerfile") != "Dockerfile" {
		t.Errorf("stdin Dockerfile: %v %v", c.entries, c.query)
	}
	// A tar: sent as it is.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "Dockerfile.x", Mode: 0o644, Size: 13, Typeflag: tar.TypeReg})
	tw.Write([]byte("FROM scratch\n"))
	tw.Close()
	if _, errOut, code := runCLI(t, f.host(), buf.String(), "build", "-f", "Dockerfile.x", "-"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if c := last(); !bytes.Equal(c.body, buf.Bytes()) || c.query.Get("dockerfile") != "Dockerfile.x" {
		t.Errorf("stdin tar: %d bytes, dockerfile %q", len(c.body), c.query.Get("dockerfile"))
	}
	if _, errOut, code := runCLI(t, f.host(), "", "build", "-f", "-", "-"); code != 1 || !strings.Contains(errOut, "can't use stdin for both") {
		t.Errorf("stdin twice: %d %s", code, errOut)
	}
}

func TestBuildErrorsAndQuiet(t *testing.T) {
	fail := func(w http.ResponseWriter) {
		io.WriteString(w, `{"stream":"Step 2/2 : RUN exit 7\n"}`+"\n")
		io.WriteString(w, `{"errorDetail":{"code":7,"message":"The command '/bin/sh -c exit 7' returned a non-zero code: 7"},"error":"The command '/bin/sh -c exit 7' returned a non-zero code: 7"}`+"\n")
	}
	f, _ := fakeBuildAPI(t, "skiff Engine", fail)
	dir := contextFixture(t)
	iid := filepath.Join(t.TempDir(), "iid")
	os.WriteFile(iid, []byte("stale"), 0o644)
	out, errOut, code := runCLI(t, f.host(), "", "build", "--iidfile", iid, dir)
	if code != 7 || !strings.Contains(out, "RUN exit 7") || !strings.Contains(errOut, "returned a non-zero code: 7") {
		t.Errorf("failing RUN: exit %d, out %q, err %q", code, out, errOut)
	}
	if _, err := os.Stat(iid); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale iidfile kept: %v", err)
	}
	// -q: the output shows only on failure, on stderr.
	out, errOut, code = runCLI(t, f.host(), "", "build", "-q", dir)
	if code != 7 || out != "" || !strings.Contains(errOut, "RUN exit 7") {
		t.Errorf("quiet failure: exit %d, out %q, err %q", code, out, errOut)
	}

	q, _ := fakeBuildAPI(t, "skiff Engine", func(w http.ResponseWriter) {
		io.WriteString(w, `{"stream":"`+builtID+`\n"}`+"\n")
	})
	out, errOut, code = runCLI(t, q.host(), "", "build", "-q", "--iidfile", iid, dir)
	if code != 0 || out != builtID+"\n" {
		t.Errorf("quiet: exit %d, out %q, err %q", code, out, errOut)
	}
	if b, _ := os.ReadFile(iid); string(b) != builtID {
		t.Errorf("quiet iidfile %q", b)
	}
	if _, errOut, code := runCLI(t, q.host(), "", "build", filepath.Join(dir, "missing")); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("missing context: %d %s", code, errOut)
	}
}

// A skiff daemon that sees other files at the path (the CLI runs in
// another mount namespace) refuses the fast path: the CLI sends a tar.
func TestBuildFastPathFallback(t *testing.T) {
	f := newFakeAPI(t)
	f.handle("GET /version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"Platform": map[string]string{"Name": "skiff Engine"}})
	})
	var tarred []byte
	f.handle("POST /build", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(headerContextDir) != "" {
			if r.Header.Get(headerContextID) == "" {
				t.Errorf("fast path without the directory's id")
			}
			writeError(w, http.StatusConflict, headerContextDir+" /x is not the directory the client sees")
			return
		}
		tarred, _ = io.ReadAll(r.Body)
		replyOK(w)
	})
	dir := contextFixture(t)
	if _, errOut, code := runCLI(t, f.host(), "", "build", dir); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if _, err := tar.NewReader(bytes.NewReader(tarred)).Next(); err != nil {
		t.Errorf("no tar sent after the refusal (%d bytes): %v", len(tarred), err)
	}
}
