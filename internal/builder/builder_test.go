package builder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/buildcontext"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/meta"
)

// testEnv is a builder on a fake backend with a context directory.
type testEnv struct {
	t   testing.TB
	be  *fakeBackend
	b   *Builder
	dir string
	hc  *buildcontext.HashCache
}

func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	db, err := meta.Open(filepath.Join(t.TempDir(), "meta.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	be := newFakeBackend(t)
	be.registry[normRef(t, "busybox")] = busybox()
	b, err := New(be, db)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := buildcontext.NewHashCache(db)
	if err != nil {
		t.Fatal(err)
	}
	return &testEnv{t: t, be: be, b: b, dir: t.TempDir(), hc: hc}
}

func (e *testEnv) write(files map[string]string) {
	e.t.Helper()
	for name, content := range files {
		p := filepath.Join(e.dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			e.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			e.t.Fatal(err)
		}
	}
}

// build builds dockerfile with opts in the context directory.
func (e *testEnv) build(dockerfile string, opts Options) (string, string, error) {
	e.t.Helper()
	bc, err := buildcontext.FromDir(e.dir, e.hc)
	if err != nil {
		e.t.Fatal(err)
	}
	defer bc.Close()
	opts.DockerfileContent = []byte(dockerfile)
	var out bytes.Buffer
	id, err := e.b.Build(context.Background(), bc, opts, &out)
	return id, out.String(), err
}

func (e *testEnv) mustBuild(dockerfile string, opts Options) (*image.Image, string) {
	e.t.Helper()
	id, out, err := e.build(dockerfile, opts)
	if err != nil {
		e.t.Fatalf("build: %v\noutput:\n%s", err, out)
	}
	img, err := e.be.ImageGet(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	if e.be.leases != 0 {
		e.t.Errorf("%d leases still held after the build", e.be.leases)
	}
	return img, out
}

func createdBy(img *image.Image) []string {
	var out []string
	for _, h := range img.Config.History {
		out = append(out, h.CreatedBy)
	}
	return out
}

func TestOutputAndRebuildFromCache(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"go/bin/go": "gobinary", "go/VERSION": "go1.26"})
	df := "FROM busybox\nCOPY go /usr/local/go\nRUN echo built > /built\n"
	e.be.run = func(cfg *container.Config) (string, int, map[string]string) {
		return "built output\n", 0, map[string]string{"built": "built\n"}
	}
	img, out := e.mustBuild(df, Options{Tags: []string{"name:tag"}})
	base, _ := e.be.ImageGet(context.Background(), "busybox")
	copied := e.be.images[img.Parent]
	short := image.ShortID
	want := "Step 1/3 : FROM busybox\n" +
		"Pulling busybox\n" +
		" ---> " + short(base.ID) + "\n" +
		"Step 2/3 : COPY go /usr/local/go\n" +
		" ---> " + short(copied.ID) + "\n" +
		"Step 3/3 : RUN echo built > /built\n" +
		" ---> Running in 000000000000\n" +
		"built output\n" +
		" ---> Removed intermediate container 000000000000\n" +
		" ---> " + short(img.ID) + "\n" +
		"Successfully built " + short(img.ID) + "\n" +
		"Successfully tagged name:tag\n"
	if out != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
	if got := e.be.tags["docker.io/library/name:tag"]; got != img.ID {
		t.Errorf("tag points at %q, want %s", got, img.ID)
	}
	if got := e.be.layerFiles(copied.Layers[len(copied.Layers)-1].DiffID); got["usr/local/go/bin/go"] != "0:0 644 gobinary" {
		t.Errorf("COPY layer: %v", got)
	}

	runs, adds, creates := e.be.counts()
	img2, out2 := e.mustBuild(df, Options{Tags: []string{"name:tag"}})
	if img2.ID != img.ID {
		t.Errorf("rebuild made %s, want the cached %s", img2.ID, img.ID)
	}
	runs2, adds2, creates2 := e.be.counts()
	if runs2 != runs || adds2 != adds || creates2 != creates || len(e.be.pulls) != 1 {
		t.Errorf("rebuild ran %d containers, stored %d layers, created %d images, pulled %d times; want none",
			runs2-runs, adds2-adds, creates2-creates, len(e.be.pulls)-1)
	}
	want2 := "Step 1/3 : FROM busybox\n" +
		" ---> " + short(base.ID) + "\n" +
		"Step 2/3 : COPY go /usr/local/go\n" +
		" ---> Using cache\n" +
		" ---> " + short(copied.ID) + "\n" +
		"Step 3/3 : RUN echo built > /built\n" +
		" ---> Using cache\n" +
		" ---> " + short(img.ID) + "\n" +
		"Successfully built " + short(img.ID) + "\n" +
		"Successfully tagged name:tag\n"
	if out2 != want2 {
		t.Errorf("rebuild output:\n%s\nwant:\n%s", out2, want2)
	}

	// -q writes nothing.
	_, out3 := e.mustBuild(df, Options{Quiet: true})
	if out3 != "" {
		t.Errorf("quiet build wrote %q", out3)
	}
}

func TestHistory(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"f.txt": "hello"})
	df := `FROM busybox
MAINTAINER me
ENV A=b C="d e"
LABEL x=y
EXPOSE 80 53/udp
VOLUME /data
USER app
WORKDIR /app
WORKDIR sub
WORKDIR /etc
ARG V=1
SHELL ["/bin/bash", "-c"]
CMD ["sh"]
CMD echo hi
ENTRYPOINT ["/bin/ep"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s CMD true
ONBUILD RUN echo onbuild
COPY f.txt /x
ADD f.txt /y/
RUN echo $V
`
	img, _ := e.mustBuild(df, Options{})
	hist := img.Config.History[1:] // after the base's
	want := []struct {
		createdBy string // a regexp
		empty     bool
	}{
		{`/bin/sh -c #\(nop\)  MAINTAINER me`, true},
		{`/bin/sh -c #\(nop\)  ENV A=b C=d e`, true},
		{`/bin/sh -c #\(nop\)  LABEL x=y`, true},
		{`/bin/sh -c #\(nop\)  EXPOSE 53/udp 80`, true}, // the parser sorts them, as in Docker
		{`/bin/sh -c #\(nop\)  VOLUME \[/data\]`, true},
		{`/bin/sh -c #\(nop\)  USER app`, true},
		{`/bin/sh -c #\(nop\) WORKDIR /app`, false},
		{`/bin/sh -c #\(nop\) WORKDIR /app/sub`, false},
		{`/bin/sh -c #\(nop\) WORKDIR /etc`, true},
		{`/bin/sh -c #\(nop\)  ARG V=1`, true},
		{`/bin/bash -c #\(nop\)  SHELL \[/bin/bash -c\]`, true},
		{`/bin/bash -c #\(nop\)  CMD \["sh"\]`, true},
		{`/bin/bash -c #\(nop\)  CMD \["/bin/bash" "-c" "echo hi"\]`, true},
		{`/bin/bash -c #\(nop\)  ENTRYPOINT \["/bin/ep"\]`, true},
		{`/bin/bash -c #\(nop\)  STOPSIGNAL SIGTERM`, true},
		// Docker's %q of the struct: durations quoted, Retries a rune.
		{`/bin/bash -c #\(nop\)  HEALTHCHECK &\{\["CMD-SHELL" "true"\] "5s" "0s" "0s" "0s" '\\x00'\}`, true},
		{`/bin/bash -c #\(nop\)  ONBUILD RUN echo onbuild`, true},
		{`/bin/bash -c #\(nop\) COPY file:[0-9a-f]{64} in /x `, false},
		{`/bin/bash -c #\(nop\) ADD file:[0-9a-f]{64} in /y/ `, false},
		{`\|1 V=1 /bin/bash -c echo \$V`, true},
	}
	if len(hist) != len(want) {
		t.Fatalf("history has %d steps, want %d:\n%s", len(hist), len(want), strings.Join(createdBy(img), "\n"))
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w.createdBy + "$").MatchString(hist[i].CreatedBy) {
			t.Errorf("step %d: created by %q, want %s", i+1, hist[i].CreatedBy, w.createdBy)
		}
		if hist[i].EmptyLayer != w.empty {
			t.Errorf("step %d (%s): empty layer %v, want %v", i+1, hist[i].CreatedBy, hist[i].EmptyLayer, w.empty)
		}
		if hist[i].Author != "me" {
			t.Errorf("step %d: author %q, want me", i+1, hist[i].Author)
		}
	}
	// One layer each for the base, two WORKDIRs, COPY and ADD.
	if len(img.Layers) != 5 || len(img.Config.RootFS.DiffIDs) != 5 {
		t.Errorf("%d layers (%d diff ids), want 5", len(img.Layers), len(img.Config.RootFS.DiffIDs))
	}
	c := img.Config.Config
	checks := []struct {
		name      string
		got, want any
	}{
		{"author", img.Config.Author, "me"},
		{"env", c.Env, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=b", "C=d e"}},
		{"labels", c.Labels["x"], "y"},
		{"ports", len(c.ExposedPorts), 2},
		{"volumes", len(c.Volumes), 1},
		{"user", c.User, "app"},
		{"workdir", c.WorkingDir, "/etc"},
		{"shell", c.Shell, []string{"/bin/bash", "-c"}},
		{"cmd", c.Cmd, []string{"/bin/bash", "-c", "echo hi"}},
		{"entrypoint", c.Entrypoint, []string{"/bin/ep"}},
		{"stopsignal", c.StopSignal, "SIGTERM"},
		{"healthcheck", c.Healthcheck.Test, []string{"CMD-SHELL", "true"}},
		{"onbuild", c.OnBuild, []string{"RUN echo onbuild"}},
	}
	for _, ch := range checks {
		if !equal(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if _, ok := c.ExposedPorts["53/udp"]; !ok {
		t.Errorf("ports %v lack 53/udp", c.ExposedPorts)
	}
	// The RUN ran as the step's user, in its directory, with its shell,
	// env plus build args, no entrypoint and no healthcheck.
	r := e.be.runs[0]
	if r.User != "app" || r.WorkingDir != "/etc" || !slices.Equal(r.Cmd, []string{"/bin/bash", "-c", "echo $V"}) ||
		r.Entrypoint != nil || !slices.Contains(r.Env, "V=1") || r.Healthcheck.Test[0] != "NONE" {
		t.Errorf("RUN container config: %+v", r)
	}
	// WORKDIR made /app/sub (and /app) in its layers.
	if files := e.be.layerFiles(img.Layers[2].DiffID); files["app/sub/"] == "" {
		t.Errorf("WORKDIR sub layer: %v", files)
	}
}

func equal(a, b any) bool {
	switch x := a.(type) {
	case []string:
		return slices.Equal(x, b.([]string))
	}
	return a == b
}

func TestEntrypointResetsInheritedCmd(t *testing.T) {
	e := newTestEnv(t)
	img, _ := e.mustBuild("FROM busybox\nENTRYPOINT echo hi\n", Options{})
	c := img.Config.Config
	if c.Cmd != nil || !slices.Equal(c.Entrypoint, []string{"/bin/sh", "-c", "echo hi"}) {
		t.Errorf("cmd %q entrypoint %q; want no cmd and the shell-form entrypoint", c.Cmd, c.Entrypoint)
	}
}

func TestErrors(t *testing.T) {
	tests := []struct {
		name       string
		dockerfile string
		opts       Options
		kind       errdefs.Kind
		want       string // substring of the error
	}{
		{"unknown instruction", "FROM busybox\nRUN true\nFOO bar\n", Options{}, errdefs.KindInvalid, "line 3: unknown instruction: FOO"},
		{"no FROM", "ARG X=1\n", Options{}, errdefs.KindInvalid, "no FROM"},
		{"missing COPY source", "FROM busybox\nCOPY nothere /x\n", Options{}, errdefs.KindNotFound,
			"Dockerfile:2: COPY failed: file not found in build context or excluded by .dockerignore"},
		{"COPY outside the context", "FROM busybox\nCOPY ../outside /x\n", Options{}, errdefs.KindInvalid,
			"Dockerfile:2: COPY failed: forbidden path outside the build context"},
		{"unknown stage or image", "FROM busybox\nCOPY --from=nope /x /y\n", Options{}, errdefs.KindNotFound,
			"Dockerfile:2: invalid from flag value nope: pull access denied"},
		{"unknown base image", "FROM nosuchimage\n", Options{}, errdefs.KindNotFound, "Dockerfile:1: pull access denied for nosuchimage"},
		{"unknown target", "FROM busybox AS a\n", Options{Target: "b"}, errdefs.KindInvalid, `target stage "b" could not be found`},
		{"several sources need a dir", "FROM busybox\nCOPY a b /file\n", Options{}, errdefs.KindInvalid,
			"Dockerfile:2: When using COPY with more than one source file, the destination must be a directory and end with a /"},
		{"bad chmod", "FROM busybox\nCOPY --chmod=abc a /x\n", Options{}, errdefs.KindInvalid, "Dockerfile:2: invalid chmod parameter: abc"},
		{"unknown chown user", "FROM busybox\nCOPY --chown=nobody a /x\n", Options{}, errdefs.KindInvalid,
			"Dockerfile:2: unable to convert uid/gid chown string to host mapping: can't find uid for user nobody: no such user: nobody"},
		{"unknown chown group", "FROM busybox\nCOPY --chown=0:nogroup a /x\n", Options{}, errdefs.KindInvalid,
			"Dockerfile:2: unable to convert uid/gid chown string to host mapping: can't find gid for group nogroup: no such group: nogroup"},
		{"parse error with a line", "FROM busybox\nENV A=b C\n", Options{}, errdefs.KindInvalid,
			`dockerfile parse error on line 2: Syntax error - can't find = in "C"`},
		{"empty Dockerfile", "# nothing\n", Options{}, errdefs.KindInvalid, "file with no instructions"},
		{"RUN --mount", "FROM busybox\nRUN --mount=type=cache,target=/c true\n", Options{}, errdefs.KindNotImplemented, "Dockerfile:2: RUN --mount"},
		{"COPY a URL", "FROM busybox\nCOPY http://example.com/x /x\n", Options{}, errdefs.KindInvalid, "source can't be a URL for COPY"},
		{"other platform", "FROM --platform=linux/s390x busybox\n", Options{}, errdefs.KindInvalid, `Dockerfile:1: platform "linux/s390x" is not supported`},
		{"other build platform", "FROM busybox\n", Options{Platform: "windows/amd64"}, errdefs.KindInvalid, "is not supported"},
		{"bad tag", "FROM busybox\n", Options{Tags: []string{"UPPER:x"}}, errdefs.KindInvalid, "invalid reference format"},
		{"bad network", "FROM busybox\n", Options{NetworkMode: "container:x"}, errdefs.KindInvalid, "network mode"},
		{"duplicate stage", "FROM busybox AS a\nFROM busybox AS a\n", Options{}, errdefs.KindInvalid, "Dockerfile:2: a stage name already used"},
		{"bad stop signal", "FROM busybox\nSTOPSIGNAL SIGNOPE\n", Options{}, errdefs.KindInvalid, "Dockerfile:2: Invalid signal: SIGNOPE"},
		{"copy from itself", "FROM busybox AS a\nCOPY --from=a /x /y\n", Options{}, errdefs.KindInvalid, "invalid from flag value a"},
		{"blank base", "ARG B\nFROM $B\n", Options{}, errdefs.KindInvalid, "Dockerfile:2: base name ($B) should not be blank"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.write(map[string]string{"a": "a", "b": "b"})
			_, out, err := e.build(tt.dockerfile, tt.opts)
			if err == nil {
				t.Fatalf("build succeeded:\n%s", out)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
			if k := errdefs.KindOf(err); k != tt.kind {
				t.Errorf("error kind %v, want %v (%v)", k, tt.kind, err)
			}
			if len(e.be.tags) != 0 {
				t.Errorf("a failed build tagged %v", e.be.tags)
			}
		})
	}
}

func TestFailingRun(t *testing.T) {
	e := newTestEnv(t)
	e.be.run = func(cfg *container.Config) (string, int, map[string]string) {
		if cfg.Cmd[len(cfg.Cmd)-1] == "false" {
			return "oops\n", 1, nil
		}
		return "", 0, map[string]string{"ok": "1"}
	}
	_, out, err := e.build("FROM busybox\nRUN touch ok\nRUN false\nRUN never\n", Options{Tags: []string{"t"}})
	var exit *ExitError
	if !errors.As(err, &exit) || exit.Code != 1 || exit.Line != 3 {
		t.Fatalf("error %v (%#v), want an ExitError with code 1 on line 3", err, exit)
	}
	if err.Error() != "The command '/bin/sh -c false' returned a non-zero code: 1" {
		t.Errorf("error %q", err)
	}
	if !strings.Contains(out, "oops\n") || strings.Contains(out, "Step 4/4") {
		t.Errorf("output:\n%s", out)
	}
	if len(e.be.tags) != 0 || len(e.be.runs) != 2 {
		t.Errorf("tags %v, %d runs; want no tag and two runs", e.be.tags, len(e.be.runs))
	}
	// The completed step is cache for the next build.
	e.be.run = func(cfg *container.Config) (string, int, map[string]string) { return "", 0, nil }
	_, out, err = e.build("FROM busybox\nRUN touch ok\nRUN true\n", Options{})
	if err != nil || strings.Count(out, "Using cache") != 1 {
		t.Errorf("rebuild: %v\n%s", err, out)
	}
}

func TestArgsAndEnv(t *testing.T) {
	e := newTestEnv(t)
	e.be.registry[normRef(t, "busybox:1.36")] = busybox()
	val := func(s string) *string { return &s }
	df := `ARG TAG=latest
ARG UNUSED_META
FROM busybox:${TAG:-x} AS first
ARG TAG
ARG NAME=def
ENV HOME_DIR=/home/$NAME
WORKDIR $HOME_DIR
LABEL tag=$TAG name=${NAME} alt=${MISSING:-fallback} plus=${NAME:+set}
RUN echo $NAME
FROM busybox:1.36
ARG NAME
RUN echo second
`
	img, out := e.mustBuild(df, Options{
		Target:    "",
		BuildArgs: map[string]*string{"TAG": val("1.36"), "NAME": val("given"), "HTTP_PROXY": val("http://proxy"), "EXTRA": val("x"), "NILARG": nil},
	})
	if !strings.Contains(out, "[Warning] One or more build-args [EXTRA NILARG] were not consumed\n") {
		t.Errorf("no unused build-arg warning:\n%s", out)
	}
	// The first stage is not needed by the second: it never ran.
	if strings.Contains(out, "FROM busybox:${TAG:-x}") || len(e.be.runs) != 1 {
		t.Errorf("the first stage was built:\n%s", out)
	}
	// Second stage: NAME redeclared without a default takes --build-arg;
	// HTTP_PROXY is in the env but not in the history.
	r := e.be.runs[0]
	if !slices.Contains(r.Env, "NAME=given") || !slices.Contains(r.Env, "HTTP_PROXY=http://proxy") {
		t.Errorf("RUN env %v", r.Env)
	}
	last := img.Config.History[len(img.Config.History)-1].CreatedBy
	if last != "|1 NAME=given /bin/sh -c echo second" {
		t.Errorf("RUN history %q", last)
	}

	// Now the first stage as the target, with its defaults.
	e.be.runs = nil
	img, out = e.mustBuild(df, Options{Target: "first", BuildArgs: map[string]*string{"HTTP_PROXY": val("http://proxy")}})
	c := img.Config.Config
	wantLabels := map[string]string{"tag": "latest", "name": "def", "alt": "fallback", "plus": "set"}
	for k, v := range wantLabels {
		if c.Labels[k] != v {
			t.Errorf("label %s=%q, want %q (all: %v)", k, c.Labels[k], v, c.Labels)
		}
	}
	if c.WorkingDir != "/home/def" {
		t.Errorf("workdir %q", c.WorkingDir)
	}
	if !strings.Contains(out, "Step 1/9 : ARG TAG=latest\n") || !strings.Contains(out, "Step 3/9 : FROM busybox:${TAG:-x} AS first\n") {
		t.Errorf("steps:\n%s", out)
	}
	// Undeclared proxy args reach RUN but not the history ("|N" counts
	// only what history keeps, as Docker).
	last = img.Config.History[len(img.Config.History)-1].CreatedBy
	if last != "|2 NAME=def TAG=latest /bin/sh -c echo $NAME" {
		t.Errorf("RUN history %q", last)
	}
	if len(e.be.runs) != 1 || !slices.Contains(e.be.runs[0].Env, "HTTP_PROXY=http://proxy") {
		t.Errorf("runs %v", e.be.runs)
	}
}

func TestArgScopeEndsWithStage(t *testing.T) {
	e := newTestEnv(t)
	df := "FROM busybox AS a\nARG X=one\nLABEL a=$X\nFROM a\nLABEL b=${X:-unset}\n"
	img, _ := e.mustBuild(df, Options{})
	if l := img.Config.Config.Labels; l["a"] != "one" || l["b"] != "unset" {
		t.Errorf("labels %v", l)
	}
}

func TestEnvShadowsArg(t *testing.T) {
	e := newTestEnv(t)
	val := "fromarg"
	img, _ := e.mustBuild("FROM busybox\nARG V\nENV V=fromenv\nRUN echo $V\n", Options{BuildArgs: map[string]*string{"V": &val}})
	if h := img.Config.History[len(img.Config.History)-1].CreatedBy; h != "/bin/sh -c echo $V" {
		t.Errorf("RUN history %q: an arg shadowed by ENV is not a build arg of the step", h)
	}
}

func TestProxyArgOnlyGivesZeroCount(t *testing.T) {
	e := newTestEnv(t)
	p := "http://proxy"
	img, _ := e.mustBuild("FROM busybox\nRUN echo\n", Options{BuildArgs: map[string]*string{"http_proxy": &p}})
	if h := img.Config.History[len(img.Config.History)-1].CreatedBy; h != "|0 /bin/sh -c echo" {
		t.Errorf("RUN history %q, want Docker's |0 form", h)
	}
}

func TestMultiStage(t *testing.T) {
	e := newTestEnv(t)
	e.be.run = func(cfg *container.Config) (string, int, map[string]string) {
		cmd := cfg.Cmd[len(cfg.Cmd)-1]
		return "", 0, map[string]string{"out/" + strings.Fields(cmd)[1]: cmd}
	}
	df := `FROM busybox AS unused
RUN make unused
FROM busybox AS lib
RUN make lib
FROM busybox AS tool
RUN make tool
FROM scratch
COPY --from=lib /out/lib /lib
COPY --from=2 /out /tools/
COPY --from=busybox /etc/group /group
`
	img, out := e.mustBuild(df, Options{})
	var ran []string
	for _, r := range e.be.runs {
		ran = append(ran, r.Cmd[2])
	}
	if !slices.Equal(ran, []string{"make lib", "make tool"}) {
		t.Errorf("ran %v, want the lib and tool stages only", ran)
	}
	if !strings.Contains(out, "Step 1/8 : FROM busybox AS lib\n") {
		t.Errorf("steps:\n%s", out)
	}
	if img.Config.OS != "linux" || len(img.Layers) != 3 {
		t.Errorf("os %q, %d layers", img.Config.OS, len(img.Layers))
	}
	got := map[string]string{}
	for _, l := range img.Layers {
		for k, v := range e.be.layerFiles(l.DiffID) {
			got[k] = v
		}
	}
	for name, content := range map[string]string{"lib": "make lib", "tools/tool": "make tool", "group": busybox().files["etc/group"]} {
		if !strings.HasSuffix(got[name], " "+content) {
			t.Errorf("%s: %q, want content %q (all: %v)", name, got[name], content, got)
		}
	}
	// Rebuild: every step is cached, COPY --from included.
	runs, adds, _ := e.be.counts()
	e.mustBuild(df, Options{})
	if r, a, _ := e.be.counts(); r != runs || a != adds {
		t.Errorf("rebuild ran %d and stored %d layers", r-runs, a-adds)
	}
}

func TestOnbuildTriggers(t *testing.T) {
	e := newTestEnv(t)
	base, _ := e.mustBuild("FROM busybox\nONBUILD RUN echo trig\nONBUILD LABEL from=trigger\n", Options{Tags: []string{"base"}})
	if !slices.Equal(base.Config.Config.OnBuild, []string{"RUN echo trig", "LABEL from=trigger"}) {
		t.Fatalf("onbuild %v", base.Config.Config.OnBuild)
	}
	if len(e.be.runs) != 0 {
		t.Fatal("ONBUILD ran in the image that defines it")
	}
	img, out := e.mustBuild("FROM base\nLABEL after=1\n", Options{})
	if !strings.Contains(out, "Step 1/2 : FROM base\n# Executing 2 build triggers\n") {
		t.Errorf("output:\n%s", out)
	}
	if len(e.be.runs) != 1 || e.be.runs[0].Cmd[2] != "echo trig" {
		t.Errorf("runs %v", e.be.runs)
	}
	c := img.Config.Config
	if len(c.OnBuild) != 0 || c.Labels["from"] != "trigger" || c.Labels["after"] != "1" {
		t.Errorf("onbuild %v labels %v", c.OnBuild, c.Labels)
	}
}

func TestCacheInvalidation(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"src/a": "1", "other": "x"})
	val := func(s string) *string { return &s }
	df := "FROM busybox\nARG V=1\nENV E=1\nCOPY src /src\nRUN echo $V\nLABEL l=1\n"
	e.mustBuild(df, Options{})
	tests := []struct {
		name   string
		change func() (string, Options)
		cached int // steps reported as "Using cache"
		runs   int
	}{
		{"nothing", func() (string, Options) { return df, Options{} }, 5, 0},
		{"changed instruction", func() (string, Options) {
			return strings.Replace(df, "ENV E=1", "ENV E=2", 1), Options{}
		}, 1, 1},
		{"changed build arg", func() (string, Options) {
			return df, Options{BuildArgs: map[string]*string{"V": val("2")}}
		}, 3, 1},
		{"changed RUN", func() (string, Options) {
			return strings.Replace(df, "echo $V", "echo $V; true", 1), Options{}
		}, 3, 1},
		{"changed COPY content", func() (string, Options) {
			e.write(map[string]string{"src/a": "2"})
			return df, Options{}
		}, 2, 1},
		{"file outside the COPY changed", func() (string, Options) {
			e.write(map[string]string{"other": "y"})
			return df, Options{}
		}, 5, 0},
		{"no cache", func() (string, Options) { return df, Options{NoCache: true} }, 0, 1},
		{"label", func() (string, Options) { return df, Options{Labels: map[string]string{"k": "v"}} }, 5, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, opts := tt.change()
			runs, _, _ := e.be.counts()
			img, out := e.mustBuild(d, opts)
			if n := strings.Count(out, "Using cache"); n != tt.cached {
				t.Errorf("%d cached steps, want %d:\n%s", n, tt.cached, out)
			}
			if r, _, _ := e.be.counts(); r-runs != tt.runs {
				t.Errorf("%d runs, want %d", r-runs, tt.runs)
			}
			if opts.Labels != nil && img.Config.Config.Labels["k"] != "v" {
				t.Errorf("labels %v", img.Config.Config.Labels)
			}
		})
	}
}

func TestCacheEntryOfDeletedImageIsAMiss(t *testing.T) {
	e := newTestEnv(t)
	img, _ := e.mustBuild("FROM busybox\nLABEL a=b\n", Options{})
	delete(e.be.images, img.ID)
	_, out := e.mustBuild("FROM busybox\nLABEL a=b\n", Options{})
	if strings.Contains(out, "Using cache") {
		t.Errorf("a deleted image was a cache hit:\n%s", out)
	}
}

// Prune drops the entries of deleted images, and with all every entry, so
// the steps run again.
func TestPrune(t *testing.T) {
	e := newTestEnv(t)
	kept, _ := e.mustBuild("FROM busybox\nLABEL keep=1\n", Options{})
	gone, _ := e.mustBuild("FROM busybox\nLABEL gone=1\n", Options{})
	delete(e.be.images, gone.ID)
	pruned, err := e.b.Prune(context.Background(), false)
	if err != nil || len(pruned) != 1 {
		t.Fatalf("prune: %v %v (want the one entry whose image is gone)", pruned, err)
	}
	if _, out := e.mustBuild("FROM busybox\nLABEL keep=1\n", Options{}); !strings.Contains(out, "Using cache") {
		t.Errorf("the kept entry (%s) was pruned:\n%s", kept.ID, out)
	}
	if pruned, err := e.b.Prune(context.Background(), true); err != nil || len(pruned) != 1 {
		t.Fatalf("prune all: %v %v", pruned, err)
	}
	if _, out := e.mustBuild("FROM busybox\nLABEL keep=1\n", Options{}); strings.Contains(out, "Using cache") {
		t.Errorf("a cache hit after prune --all:\n%s", out)
	}
}

func TestChownAndChmod(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"f": "data"})
	tests := []struct {
		flags string
		want  string
		hist  string // the history text before the source hash
	}{
		// Docker writes --chown right against the hash, with no space.
		{"--chown=app:staff", "1000:50 644 data", " COPY --chown=app:stafffile:"},
		{"--chown=app", "1000:1001 644 data", " COPY --chown=appfile:"},
		{"--chown=7:8", "7:8 644 data", " COPY --chown=7:8file:"},
		{"--chmod=751", "0:0 751 data", " COPY --chmod=751 file:"},
		{"--chown=app --chmod=4755", "1000:1001 4755 data", " COPY --chown=app --chmod=4755 file:"},
	}
	for _, tt := range tests {
		t.Run(tt.flags, func(t *testing.T) {
			img, _ := e.mustBuild("FROM busybox\nCOPY "+tt.flags+" f /dst/f\n", Options{})
			files := e.be.layerFiles(img.Layers[len(img.Layers)-1].DiffID)
			if files["dst/f"] != tt.want {
				t.Errorf("dst/f: %q, want %q", files["dst/f"], tt.want)
			}
			if h := img.Config.History[len(img.Config.History)-1].CreatedBy; !strings.Contains(h, tt.hist) {
				t.Errorf("history %q lacks %q", h, tt.hist)
			}
		})
	}
}

func TestCopyIntoExistingDirectory(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"f": "data", "g": "more"})
	img, _ := e.mustBuild("FROM busybox\nCOPY f /etc\nCOPY f g /tmp/\nWORKDIR /w\nCOPY f .\n", Options{})
	got := map[string]string{}
	for _, l := range img.Layers {
		for k, v := range e.be.layerFiles(l.DiffID) {
			got[k] = v
		}
	}
	for _, name := range []string{"etc/f", "tmp/f", "tmp/g", "w/f"} {
		if got[name] == "" {
			t.Errorf("%s not copied (layers: %v)", name, got)
		}
	}
	// Docker checks the text: several sources need the trailing "/" even
	// when the destination is an existing directory.
	_, out, err := e.build("FROM busybox\nCOPY f g /tmp\n", Options{})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:2: When using COPY with more than one source file, the destination must be a directory and end with a /") {
		t.Errorf("COPY f g /tmp: %v\n%s", err, out)
	}
}

func TestFromScratchAndNetwork(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"f": "x"})
	img, out := e.mustBuild("FROM scratch\nCOPY f /f\nCMD [\"/f\"]\n", Options{})
	if !strings.Contains(out, "Step 1/3 : FROM scratch\n ---> \n") {
		t.Errorf("output:\n%s", out)
	}
	if img.Config.OS != "linux" || img.Config.Architecture != hostPlatform().arch || len(img.Layers) != 1 {
		t.Errorf("scratch image: %+v", img.Config)
	}
	if !slices.Contains(img.Config.Config.Env, defaultPath) {
		t.Errorf("env %v lacks the default PATH", img.Config.Config.Env)
	}
	e.mustBuild("FROM busybox\nRUN true\n", Options{NetworkMode: "none"})
	if m := e.be.hostCfgs[0].NetworkMode; m != "none" {
		t.Errorf("network mode %q", m)
	}
}

func TestEmptyRunAddsNoLayer(t *testing.T) {
	e := newTestEnv(t)
	img, _ := e.mustBuild("FROM busybox\nRUN true\n", Options{})
	if len(img.Layers) != 1 || !img.Config.History[len(img.Config.History)-1].EmptyLayer {
		t.Errorf("%d layers, history %+v", len(img.Layers), img.Config.History)
	}
}

func TestPull(t *testing.T) {
	e := newTestEnv(t)
	e.mustBuild("FROM busybox\n", Options{})
	e.mustBuild("FROM busybox\n", Options{})
	if len(e.be.pulls) != 1 {
		t.Errorf("pulls %v: a present image is not pulled again", e.be.pulls)
	}
	e.mustBuild("FROM busybox\nFROM busybox\n", Options{Pull: true})
	if len(e.be.pulls) != 2 {
		t.Errorf("pulls %v: --pull pulls once per build", e.be.pulls)
	}
	// The client's credentials go with each pull, picked for its ref.
	var asked []string
	auth := func(ref string) string { asked = append(asked, ref); return "creds-for-" + ref }
	e.mustBuild("FROM busybox\n", Options{Pull: true, RegistryAuth: auth})
	if got := e.be.pullAuths[len(e.be.pullAuths)-1]; len(asked) != 1 || got != "creds-for-"+asked[0] {
		t.Errorf("pull auth %q for %v", got, asked)
	}
}

func TestHeredocs(t *testing.T) {
	e := newTestEnv(t)
	df := "FROM busybox\nARG N=x\nRUN <<EOF\necho one\necho two\nEOF\nCOPY <<EOT /greeting\nhello $N\nEOT\n"
	img, _ := e.mustBuild(df, Options{})
	if c := e.be.runs[0].Cmd; !slices.Equal(c, []string{"/bin/sh", "-c", "echo one\necho two\n"}) {
		t.Errorf("RUN heredoc cmd %q", c)
	}
	files := e.be.layerFiles(img.Layers[len(img.Layers)-1].DiffID)
	if files["greeting"] != "0:0 644 hello x\n" {
		t.Errorf("COPY heredoc: %v", files)
	}
}

func TestAdd(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/files/app.conf" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Last-Modified", "Wed, 21 Oct 2015 07:28:00 GMT")
		io.WriteString(w, "conf")
	}))
	defer srv.Close()
	e := newTestEnv(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tarOf(t, map[string]string{"pkg/": "", "pkg/readme": "inside"}))
	zw.Close()
	e.write(map[string]string{"bundle.tar.gz": gz.String()})
	sum := sha256.Sum256([]byte("conf"))

	img, _ := e.mustBuild("FROM busybox\nADD "+srv.URL+"/files/app.conf /etc/\nADD --checksum=sha256:"+hex.EncodeToString(sum[:])+" "+srv.URL+"/files/app.conf /named\nADD bundle.tar.gz /opt/\n", Options{})
	n := len(img.Layers)
	if f := e.be.layerFiles(img.Layers[n-3].DiffID); f["etc/app.conf"] != "0:0 600 conf" {
		t.Errorf("ADD URL into a directory: %v", f)
	}
	if f := e.be.layerFiles(img.Layers[n-2].DiffID); f["named"] != "0:0 600 conf" {
		t.Errorf("ADD URL to a file name: %v", f)
	}
	if f := e.be.layerFiles(img.Layers[n-1].DiffID); f["opt/pkg/readme"] != "0:0 644 inside" {
		t.Errorf("ADD of a local archive is not extracted: %v", f)
	}
	// Docker gives a URL's hash no "file:" prefix.
	if h := img.Config.History[len(img.Config.History)-3].CreatedBy; h != "/bin/sh -c #(nop) ADD "+hex.EncodeToString(sum[:])+" in /etc/ " {
		t.Errorf("ADD URL history %q", h)
	}

	for _, tt := range []struct{ df, want string }{
		{"FROM busybox\nADD " + srv.URL + "/missing /x\n", "Dockerfile:2: ADD failed: failed to GET " + srv.URL + "/missing with status 404 Not Found"},
		{"FROM busybox\nADD --checksum=sha256:" + strings.Repeat("0", 64) + " " + srv.URL + "/files/app.conf /x\n", "Dockerfile:2: ADD failed: digest mismatch"},
	} {
		if _, out, err := e.build(tt.df, Options{}); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want %q\n%s", err, tt.want, out)
		}
	}
}

func TestDockerignoreAndCopyFromPull(t *testing.T) {
	e := newTestEnv(t)
	e.be.registry[normRef(t, "tools")] = busybox()
	e.write(map[string]string{"app/main": "m", "app/secret.key": "k", ".dockerignore": "**/*.key\n"})
	img, _ := e.mustBuild("FROM scratch\nCOPY app /app\nCOPY --from=tools /bin/sh /sh\n", Options{})
	files := e.be.layerFiles(img.Layers[0].DiffID)
	if files["app/main"] == "" || files["app/secret.key"] != "" {
		t.Errorf("COPY of a directory with an ignored file: %v", files)
	}
	if !slices.Equal(e.be.pulls, []string{"tools"}) {
		t.Errorf("pulls %v, want COPY --from to pull tools", e.be.pulls)
	}
	if files := e.be.layerFiles(img.Layers[1].DiffID); files["sh"] == "" {
		t.Errorf("COPY --from=tools: %v", files)
	}
}

// layerHeaders lists the tar headers of a stored layer by name.
func (f *fakeBackend) layerHeaders(t *testing.T, d digest.Digest) map[string]*tar.Header {
	t.Helper()
	f.mu.Lock()
	data := f.layers[d]
	f.mu.Unlock()
	out := map[string]*tar.Header{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("read layer %s: %v", d, err)
		}
		out[hdr.Name] = hdr
	}
}

// TestWorkdirDirsAndLinkedSources covers two differences from Docker's
// legacy builder a side-by-side comparison found: directories WORKDIR
// makes have the build's time as mtime (they had the epoch), and a COPY
// source that is a symlink to a directory is hashed as the directory it
// copies ("dir:" in history, and its files in the cache key).
func TestWorkdirDirsAndLinkedSources(t *testing.T) {
	e := newTestEnv(t)
	e.write(map[string]string{"dir/f": "one"})
	if err := os.Symlink("dir", filepath.Join(e.dir, "dirlink")); err != nil {
		t.Fatal(err)
	}
	df := "FROM busybox\nWORKDIR /w/x\nCOPY dirlink /dl\n"
	img, _ := e.mustBuild(df, Options{})
	n := len(img.Layers)
	wd := e.be.layerHeaders(t, img.Layers[n-2].DiffID)
	for _, name := range []string{"w/", "w/x/"} {
		h := wd[name]
		if h == nil {
			t.Fatalf("WORKDIR layer lacks %s: %v", name, wd)
		}
		// Any recent time will do; what matters is that it is not 1970.
		if h.ModTime.Year() < 2020 || h.Mode&0o7777 != 0o755 {
			t.Errorf("WORKDIR made %s with mtime %v mode %o, want now and 755", name, h.ModTime, h.Mode)
		}
	}
	if files := e.be.layerFiles(img.Layers[n-1].DiffID); files["dl/f"] != "0:0 644 one" {
		t.Errorf("COPY of a link to a directory: %v", files)
	}
	if h := img.Config.History[len(img.Config.History)-1].CreatedBy; !strings.Contains(h, " COPY dir:") {
		t.Errorf("history %q: a link to a directory is a dir: source", h)
	}
	// The cache key follows the link: a change in the directory is a miss.
	e.write(map[string]string{"dir/f": "two"})
	img, out := e.mustBuild(df, Options{})
	if strings.Count(out, "Using cache") != 1 {
		t.Errorf("only WORKDIR should be cached after a change behind the link:\n%s", out)
	}
	if files := e.be.layerFiles(img.Layers[len(img.Layers)-1].DiffID); files["dl/f"] != "0:0 644 two" {
		t.Errorf("rebuild copied %v", files)
	}
}
