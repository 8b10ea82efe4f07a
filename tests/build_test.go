package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeContext writes files (name -> content) under a new directory.
func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// tarOfFiles is a plain tar of regular files.
func tarOfFiles(files map[string]string) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
		tw.Write([]byte(data))
	}
	tw.Close()
	return buf.String()
}

// dockerBuild runs `DOCKER_BUILDKIT=0 docker build ARGS` against d.
func (d *daemon) dockerBuild(stdin io.Reader, args ...string) (string, string, int) {
	d.t.Helper()
	needDockerCLI(d.t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker", append([]string{"build"}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_CONFIG="+filepath.Join(d.root, "dockercfg"), "DOCKER_BUILDKIT=0")
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &so, &se, stdin
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("docker build %v: %v", args, err)
	}
	return so.String(), se.String(), code
}

const appDockerfile = `# a multi-stage build
ARG BASE=busybox
FROM ${BASE} AS build
ARG MSG=default
WORKDIR /src
COPY app.txt .
RUN echo "msg=$MSG $(cat app.txt)" > out.txt && cat out.txt

FROM busybox AS unused
RUN echo never built; exit 9

FROM busybox
COPY --from=build /src/out.txt /out.txt
ADD data.tar /data/
COPY dir/ /dir/
LABEL k=v
CMD ["cat", "/out.txt"]
`

// TestBuild drives skiff build and docker's legacy build against one
// daemon: a multi-stage build with --target, COPY/ADD, build args, RUN
// output, .dockerignore, the cache (hits, and a changed file re-running
// COPY and what follows), history, the same image id from both CLIs, and
// the failures (a failing RUN's exit code, a path outside the context).
func TestBuild(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	ctxDir := writeContext(t, map[string]string{
		"Dockerfile":     appDockerfile,
		"app.txt":        "v1",
		"data.tar":       tarOfFiles(map[string]string{"inside.txt": "from the tar"}),
		"dir/a.txt":      "a",
		"dir/secret.txt": "excluded",
		".dockerignore":  "dir/secret.txt\n",
	})

	out := d.must("build", "-t", "app:1", "--build-arg", "MSG=hi", ctxDir)
	for _, want := range []string{"Step 1/", "msg=hi v1", "Successfully built", "Successfully tagged app:1"} {
		if !strings.Contains(out, want) {
			t.Errorf("build output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "never built") {
		t.Errorf("a stage the target does not need was built:\n%s", out)
	}
	if got := d.must("run", "--rm", "app:1"); got != "msg=hi v1\n" {
		t.Errorf("run app:1 = %q", got)
	}
	if got := d.must("run", "--rm", "app:1", "sh", "-c", "cat /data/inside.txt; ls /dir"); got != "from the tara.txt\n" {
		t.Errorf("ADD extracts the tar, COPY dir/ copies its contents, .dockerignore applies: %q", got)
	}
	if got := d.must("inspect", "-f", "{{index .Config.Labels \"k\"}}", "app:1"); got != "v\n" {
		t.Errorf("label = %q", got)
	}
	hist := d.must("history", "--no-trunc", "--format", "{{.CreatedBy}}", "app:1")
	for _, want := range []string{`/bin/sh -c #(nop)  CMD ["cat" "/out.txt"]`, "/bin/sh -c #(nop)  LABEL k=v", "/bin/sh -c #(nop) COPY dir:", "/bin/sh -c #(nop) ADD file:"} {
		if !strings.Contains(hist, want) {
			t.Errorf("history lacks %q:\n%s", want, hist)
		}
	}
	if rows := strings.Fields(d.must("history", "-q", "app:1")); len(rows) != 6 { // busybox's row + 5 steps
		t.Errorf("history has %d rows, want 6:\n%s", len(rows), hist)
	}

	t.Run("target", func(t *testing.T) {
		out := d.must("build", "--target", "build", "-t", "app:build", ctxDir)
		if strings.Contains(out, "never built") || strings.Contains(out, "COPY --from") {
			t.Errorf("--target built more than its stage:\n%s", out)
		}
		if got := d.must("run", "--rm", "app:build", "cat", "/src/out.txt"); got != "msg=default v1\n" {
			t.Errorf("target stage's file: %q", got)
		}
	})

	iid := filepath.Join(t.TempDir(), "iid")
	t.Run("cache", func(t *testing.T) {
		first := strings.TrimSpace(d.must("build", "-q", "--build-arg", "MSG=hi", ctxDir))
		out := d.must("build", "--iidfile", iid, "--build-arg", "MSG=hi", ctxDir)
		if strings.Count(out, "Using cache") < 5 || strings.Contains(out, "Running in") {
			t.Errorf("unchanged rebuild did not use the cache:\n%s", out)
		}
		if b, _ := os.ReadFile(iid); string(b) != first || !strings.HasPrefix(first, "sha256:") {
			t.Errorf("rebuild id %q, first %q", b, first)
		}
		// A changed file: its COPY and the steps after it run again.
		os.WriteFile(filepath.Join(ctxDir, "app.txt"), []byte("v2"), 0o644)
		out = d.must("build", "--build-arg", "MSG=hi", "-t", "app:2", ctxDir)
		if !strings.Contains(out, "msg=hi v2") || !strings.Contains(out, "Running in") {
			t.Errorf("changed file did not re-run COPY and RUN:\n%s", out)
		}
		if d.must("run", "--rm", "app:2") != "msg=hi v2\n" {
			t.Errorf("app:2 has the old file")
		}
	})

	t.Run("docker CLI", func(t *testing.T) {
		// Same Dockerfile and context, sent as a tar by docker: same id.
		skiffID := strings.TrimSpace(d.must("build", "-q", "--build-arg", "MSG=hi", ctxDir))
		out, errOut, code := d.dockerBuild(nil, "--build-arg", "MSG=hi", "--iidfile", iid, "-t", "app:docker", ctxDir)
		if code != 0 {
			t.Fatalf("docker build: exit %d\n%s\n%s", code, out, errOut)
		}
		if b, _ := os.ReadFile(iid); string(b) != skiffID {
			t.Errorf("docker build id %q, skiff build id %q\n%s", b, skiffID, out)
		}
		if !strings.Contains(out, "Using cache") || !strings.Contains(out, "Successfully tagged app:docker") {
			t.Errorf("docker build output:\n%s", out)
		}
		out, _, code = d.dockerBuild(nil, "-q", "--build-arg", "MSG=hi", ctxDir)
		if code != 0 || strings.TrimSpace(out) != skiffID {
			t.Errorf("docker build -q: exit %d, %q", code, out)
		}
	})

	t.Run("failures", func(t *testing.T) {
		failing := "FROM busybox\nRUN echo failing-output; exit 3\n"
		out, errOut, code := d.skiffIn(strings.NewReader(failing), "build", "-t", "bad:1", "-f", "-", ctxDir)
		if code != 3 || !strings.Contains(out, "failing-output") || !strings.Contains(errOut, "returned a non-zero code: 3") {
			t.Errorf("failing RUN: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if got := d.must("images", "-q", "bad"); got != "" {
			t.Errorf("a failed build tagged bad:1: %q", got)
		}
		out, errOut, code = d.dockerBuild(strings.NewReader(failing), "-t", "bad:1", "-")
		if code != 3 || !strings.Contains(out, "failing-output") {
			t.Errorf("docker: failing RUN: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		out, errOut, code = d.skiffIn(strings.NewReader("FROM busybox\nCOPY ../outside /x\n"), "build", "-f", "-", ctxDir)
		if code != 1 || !strings.Contains(errOut, "outside the build context") {
			t.Errorf("COPY ../outside: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
		}
		if ps := d.must("ps", "-aq"); ps != "" {
			t.Errorf("build containers left: %q", ps)
		}
	})
}
