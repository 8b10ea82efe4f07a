package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// skiff-compose is built on first use only (it is large; hack/build.sh's
// flags, so the build cache is shared with it).
var (
	composeOnce sync.Once
	composeErr  error
)

func buildSkiffCompose(t *testing.T) {
	t.Helper()
	composeOnce.Do(func() {
		ver, err := exec.Command("sh", "-c", "cd ../cmd/skiff-compose && go list -m -f '{{.Version}}' github.com/docker/compose/v5").Output()
		if err != nil {
			composeErr = fmt.Errorf("compose version: %v", err)
			return
		}
		cmd := exec.Command("go", "build", "-trimpath",
			"-ldflags", "-s -w -X github.com/docker/compose/v5/internal.Version="+strings.TrimSpace(string(ver)),
			"-o", filepath.Join(binDir, "skiff-compose"), ".")
		cmd.Dir = "../cmd/skiff-compose"
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			composeErr = fmt.Errorf("build skiff-compose: %v\n%s", err, out)
		}
	})
	if composeErr != nil {
		t.Fatal(composeErr)
	}
}

// composeEnv runs compose clients against one daemon, from a project
// directory, with the real docker compose plugin in the docker CLI's config.
type composeEnv struct {
	d       *daemon
	dockcfg string
}

func newComposeEnv(t *testing.T, d *daemon) *composeEnv {
	t.Helper()
	cfg := filepath.Join(d.root, "dockercfg")
	home, _ := os.UserHomeDir()
	real := filepath.Join(home, ".cache", "skiff-test", "compose-v5.6.0", "docker-compose")
	if _, err := os.Stat(real); err != nil {
		t.Fatalf("docker compose v5.6.0 is not built (hack/clients.sh): %v", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg, "cli-plugins"), 0o700); err != nil {
		t.Fatal(err)
	}
	os.Symlink(real, filepath.Join(cfg, "cli-plugins", "docker-compose"))
	return &composeEnv{d: d, dockcfg: cfg}
}

// run runs bin (skiff or docker) with args in dir; stdout, stderr, exit code.
func (e *composeEnv) run(t *testing.T, dir string, env []string, bin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if bin == "skiff" {
		bin = filepath.Join(binDir, "skiff")
		args = append([]string{"-H", e.d.host}, args...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.d.host, "DOCKER_CONFIG="+e.dockcfg, "NO_COLOR=1")
	cmd.Env = append(cmd.Env, env...)
	var so, se strings.Builder
	cmd.Stdout, cmd.Stderr = &so, &se
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %v: %v", bin, args, err)
	}
	return so.String(), se.String(), code
}

// skiff runs `skiff compose ARGS` and fails the test unless it exits 0.
func (e *composeEnv) skiff(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := e.run(t, dir, nil, "skiff", append([]string{"compose"}, args...)...)
	if code != 0 {
		t.Fatalf("skiff compose %v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return out
}

// docker runs `docker compose ARGS` (the real plugin) and fails unless it
// exits 0.
func (e *composeEnv) docker(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := e.run(t, dir, nil, "docker", append([]string{"compose"}, args...)...)
	if code != 0 {
		t.Fatalf("docker compose %v: exit %d\n%s\n%s", args, code, out, errOut)
	}
	return out
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

type composePS struct {
	Name, Service, State, Health, Project string
	Publishers                            []struct {
		URL           string
		TargetPort    int
		PublishedPort int
		Protocol      string
	}
}

func parsePS(t *testing.T, out string) []composePS {
	t.Helper()
	var rows []composePS
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r composePS
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("ps --format json line %q: %v", line, err)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	return rows
}

func psNames(rows []composePS) string {
	var n []string
	for _, r := range rows {
		n = append(n, r.Name+":"+r.State)
	}
	return strings.Join(n, " ")
}

// TestCompose drives compose projects with `skiff compose` and cross-checks
// them with the real docker compose v5 plugin on the same engine.
func TestCompose(t *testing.T) {
	t.Parallel()
	buildSkiffCompose(t)
	d := startDaemon(t)
	d.importBusybox()
	e := newComposeEnv(t, d)

	t.Run("Project", func(t *testing.T) { t.Parallel(); testComposeProject(t, e) })
	t.Run("DockerUpSkiffDown", func(t *testing.T) { t.Parallel(); testComposeDockerUp(t, e) })
	t.Run("Config", func(t *testing.T) { t.Parallel(); testComposeConfig(t, e) })
	t.Run("BrokenFile", func(t *testing.T) { t.Parallel(); testComposeBroken(t, e) })
	t.Run("InstallPlugin", func(t *testing.T) { t.Parallel(); testComposeInstallPlugin(t, e) })
	t.Run("Commands", func(t *testing.T) { t.Parallel(); testComposeCommands(t, e) })
	t.Run("Foreground", func(t *testing.T) { t.Parallel(); testComposeForeground(t, e) })
	t.Run("Recreate", func(t *testing.T) { t.Parallel(); testComposeRecreate(t, e) })
	t.Run("TopLevel", func(t *testing.T) { t.Parallel(); testComposeTopLevel(t, e) })
	t.Run("Tty", func(t *testing.T) { t.Parallel(); testComposeTty(t, e) })
	t.Run("Flags", func(t *testing.T) { t.Parallel(); testComposeFlags(t, e) })
	t.Run("CtrlC", func(t *testing.T) { t.Parallel(); testComposeCtrlC(t, e) })
	t.Run("Globals", func(t *testing.T) { t.Parallel(); testComposeGlobals(t, e) })
	t.Run("MoreFlags", func(t *testing.T) { t.Parallel(); testComposeMoreFlags(t, e) })
	reg := startRegistry(t, "", "")
	t.Run("Failures", func(t *testing.T) { t.Parallel(); testComposeFailures(t, e, reg) })
	t.Run("PullPush", func(t *testing.T) { t.Parallel(); testComposePullPush(t, e, reg) })
}

// The whole project: a web service built from a Dockerfile, healthy before
// its dependant starts, a published port, a named volume and a bind mount,
// two networks with aliases, a secret, .env, and a scaled worker.
func testComposeProject(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".env": "GREETING=hello-from-env\nWORKERS=2\n",
		"compose.yaml": `name: skproj
services:
  web:
    build:
      context: ./web
      args:
        PAGE: built-page
    ports:
      - "127.0.0.1::80"
    environment:
      GREETING: ${GREETING}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O-", "http://127.0.0.1/index.html"]
      interval: 1s
      timeout: 2s
      retries: 20
    volumes:
      - data:/data
      - ./site:/site:ro
    networks:
      front:
        aliases: [www]
      back:
        aliases: [web-back]
    secrets: [token]
  client:
    image: busybox
    command: ["sleep", "600"]
    init: true
    depends_on:
      web:
        condition: service_healthy
    networks: [front]
  worker:
    image: busybox
    command: ["sh", "-c", "echo worker up; exec sleep 600"]
    init: true
    scale: ${WORKERS}
    networks: [back]
networks:
  front: {}
  back: {}
volumes:
  data: {}
secrets:
  token:
    file: ./token.txt
`,
		"web/Dockerfile": "FROM busybox\nARG PAGE\nRUN mkdir -p /www && echo \"$PAGE\" > /www/index.html\n" +
			"CMD [\"httpd\", \"-f\", \"-p\", \"80\", \"-h\", \"/www\"]\n",
		"site/hello.txt": "from the bind mount\n",
		"token.txt":      "s3cret\n",
	})

	e.skiff(t, dir, "up", "-d")

	rows := parsePS(t, e.skiff(t, dir, "ps", "--format", "json"))
	if got, want := psNames(rows), "skproj-client-1:running skproj-web-1:running skproj-worker-1:running skproj-worker-2:running"; got != want {
		t.Fatalf("ps: %s, want %s", got, want)
	}
	var port int
	for _, r := range rows {
		if r.Name == "skproj-web-1" {
			if r.Health != "healthy" {
				t.Errorf("web health %q: client started before web was healthy", r.Health)
			}
			for _, p := range r.Publishers {
				if p.TargetPort == 80 && p.PublishedPort != 0 {
					port = p.PublishedPort
				}
			}
		}
	}
	// The published port, from the host and as `port` reports it.
	if out := strings.TrimSpace(e.skiff(t, dir, "port", "web", "80")); out != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("port web 80: %q, ps says %d", out, port)
	}
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/index.html", port))
	if err != nil {
		t.Fatalf("GET published port %d: %v", port, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "built-page" {
		t.Errorf("published port body %q", body)
	}

	// Inside the containers: the network alias on front, back is another
	// network (the client is not on it), .env, the secret, both mounts.
	for _, c := range []struct{ svc, cmd, want string }{
		{"client", "wget -q -O- http://www/index.html", "built-page"},
		{"client", "nslookup web-back >/dev/null 2>&1 && echo reachable || echo unreachable", "unreachable"},
		{"worker", "wget -q -O- http://web-back/index.html", "built-page"},
		{"web", "echo $GREETING", "hello-from-env"},
		{"web", "cat /run/secrets/token", "s3cret"},
		{"web", "cat /site/hello.txt", "from the bind mount"},
		{"web", "echo kept > /data/f && cat /data/f", "kept"},
	} {
		if out := strings.TrimSpace(e.skiff(t, dir, "exec", "-T", c.svc, "sh", "-c", c.cmd)); out != c.want {
			t.Errorf("exec %s %q: %q, want %q", c.svc, c.cmd, out, c.want)
		}
	}
	if out := e.skiff(t, dir, "logs", "--no-color", "worker"); !regexp.MustCompile(`worker-1 +\| worker up`).MatchString(out) || !regexp.MustCompile(`worker-2 +\| worker up`).MatchString(out) {
		t.Errorf("logs worker: %q", out)
	}

	// run --rm: a one-off container, gone afterwards.
	if out := strings.TrimSpace(e.skiff(t, dir, "run", "--rm", "-T", "--no-deps", "client", "echo", "one-off")); out != "one-off" {
		t.Errorf("run --rm: %q", out)
	}
	if out := e.skiff(t, dir, "ps", "-a", "-q"); len(strings.Fields(out)) != 4 {
		t.Errorf("after run --rm, ps -a -q: %q", out)
	}

	e.skiff(t, dir, "scale", "worker=3")
	if out := e.skiff(t, dir, "ps", "-q", "worker"); len(strings.Fields(out)) != 3 {
		t.Errorf("after scale worker=3: %q", out)
	}
	e.skiff(t, dir, "stop", "-t", "1", "worker")
	rows = parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json", "worker"))
	if got := psNames(rows); got != "skproj-worker-1:exited skproj-worker-2:exited skproj-worker-3:exited" {
		t.Errorf("after stop: %s", got)
	}
	e.skiff(t, dir, "start", "worker")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "--format", "json", "worker"))); got != "skproj-worker-1:running skproj-worker-2:running skproj-worker-3:running" {
		t.Errorf("after start: %s", got)
	}

	// The real docker compose sees the project skiff made, and takes it down.
	if out := e.docker(t, dir, "ls", "--filter", "name=skproj"); !strings.Contains(out, "running(5)") {
		t.Errorf("docker compose ls: %q", out)
	}
	if got := psNames(parsePS(t, e.docker(t, dir, "ps", "--format", "json"))); !strings.Contains(got, "skproj-web-1:running") {
		t.Errorf("docker compose ps: %s", got)
	}
	e.docker(t, dir, "down", "-v", "-t", "1")
	for _, c := range [][]string{{"ps", "-a", "-q", "--filter", "label=com.docker.compose.project=skproj"},
		{"volume", "ls", "-q", "--filter", "name=skproj_"}, {"network", "ls", "-q", "--filter", "name=skproj_"}} {
		if out, _, _ := e.run(t, dir, nil, "skiff", c...); strings.TrimSpace(out) != "" {
			t.Errorf("after down -v, %v: %q", c, out)
		}
	}
}

// docker compose brings a project up; skiff compose lists and removes it.
func testComposeDockerUp(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": `services:
  app:
    image: busybox
    command: ["sleep", "600"]
    init: true
    volumes: [vol:/v]
volumes:
  vol: {}
`})
	e.docker(t, dir, "-p", "dkproj", "up", "-d")
	if out := e.skiff(t, dir, "ls", "--filter", "name=dkproj"); !strings.Contains(out, "running(1)") {
		t.Errorf("skiff compose ls: %q", out)
	}
	if out := strings.TrimSpace(e.skiff(t, dir, "-p", "dkproj", "ps", "--format", "{{.Name}} {{.Service}}")); out != "dkproj-app-1 app" {
		t.Errorf("skiff compose ps: %q", out)
	}
	// Same configuration, same hash: nothing to recreate.
	_, errOut, code := e.run(t, dir, nil, "skiff", "compose", "-p", "dkproj", "up", "-d")
	if code != 0 || !strings.Contains(errOut, "Running") {
		t.Errorf("skiff compose up on docker's project: exit %d %q", code, errOut)
	}
	e.skiff(t, dir, "-p", "dkproj", "down", "-v", "-t", "1")
	if out := e.docker(t, dir, "ls", "-a", "--filter", "name=dkproj"); strings.Contains(out, "dkproj") {
		t.Errorf("docker compose ls after skiff down: %q", out)
	}
}

// config: interpolation, --services, --volumes, -q; byte for byte what
// docker compose prints.
func testComposeConfig(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		".env": "TAG=1.36\n",
		"compose.yaml": `services:
  a:
    image: busybox:${TAG}
    command: echo $$HOME ${MISSING:-dflt}
    environment:
      REQ: ${REQ?REQ must be set}
  b:
    image: busybox
    volumes: [v1:/x]
volumes:
  v1: {}
`})
	env := []string{"REQ=given"}
	sorted := func(s string) string {
		l := strings.Split(s, "\n")
		sort.Strings(l)
		return strings.Join(l, "\n")
	}
	for _, args := range [][]string{{"config"}, {"config", "--services"}, {"config", "--volumes"}, {"config", "-q"}} {
		so, se, code := e.run(t, dir, env, "skiff", append([]string{"compose"}, args...)...)
		dso, dse, dcode := e.run(t, dir, env, "docker", append([]string{"compose"}, args...)...)
		if args[len(args)-1] == "--services" {
			so, dso = sorted(so), sorted(dso)
		}
		if code != 0 || so != dso || se != dse || code != dcode {
			t.Errorf("%v: skiff exit %d %q %q; docker exit %d %q %q", args, code, so, se, dcode, dso, dse)
		}
	}
	so, _, _ := e.run(t, dir, env, "skiff", "compose", "config")
	for _, want := range []string{"image: busybox:1.36", "- $$HOME", "- dflt", "REQ: given"} {
		if !strings.Contains(so, want) {
			t.Errorf("config lacks %q:\n%s", want, so)
		}
	}
	// compose lists services in no fixed order
	if so, _, _ := e.run(t, dir, env, "skiff", "compose", "config", "--services"); sorted(so) != "\na\nb" {
		t.Errorf("config --services: %q", so)
	}
	if so, se, code := e.run(t, dir, env, "skiff", "compose", "config", "-q"); so != "" || se != "" || code != 0 {
		t.Errorf("config -q: %q", so)
	}
	// ${REQ?...} unset: the error, as compose says it.
	_, se, code := e.run(t, dir, nil, "skiff", "compose", "config")
	_, dse, dcode := e.run(t, dir, nil, "docker", "compose", "config")
	// skiff's names the line of the key ("FILE:LINE: " and compose's words)
	if code == 0 || code != dcode || se != filepath.Join(dir, "compose.yaml")+":6: "+dse || !strings.Contains(se, "REQ must be set") {
		t.Errorf("missing REQ: skiff exit %d %q, docker exit %d %q", code, se, dcode, dse)
	}
}

// A broken file: compose's exit code (1) and compose's words, with the file,
// the line and the key in front ("FILE:LINE: KEY: ..."), which compose's
// loader leaves out: the line always, the file from a YAML syntax error
// without -p, the key from a syntax error.
func testComposeBroken(t *testing.T, e *composeEnv) {
	for _, c := range []struct {
		name  string
		files map[string]string
		args  []string
		// the message skiff prints, from the compose file's path and
		// docker compose's message
		want func(file, docker string) string
	}{
		{"syntax", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n   command: [x\n"}, nil,
			func(f, d string) string { return f + ":4: services.web.command: " + d }},
		{"syntax -p", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n   command: [x\n"}, []string{"-p", "x"},
			func(f, d string) string {
				return f + ":4: services.web.command: " + strings.TrimPrefix(d, "failed to parse "+f+": ")
			}},
		{"unterminated quote", map[string]string{"compose.yaml": "services:\n  web:\n    image: \"busybox\n"}, nil,
			func(f, d string) string { return f + ":3: services.web.image: " + d }},
		{"wrong type", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    ports: 5\n"}, nil,
			func(f, d string) string { return f + ":4: services.web.ports must be a array" }},
		{"unknown key", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    portz: [\"80\"]\n"}, nil,
			func(f, d string) string { return f + ":4: services.web.portz: unknown key" }},
		{"bad value", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    ports: [\"80\"]\n    mem_limit: lots\n"}, nil,
			func(f, d string) string { return f + ":5: 'services[web].mem_limit' invalid size: 'lots'" }},
		// the value in use comes from the override file: that is the one named
		{"override file", map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n",
			"compose.override.yaml": "services:\n  web:\n    healthcheck:\n      interval: banana\n"}, nil,
			func(f, d string) string {
				return strings.TrimSuffix(f, "compose.yaml") + "compose.override.yaml:4: 'services[web].healthcheck.interval' time: invalid duration \"banana\""
			}},
	} {
		dir := t.TempDir()
		writeFiles(t, dir, c.files)
		file := filepath.Join(dir, "compose.yaml")
		_, se, code := e.run(t, dir, nil, "skiff", append(append([]string{"compose"}, c.args...), "config")...)
		_, dse, dcode := e.run(t, dir, nil, "docker", append(append([]string{"compose"}, c.args...), "config")...)
		if code != 1 || dcode != 1 {
			t.Errorf("%s: skiff exit %d, docker exit %d, want 1", c.name, code, dcode)
		}
		// docker's own message is still there, and nothing else is said
		if want := c.want(file, strings.TrimSpace(dse)) + "\n"; se != want {
			t.Errorf("%s: skiff says\n%q, want\n%q (docker says %q)", c.name, se, want, dse)
		}
		// up says the same and creates nothing
		if _, ue, ucode := e.run(t, dir, nil, "skiff", append(append([]string{"compose"}, c.args...), "up", "-d")...); ucode != 1 || ue != se {
			t.Errorf("%s: up: exit %d %q, config said %q", c.name, ucode, ue, se)
		}
	}
}

// install-plugin makes skiff's compose the docker CLI's.
func testComposeInstallPlugin(t *testing.T, e *composeEnv) {
	cfg := t.TempDir()
	env := []string{"DOCKER_CONFIG=" + cfg}
	for i := 0; i < 2; i++ { // the second time: already installed
		if out, se, code := e.run(t, cfg, env, "skiff", "compose", "install-plugin"); code != 0 || !strings.Contains(out, filepath.Join(cfg, "cli-plugins", "docker-compose")) {
			t.Fatalf("install-plugin: exit %d %q %q", code, out, se)
		}
	}
	out, se, code := e.run(t, cfg, env, "docker", "compose", "version")
	if code != 0 || !strings.Contains(out, "Docker Compose version v5.6.0 (skiff-compose") {
		t.Errorf("docker compose version: exit %d %q %q", code, out, se)
	}
	if out, se, code := e.run(t, cfg, env, "docker", "compose", "ls", "-a"); code != 0 || !strings.HasPrefix(out, "NAME") {
		t.Errorf("docker compose ls: exit %d %q %q", code, out, se)
	}
	// Someone else's plugin stays unless --force.
	link := filepath.Join(cfg, "cli-plugins", "docker-compose")
	os.Remove(link)
	os.WriteFile(link, []byte("#!/bin/sh\n"), 0o755)
	if _, se, code := e.run(t, cfg, env, "skiff", "compose", "install-plugin"); code == 0 || !strings.Contains(se, "--force") {
		t.Errorf("install-plugin over another plugin: exit %d %q", code, se)
	}
	if _, se, code := e.run(t, cfg, env, "skiff", "compose", "install-plugin", "--force"); code != 0 {
		t.Errorf("install-plugin --force: exit %d %q", code, se)
	}
	if out, _, _ := e.run(t, cfg, env, "skiff", "compose", "version", "--short"); strings.TrimSpace(out) != "5.6.0" {
		t.Errorf("version --short: %q", out)
	}
}

// More of compose's commands and keys on one project: profiles, extends,
// configs, resource limits, a one-shot job gating a service, up --wait,
// top, images, pause/unpause, kill -s, restart, exec's options, rm -s -v,
// up --exit-code-from, down --rmi local.
func testComposeCommands(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"base.yaml": `services:
  common:
    image: busybox
    init: true
    environment:
      FROM_BASE: "yes"
`,
		"app.conf": "conf-body\n",
		// compose's classic builder (no buildx plugin) has no dockerfile_inline
		"exit.Dockerfile": "FROM busybox\nARG CODE\nRUN echo $CODE > /code\n",
		"compose.yaml": `name: skcmds
services:
  job:
    image: busybox
    command: ["sh", "-c", "echo job done"]
  app:
    extends:
      file: base.yaml
      service: common
    command: ["sleep", "600"]
    configs:
      - source: appconf
        target: /etc/app.conf
    deploy:
      resources:
        limits:
          cpus: "0.5"
          memory: 64M
    depends_on:
      job:
        condition: service_completed_successfully
  extra:
    image: busybox
    profiles: [debug]
    command: ["sleep", "600"]
  tagged:
    build:
      context: .
      dockerfile: exit.Dockerfile
      args:
        CODE: "3"
    command: ["sh", "-c", "exit $$(cat /code)"]
    profiles: [exit]
configs:
  appconf:
    file: ./app.conf
`})
	e.skiff(t, dir, "up", "-d", "--wait")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json"))); got != "skcmds-app-1:running skcmds-job-1:exited" {
		t.Errorf("ps: %s (profiles left extra out; the job ran first)", got)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "-T", "app", "cat", "/etc/app.conf"}, "conf-body"},
		{[]string{"exec", "-T", "app", "sh", "-c", "echo $FROM_BASE"}, "yes"},
		{[]string{"exec", "-T", "-u", "65534", "-e", "V=1", "-w", "/tmp", "app", "sh", "-c", "echo $(id -u) $V $PWD"}, "65534 1 /tmp"},
		{[]string{"exec", "-T", "app", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}, "67108864"},
		{[]string{"logs", "--no-color", "--no-log-prefix", "job"}, "job done"},
	} {
		if out := strings.TrimSpace(e.skiff(t, dir, c.args...)); out != c.want {
			t.Errorf("%v: %q, want %q", c.args, out, c.want)
		}
	}
	e.skiff(t, dir, "exec", "-d", "app", "sh", "-c", "sleep 500")
	if out := e.skiff(t, dir, "top", "app"); !strings.Contains(out, "sleep 500") {
		t.Errorf("top: %q", out)
	}
	if out := e.skiff(t, dir, "images"); !strings.Contains(out, "skcmds-app-1") || !strings.Contains(out, "busybox") {
		t.Errorf("images: %q", out)
	}
	e.skiff(t, dir, "pause", "app")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "--format", "json", "app"))); got != "skcmds-app-1:paused" {
		t.Errorf("after pause: %s", got)
	}
	e.skiff(t, dir, "unpause", "app")
	e.skiff(t, dir, "restart", "-t", "1", "app")
	e.skiff(t, dir, "kill", "-s", "KILL", "app")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json", "app"))); got != "skcmds-app-1:exited" {
		t.Errorf("after kill: %s", got)
	}
	e.skiff(t, dir, "rm", "-f", "-s", "-v", "app")
	e.skiff(t, dir, "--profile", "exit", "build", "--no-cache", "tagged")
	// --profile brings in tagged; --exit-code-from returns the service's code.
	_, se, code := e.run(t, dir, nil, "skiff", "compose", "--profile", "exit", "up", "--exit-code-from", "tagged", "tagged")
	if code != 3 {
		t.Errorf("up --exit-code-from tagged: exit %d, want 3\n%s", code, se)
	}
	e.skiff(t, dir, "--profile", "exit", "--profile", "debug", "down", "--rmi", "local", "-t", "1")
	if out, _, _ := e.run(t, dir, nil, "skiff", "images", "-q", "skcmds-tagged"); strings.TrimSpace(out) != "" {
		t.Errorf("down --rmi local left the built image: %q", out)
	}
}

// up in the foreground: logs prefixed per service, --abort-on-container-exit;
// run -p and --service-ports; a port already taken fails with a clear error;
// create, wait, logs --tail -t.
func testComposeForeground(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": `name: skfg
services:
  short:
    image: busybox
    command: ["sh", "-c", "echo short says hi; sleep 1; exit 4"]
  long:
    image: busybox
    init: true
    command: ["sh", "-c", "echo long up; exec sleep 600"]
  srv:
    image: busybox
    profiles: [srv]
    init: true
    command: ["sleep", "600"]
    ports: ["127.0.0.1:${SRVPORT}:8080"]
`})
	out, se, code := e.run(t, dir, nil, "skiff", "compose", "up", "--no-color", "--abort-on-container-exit", "-t", "1")
	// (compose pads the prefixes to the names it knows at that moment)
	if code != 4 || !regexp.MustCompile(`short-1 +\| short says hi`).MatchString(out) || !regexp.MustCompile(`long-1 +\| long up`).MatchString(out) {
		t.Errorf("up --abort-on-container-exit: exit %d, want 4\n%s\n%s", code, out, se)
	}
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json"))); got != "skfg-long-1:exited skfg-short-1:exited" {
		t.Errorf("after abort: %s", got)
	}
	// create, start, wait, logs --tail -t
	e.skiff(t, dir, "create", "--force-recreate", "short")
	e.skiff(t, dir, "start", "short")
	if out, _, code := e.run(t, dir, nil, "skiff", "compose", "wait", "short"); code != 4 || !strings.Contains(out, "exited with status code 4") {
		t.Errorf("wait: exit %d %q", code, out)
	}
	if out := strings.TrimSpace(e.skiff(t, dir, "logs", "--no-color", "--tail", "1", "-t", "short")); !strings.Contains(out, "short says hi") || strings.Count(out, "\n") != 0 || !strings.Contains(out, "T") {
		t.Errorf("logs --tail 1 -t: %q", out)
	}
	// A port already taken: a clear error, nothing half started.
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*netTCPAddr).Port
	env := []string{fmt.Sprintf("SRVPORT=%d", port)}
	_, se, code = e.run(t, dir, env, "skiff", "compose", "--profile", "srv", "up", "-d", "srv")
	ln.Close()
	if code == 0 || !strings.Contains(se, "skfg-srv-1") || !strings.Contains(se, fmt.Sprint(port)) {
		t.Errorf("up on a taken port: exit %d %q", code, se)
	}
	// run --service-ports publishes srv's port; -p adds one.
	ln2, _ := listenLoopback()
	free := ln2.Addr().(*netTCPAddr).Port
	ln2.Close()
	env = []string{fmt.Sprintf("SRVPORT=%d", free)}
	_, se, code = e.run(t, dir, env, "skiff", "compose", "--profile", "srv", "run", "-d", "--service-ports", "--name", "skfg-svcports", "srv")
	if code != 0 {
		t.Fatalf("run --service-ports: exit %d %s", code, se)
	}
	if out, _, _ := e.run(t, dir, nil, "skiff", "port", "skfg-svcports", "8080"); strings.TrimSpace(out) != fmt.Sprintf("127.0.0.1:%d", free) {
		t.Errorf("run --service-ports: port %q, want %d", out, free)
	}
	_, se, code = e.run(t, dir, env, "skiff", "compose", "--profile", "srv", "run", "-d", "-p", "127.0.0.1::9090", "--name", "skfg-p", "srv")
	if out, _, _ := e.run(t, dir, nil, "skiff", "port", "skfg-p", "9090"); code != 0 || !strings.HasPrefix(out, "127.0.0.1:") {
		t.Errorf("run -p: exit %d %q %s", code, out, se)
	}
	e.run(t, dir, env, "skiff", "compose", "--profile", "srv", "down", "-t", "1", "--remove-orphans")
	if out, _, _ := e.run(t, dir, nil, "skiff", "ps", "-a", "-q", "--filter", "label=com.docker.compose.project=skfg"); strings.TrimSpace(out) != "" {
		t.Errorf("after down: %q", out)
	}
}

type netTCPAddr = net.TCPAddr

func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// Containers are recreated only when their configuration changed (the
// config-hash label), or when asked; stats, cp and port --index.
func testComposeRecreate(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	yml := `name: skre
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "600"]
    environment: {V: "%s"}
    ports: ["127.0.0.1::80"]
`
	writeFiles(t, dir, map[string]string{"compose.yaml": fmt.Sprintf(yml, "1")})
	e.skiff(t, dir, "up", "-d", "--scale", "app=2")
	id := func() string {
		out, _, _ := e.run(t, dir, nil, "skiff", "inspect", "-f", "{{.Id}}", "skre-app-1")
		return strings.TrimSpace(out)
	}
	first := id()
	if _, se, _ := e.run(t, dir, nil, "skiff", "compose", "up", "-d", "--scale", "app=2"); !strings.Contains(se, "Running") || id() != first {
		t.Errorf("unchanged up recreated: %q", se)
	}
	writeFiles(t, dir, map[string]string{"compose.yaml": fmt.Sprintf(yml, "2")})
	e.skiff(t, dir, "up", "-d", "--no-recreate", "--scale", "app=2")
	if id() != first {
		t.Errorf("--no-recreate recreated")
	}
	if _, se, _ := e.run(t, dir, nil, "skiff", "compose", "up", "-d", "--scale", "app=2"); !strings.Contains(se, "Recreated") || id() == first {
		t.Errorf("changed config not recreated: %q", se)
	}
	second := id()
	e.skiff(t, dir, "up", "-d", "--force-recreate", "--scale", "app=2")
	if id() == second {
		t.Errorf("--force-recreate kept the container")
	}
	if out := strings.TrimSpace(e.skiff(t, dir, "exec", "-T", "--index", "2", "app", "sh", "-c", "echo $V")); out != "2" {
		t.Errorf("exec --index 2: %q", out)
	}
	p1 := strings.TrimSpace(e.skiff(t, dir, "port", "--index", "1", "app", "80"))
	p2 := strings.TrimSpace(e.skiff(t, dir, "port", "--index", "2", "app", "80"))
	if p1 == p2 || !strings.HasPrefix(p2, "127.0.0.1:") {
		t.Errorf("port --index: %q %q", p1, p2)
	}
	writeFiles(t, dir, map[string]string{"f.txt": "copied\n"})
	e.skiff(t, dir, "cp", "f.txt", "app:/tmp/f.txt")
	if out := strings.TrimSpace(e.skiff(t, dir, "exec", "-T", "app", "cat", "/tmp/f.txt")); out != "copied" {
		t.Errorf("cp: %q", out)
	}
	if out := e.skiff(t, dir, "stats", "--no-stream", "--format", "{{.Name}}"); !strings.Contains(out, "skre-app-1") {
		t.Errorf("stats: %q", out)
	}
	e.skiff(t, dir, "down", "-t", "1")
}

// Top-level networks and volumes with their options: ipam, internal,
// external, name, driver_opts; cpus and memory reservations.
func testComposeTopLevel(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	if out, se, code := e.run(t, dir, nil, "skiff", "network", "create", "sktl-ext"); code != 0 {
		t.Fatalf("network create: %s %s", out, se)
	}
	defer e.run(t, dir, nil, "skiff", "network", "rm", "sktl-ext")
	if out, se, code := e.run(t, dir, nil, "skiff", "volume", "create", "sktl-extvol"); code != 0 {
		t.Fatalf("volume create: %s %s", out, se)
	}
	defer e.run(t, dir, nil, "skiff", "volume", "rm", "sktl-extvol")
	writeFiles(t, dir, map[string]string{"compose.yaml": `name: sktl
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "600"]
    networks:
      inner:
        ipv4_address: 172.29.7.10
      ext: {}
    volumes: [named:/n, ext:/e]
    deploy:
      resources:
        limits: {cpus: "0.25"}
        reservations: {memory: 16M}
networks:
  inner:
    internal: true
    ipam:
      config: [{subnet: 172.29.7.0/24}]
  ext:
    external: true
    name: sktl-ext
volumes:
  named:
    name: sktl-custom-name
    driver_opts: {type: tmpfs, device: tmpfs}
  ext:
    external: true
    name: sktl-extvol
`})
	e.skiff(t, dir, "up", "-d")
	for _, c := range []struct{ cmd, want string }{
		{"ip -4 -o addr | grep -c 172.29.7.10", "1"},
		{"grep -c ' /n tmpfs' /proc/mounts", "1"},
		{"cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us", "25000"},
		{"cat /sys/fs/cgroup/memory/memory.soft_limit_in_bytes", "16777216"},
	} {
		if out := strings.TrimSpace(e.skiff(t, dir, "exec", "-T", "app", "sh", "-c", c.cmd)); out != c.want {
			t.Errorf("%q: %q, want %q", c.cmd, out, c.want)
		}
	}
	if out, _, _ := e.run(t, dir, nil, "skiff", "network", "inspect", "-f", "{{.Internal}}", "sktl_inner"); strings.TrimSpace(out) != "true" {
		t.Errorf("internal network: %q", out)
	}
	e.docker(t, dir, "down", "-v", "-t", "1")
	// external ones stay, the project's are gone
	if _, _, code := e.run(t, dir, nil, "skiff", "volume", "inspect", "sktl-extvol"); code != 0 {
		t.Errorf("down -v removed the external volume")
	}
	if _, _, code := e.run(t, dir, nil, "skiff", "volume", "inspect", "sktl-custom-name"); code == 0 {
		t.Errorf("down -v left the project's volume")
	}
}

// On a terminal: compose's live progress, and exec with a tty (its default
// there).
func testComposeTty(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": `name: sktty
services:
  app:
    image: busybox
    init: true
    command: ["sleep", "600"]
`})
	sk := filepath.Join(binDir, "skiff") + " -H " + e.d.host + " compose "
	out, se, code := e.run(t, dir, []string{"TERM=xterm"}, "script", "-qec", sk+"up -d", "/dev/null")
	// compose's live view: a "[+] up N/M" header and a line per resource,
	// each redrawn in place (erase-line sequences), ticked when done
	if code != 0 || !strings.Contains(out, "[+] up 2/2") || !strings.Contains(out, "\x1b[2K ✔ Network sktty_default Created") ||
		!strings.Contains(out, "\x1b[2K ✔ Container sktty-app-1 Started") {
		t.Errorf("up -d on a tty: exit %d %q %q", code, out, se)
	}
	// Without a tty: plain lines, one per step, no escape sequences.
	e.skiff(t, dir, "stop", "-t", "1")
	_, se, code = e.run(t, dir, nil, "skiff", "compose", "up", "-d")
	if code != 0 || strings.Contains(se, "\x1b") || !regexp.MustCompile(`(?m)^ Container sktty-app-1 Starting *\n(.*\n)* Container sktty-app-1 Started *$`).MatchString(se) {
		t.Errorf("up -d without a tty: exit %d %q", code, se)
	}
	out, se, code = e.run(t, dir, []string{"TERM=xterm"}, "script", "-qec", sk+"exec app sh -c 'tty; stty size'", "/dev/null")
	if code != 0 || !strings.Contains(out, "/dev/pts/") {
		t.Errorf("exec on a tty: exit %d %q %q", code, out, se)
	}
	e.skiff(t, dir, "down", "-t", "1")
}
