package tests

import (
	"context"
	"fmt"
	"io"
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

// composeLeft is what a project left on the engine: its containers with
// their states, its networks and volumes, the project's name replaced by P
// (so two projects run the same way compare equal).
func composeLeft(t *testing.T, e *composeEnv, project string) string {
	t.Helper()
	label := "label=com.docker.compose.project=" + project
	var all []string
	for _, c := range [][]string{
		{"ps", "-a", "--filter", label, "--format", "container {{.Names}} {{.State}}"},
		{"network", "ls", "--filter", label, "--format", "network {{.Name}}"},
		{"volume", "ls", "--filter", label, "--format", "volume {{.Name}}"},
	} {
		out, se, code := e.run(t, t.TempDir(), nil, "skiff", c...)
		if code != 0 {
			t.Fatalf("skiff %v: exit %d %s", c, code, se)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if l != "" {
				all = append(all, strings.ReplaceAll(l, project, "P"))
			}
		}
	}
	sort.Strings(all)
	return strings.Join(all, ", ")
}

// Failures: an unknown service, a published port already taken, an image
// that is in no registry. Each is run by skiff compose and by docker compose
// on projects alike, on the same engine: the same exit code, a message that
// names the service, and the same things left behind (compose creates the
// network and the containers before it starts them, and does not remove
// the ones it created when a start fails; skiff compose is compose).
func testComposeFailures(t *testing.T, e *composeEnv, reg *testRegistry) {
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	taken := ln.Addr().(*netTCPAddr).Port
	for _, c := range []struct {
		name, yml string
		args      []string
		// in the message, with P for the project's name
		want []string
		// what is left, with P for the project's name
		left string
	}{
		{"unknown service", `services:
  app:
    image: busybox
    command: ["sleep", "600"]
`, []string{"up", "-d", "nosuch"}, []string{"no such service: nosuch"}, ""},
		{"port taken", fmt.Sprintf(`services:
  db:
    image: busybox
    init: true
    command: ["sleep", "600"]
  web:
    image: busybox
    init: true
    command: ["sleep", "600"]
    ports: ["127.0.0.1:%d:80"]
    depends_on: [db]
`, taken), []string{"up", "-d"}, []string{"P-web-1", fmt.Sprint(taken)},
			// db started, web created and never started, the network stays
			"container P-db-1 running, container P-web-1 created, network P_default"},
		// (an unset variable for a loader warning, said as often as docker
		// compose says it though skiff compose loads the project again to
		// name the service)
		{"missing image", fmt.Sprintf(`services:
  db:
    image: busybox
    init: true
    command: ["sleep", "600${SKIFF_TEST_UNSET}"]
  app:
    image: %s/skiff-test/nosuch:1
`, reg.host), []string{"up", "-d"}, []string{`service "app": `, "skiff-test/nosuch:1"},
			// images are pulled before anything is created
			""},
	} {
		n := len(c.name)
		var codes, warned [2]int
		var left [2]string
		for i, bin := range []string{"skiff", "docker"} {
			project := fmt.Sprintf("%sfail%d", bin[:2], n)
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"compose.yaml": c.yml})
			args := append([]string{"compose", "-p", project}, c.args...)
			out, se, code := e.run(t, dir, nil, bin, args...)
			codes[i] = code
			left[i] = composeLeft(t, e, project)
			e.run(t, dir, nil, bin, "compose", "-p", project, "down", "-t", "1")
			if bin == "docker" {
				// compose names the image, not the service (skiff
				// compose names the service too)
				c.want = c.want[1:]
				if c.name != "missing image" {
					c.want = nil
				}
			}
			for _, w := range c.want {
				if w = strings.ReplaceAll(w, "P", project); !strings.Contains(se, w) {
					t.Errorf("%s: %s compose %v: message lacks %q:\n%s%s", c.name, bin, c.args, w, out, se)
				}
			}
			warned[i] = strings.Count(se, `SKIFF_TEST_UNSET\" variable is not set`)
			if left[i] != c.left {
				t.Errorf("%s: %s compose left %q, want %q", c.name, bin, left[i], c.left)
			}
			if code != 1 {
				t.Errorf("%s: %s compose exit %d, want 1", c.name, bin, code)
			}
		}
		if c.name == "missing image" && (warned[0] != warned[1] || warned[0] == 0) {
			t.Errorf("%s: skiff compose warned %d times of the unset variable, docker compose %d", c.name, warned[0], warned[1])
		}
		if codes[0] != codes[1] || left[0] != left[1] {
			t.Errorf("%s: skiff compose exit %d left %q; docker compose exit %d left %q", c.name, codes[0], left[0], codes[1], left[1])
		}
	}
}

// pull and push against a local registry (Debian's docker-registry on a
// loopback port), with their failure flags; skiff's exit codes are docker
// compose's.
func testComposePullPush(t *testing.T, e *composeEnv, reg *testRegistry) {
	dir := t.TempDir()
	ln, err := listenLoopback()
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String() // nothing answers there
	ln.Close()
	writeFiles(t, dir, map[string]string{
		"Dockerfile": "FROM busybox\nRUN echo pushed > /marker\n",
		"compose.yaml": fmt.Sprintf(`name: skpush
services:
  app:
    build: .
    image: %[1]s/skpush/app:1
  nowhere:
    build: .
    image: %[2]s/skpush/nowhere:1
    profiles: [nowhere]
  gone:
    image: %[1]s/skpush/gone:1
    profiles: [gone]
`, reg.host, closed),
	})
	tags := func(repo string) string {
		resp, err := http.Get("http://" + reg.host + "/v2/" + repo + "/tags/list")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	skiffDocker := func(args ...string) (skiff, docker [3]any) {
		for i, bin := range []string{"skiff", "docker"} {
			so, se, code := e.run(t, dir, nil, bin, append([]string{"compose"}, args...)...)
			r := [3]any{so, se, code}
			if i == 0 {
				skiff = r
			} else {
				docker = r
			}
		}
		return
	}

	e.skiff(t, dir, "--profile", "nowhere", "build")
	e.skiff(t, dir, "push")
	if got := tags("skpush/app"); !strings.Contains(got, `"1"`) {
		t.Fatalf("push: registry tags %s", got)
	}
	// A registry that does not answer: the error names the image, exit 1;
	// --ignore-push-failures pushes the rest and exits 0.
	s, d := skiffDocker("--profile", "nowhere", "push")
	if s[2] != 1 || d[2] != 1 || !strings.Contains(s[1].(string), closed+"/skpush/nowhere:1") {
		t.Errorf("push to nowhere: skiff %v, docker %v", s, d)
	}
	s, d = skiffDocker("--profile", "nowhere", "push", "--ignore-push-failures")
	if s[2] != 0 || d[2] != 0 {
		t.Errorf("push --ignore-push-failures: skiff %v, docker %v", s, d)
	}

	// pull brings back what is gone; -q leaves out the layers' progress
	// (compose still says which images it pulls), as docker compose -q.
	e.run(t, dir, nil, "skiff", "rmi", closed+"/skpush/nowhere:1")
	var pulled [2]string
	for i, q := range []string{"-q", ""} {
		for j, bin := range []string{"skiff", "docker"} {
			e.run(t, dir, nil, "skiff", "rmi", reg.host+"/skpush/app:1")
			args := []string{"compose", "pull"}
			if q != "" {
				args = append(args, q)
			}
			so, se, code := e.run(t, dir, nil, bin, args...)
			if code != 0 || so != "" {
				t.Errorf("%s %v: exit %d %q %q", bin, args, code, so, se)
			}
			se = regexp.MustCompile(`[0-9a-f]{12}`).ReplaceAllString(se, "LAYER")
			if j == 0 {
				pulled[i] = se
			} else if se != pulled[i] {
				t.Errorf("pull %s: skiff compose says %q, docker compose %q", q, pulled[i], se)
			}
		}
	}
	if want := " Image " + reg.host + "/skpush/app:1 Pulling \n Image " + reg.host + "/skpush/app:1 Pulled \n"; pulled[0] != want || !strings.Contains(pulled[1], "LAYER") {
		t.Errorf("pull -q: %q, want %q; pull: %q", pulled[0], want, pulled[1])
	}
	if out, _, _ := e.run(t, dir, nil, "skiff", "run", "--rm", reg.host+"/skpush/app:1", "cat", "/marker"); strings.TrimSpace(out) != "pushed" {
		t.Errorf("the pulled image: %q", out)
	}
	// An image in no registry: the error names the service, exit 1 as
	// docker compose's; --ignore-pull-failures exits 0 and pulls the rest.
	e.run(t, dir, nil, "skiff", "rmi", reg.host+"/skpush/app:1")
	s, d = skiffDocker("--profile", "gone", "pull")
	if s[2] != 1 || s[2] != d[2] || !strings.Contains(s[1].(string), `service "gone": `) || !strings.Contains(s[1].(string), "skpush/gone:1 not found") {
		t.Errorf("pull of a missing image: skiff %v, docker %v", s, d)
	}
	e.run(t, dir, nil, "skiff", "rmi", reg.host+"/skpush/app:1")
	s, d = skiffDocker("--profile", "gone", "pull", "--ignore-pull-failures")
	if s[2] != 0 || d[2] != 0 {
		t.Errorf("pull --ignore-pull-failures: skiff %v, docker %v", s, d)
	}
	if _, _, code := e.run(t, dir, nil, "skiff", "image", "inspect", reg.host+"/skpush/app:1"); code != 0 {
		t.Errorf("pull --ignore-pull-failures did not pull app")
	}
	e.run(t, dir, nil, "skiff", "rmi", reg.host+"/skpush/app:1", closed+"/skpush/nowhere:1")
}

// The command and flag list, each in `skiff compose CMD --help` (a
// compose upgrade that drops one fails here); flags compose hides (still
// accepted, not listed) are checked to parse. And `version`.
func testComposeFlags(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	cmds := []struct {
		cmd    string
		flags  string // listed in --help
		hidden string // accepted but hidden by compose
	}{
		{"", "-f --file -p --project-name --project-directory --profile --env-file", ""},
		{"config", "--services --volumes -q --quiet", ""},
		{"build", "--no-cache --pull --build-arg", "--force-rm"},
		{"up", "-d --detach --no-recreate --force-recreate --no-deps --no-build --build -t --timeout --scale --wait " +
			"--remove-orphans --no-color --abort-on-container-exit --exit-code-from", ""},
		{"down", "-v --volumes --rmi --remove-orphans -t --timeout", ""},
		{"ps", "-q -a --services --format", ""},
		{"images", "", ""},
		{"logs", "-f --follow --tail --no-color -t --timestamps --since", ""},
		{"top", "", ""},
		{"port", "--protocol --index", ""},
		{"exec", "-T -u --user -e --env -w --workdir --index -d --detach", ""},
		{"run", "--rm -d --name --entrypoint -e -u -p --publish --service-ports --no-deps -T -v --volume -w", ""},
		{"start", "", ""},
		{"stop", "-t --timeout", ""},
		{"restart", "-t --timeout", ""},
		{"kill", "-s --signal", ""},
		{"pause", "", ""},
		{"unpause", "", ""},
		{"rm", "-f --force -s --stop -v --volumes", ""},
		{"pull", "--ignore-pull-failures -q --quiet", ""},
		{"push", "--ignore-push-failures", ""},
		{"scale", "", ""},
		{"create", "", ""},
		{"wait", "", ""},
		{"version", "", ""},
		{"ls", "", ""},
	}
	rootHelp, _, _ := e.run(t, dir, nil, "skiff", "compose", "--help")
	for _, c := range cmds {
		args := []string{"compose", "--help"}
		if c.cmd != "" {
			args = []string{"compose", c.cmd, "--help"}
			// the command is in compose's list
			if !regexp.MustCompile(`(?m)^  ` + c.cmd + ` `).MatchString(rootHelp) {
				t.Errorf("skiff compose --help lists no %q", c.cmd)
			}
		}
		help, se, code := e.run(t, dir, nil, "skiff", args...)
		if code != 0 || !strings.Contains(help, "Usage:  skiff compose") {
			t.Errorf("%v: exit %d %q %q", args, code, help, se)
			continue
		}
		for _, f := range strings.Fields(c.flags) {
			// cobra lists "  -d, --detach ..." and "      --wait ..."
			re := regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(f) + `[ ,]`)
			if strings.HasPrefix(f, "--") {
				re = regexp.MustCompile(`(?m)^\s+(-\w, )?` + regexp.QuoteMeta(f) + ` `)
			}
			if !re.MatchString(help) {
				t.Errorf("skiff compose %s --help lacks %s", c.cmd, f)
			}
		}
		for _, f := range strings.Fields(c.hidden) {
			if _, se, code := e.run(t, dir, nil, "skiff", "compose", c.cmd, f, "--help"); code != 0 {
				t.Errorf("skiff compose %s %s: exit %d %q", c.cmd, f, code, se)
			}
		}
	}
	// An unknown flag is refused, as compose refuses it (exit 1).
	if _, se, code := e.run(t, dir, nil, "skiff", "compose", "up", "--no-such-flag"); code != 1 || !strings.Contains(se, "unknown flag: --no-such-flag") {
		t.Errorf("unknown flag: exit %d %q", code, se)
	}

	// version: compose's version, and that this is skiff's build.
	out, se, code := e.run(t, dir, nil, "skiff", "compose", "version")
	if code != 0 || !regexp.MustCompile(`^Docker Compose version v5\.\d+\.\d+ \(skiff-compose, skiff \S+\)\n$`).MatchString(out) {
		t.Errorf("version: exit %d %q %q", code, out, se)
	}
	if out, _, code := e.run(t, dir, nil, "skiff", "compose", "version", "--short"); code != 0 || !regexp.MustCompile(`^5\.\d+\.\d+\n$`).MatchString(out) {
		t.Errorf("version --short: %q", out)
	}
	if out, _, code := e.run(t, dir, nil, "skiff", "compose", "version", "--format", "json"); code != 0 || !regexp.MustCompile(`^\{"version":"v5\.\d+\.\d+"\}\n$`).MatchString(out) {
		t.Errorf("version --format json: exit %d %q", code, out)
	}
}

// The global options and variables, and where compose looks for the file:
// `config` prints the resolved model, byte for byte what docker compose
// prints from the same directory and environment.
func testComposeGlobals(t *testing.T, e *composeEnv) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"proj/compose.yaml": "services:\n  app:\n    image: busybox:${TAG}\n    command: [\"echo\", \"${WORD:-none}\"]\n" +
			"  dbg:\n    image: busybox\n    profiles: [debug]\n",
		"proj/override.yaml": "services:\n  app:\n    environment: {FROM_OVERRIDE: \"1\"}\n",
		"proj/.env":          "TAG=1.36\n",
		"proj/other.env":     "TAG=2.0\nWORD=other\n",
		"proj/sub/dir/.keep": "",
	})
	proj := filepath.Join(root, "proj")
	for _, c := range []struct {
		name, dir string
		env       []string
		args      []string
		want      []string // in the output
		not       []string // not in it
	}{
		{"lookup upwards", "proj/sub/dir", nil, nil, []string{"name: proj\n", "image: busybox:1.36"}, []string{"dbg"}},
		{"-f merges in order", "proj", nil, []string{"-f", "compose.yaml", "-f", "override.yaml"}, []string{"FROM_OVERRIDE: \"1\""}, nil},
		{"COMPOSE_FILE", "proj", []string{"COMPOSE_FILE=compose.yaml:override.yaml"}, nil, []string{"FROM_OVERRIDE: \"1\""}, nil},
		{"-p", "proj", nil, []string{"-p", "named"}, []string{"name: named\n"}, nil},
		{"COMPOSE_PROJECT_NAME", "proj", []string{"COMPOSE_PROJECT_NAME=fromenv"}, nil, []string{"name: fromenv\n"}, nil},
		{"--profile", "proj", nil, []string{"--profile", "debug"}, []string{"  dbg:\n"}, nil},
		{"COMPOSE_PROFILES", "proj", []string{"COMPOSE_PROFILES=debug"}, nil, []string{"  dbg:\n"}, nil},
		{"--env-file", "proj", nil, []string{"--env-file", "other.env"}, []string{"image: busybox:2.0", "- other"}, nil},
		{"--project-directory", ".", nil, []string{"--project-directory", proj}, []string{"name: proj\n", "image: busybox:1.36"}, nil},
	} {
		dir := filepath.Join(root, c.dir)
		args := append(append([]string{"compose"}, c.args...), "config")
		so, se, code := e.run(t, dir, c.env, "skiff", args...)
		dso, dse, dcode := e.run(t, dir, c.env, "docker", args...)
		if code != 0 || so != dso || se != dse || dcode != 0 {
			t.Errorf("%s: skiff exit %d %q %q; docker exit %d %q %q", c.name, code, so, se, dcode, dso, dse)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(so, w) {
				t.Errorf("%s: config lacks %q:\n%s", c.name, w, so)
			}
		}
		for _, w := range c.not {
			if strings.Contains(so, w) {
				t.Errorf("%s: config has %q:\n%s", c.name, w, so)
			}
		}
	}
	// Each of the four file names compose looks for.
	for _, name := range []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"} {
		dir := t.TempDir()
		writeFiles(t, dir, map[string]string{name: "services:\n  only:\n    image: busybox\n"})
		if so, se, code := e.run(t, dir, nil, "skiff", "compose", "config", "--services"); code != 0 || so != "only\n" {
			t.Errorf("%s: exit %d %q %q", name, code, so, se)
		}
	}
}

// An x- extension with an anchor merged into a service, env_file; c (added
// after it) extends a in the same file.
const composeMoreFlagsYAML = `name: skflags
x-common: &common
  image: skflags-base:1
  init: true
  env_file: [common.env]
services:
  a:
    <<: *common
    command: ["sh", "-c", "echo a says hi; exec sleep 600"]
    ports: ["127.0.0.1::53/udp"]
  b:
    build: .
    image: skflags-b:1
    init: true
    command: ["sleep", "600"]
    depends_on: [a]
`

// Flags of up, run, build, ps, logs and port that the other projects do
// not use, each with its effect; anchors, env_file and extends in one file.
func testComposeMoreFlags(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"m/f":        "mounted\n",
		"Dockerfile": "FROM busybox\nARG CODE=0\nRUN echo $CODE > /code\n",
		"common.env": "FROM_ENV_FILE=envfile\n",
		"compose.yaml": composeMoreFlagsYAML + `  c:
    extends: a
    command: ["sleep", "600"]
`})
	// a's image is a tag of its own: down --rmi all removes it (busybox,
	// which the other tests share, stays).
	if _, se, code := e.run(t, dir, nil, "skiff", "tag", "busybox", "skflags-base:1"); code != 0 {
		t.Fatalf("tag: %s", se)
	}
	// up --no-deps starts b alone; --build builds it first.
	e.skiff(t, dir, "up", "-d", "--build", "--no-deps", "b")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json"))); got != "skflags-b-1:running" {
		t.Errorf("up --no-deps b: %s", got)
	}
	e.skiff(t, dir, "build", "--build-arg", "CODE=7", "b")
	if out, _, _ := e.run(t, dir, nil, "skiff", "run", "--rm", "skflags-b:1", "cat", "/code"); strings.TrimSpace(out) != "7" {
		t.Errorf("build --build-arg CODE=7: /code %q", out)
	}
	e.skiff(t, dir, "up", "-d")
	if out := strings.Fields(e.skiff(t, dir, "ps", "--services")); len(out) != 3 {
		t.Errorf("ps --services: %q", out)
	}
	for _, svc := range []string{"a", "c"} {
		if out := strings.TrimSpace(e.skiff(t, dir, "exec", "-T", svc, "sh", "-c", "echo $FROM_ENV_FILE")); out != "envfile" {
			t.Errorf("%s: env_file through the anchor (and extends): %q", svc, out)
		}
	}
	// c gone from the file: an orphan, which up --remove-orphans removes.
	writeFiles(t, dir, map[string]string{"compose.yaml": composeMoreFlagsYAML})
	e.skiff(t, dir, "up", "-d", "--remove-orphans")
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json"))); got != "skflags-a-1:running skflags-b-1:running" {
		t.Errorf("up --remove-orphans: %s", got)
	}
	// logs -f follows until the container stops.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, filepath.Join(binDir, "skiff"), "-H", e.d.host, "compose", "logs", "-f", "--no-color", "a")
	follow.Dir = dir
	var fout lockedBuffer
	follow.Stdout, follow.Stderr = &fout, &fout
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(fout.String(), "a says hi") && ctx.Err() == nil {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond)
	if follow.ProcessState != nil {
		t.Errorf("logs -f returned while a runs: %q", fout.String())
	}
	e.skiff(t, dir, "stop", "-t", "1", "a")
	if err := follow.Wait(); err != nil || ctx.Err() != nil {
		t.Errorf("logs -f after stop: %v %q", err, fout.String())
	}
	e.skiff(t, dir, "start", "a")
	if out := strings.TrimSpace(e.skiff(t, dir, "port", "--protocol", "udp", "a", "53")); !strings.HasPrefix(out, "127.0.0.1:") {
		t.Errorf("port --protocol udp: %q", out)
	}
	if out := e.skiff(t, dir, "logs", "--no-color", "--since", "1h", "a"); !strings.Contains(out, "a says hi") {
		t.Errorf("logs --since 1h: %q", out)
	}
	if out := e.skiff(t, dir, "logs", "--no-color", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "a"); strings.Contains(out, "a says hi") {
		t.Errorf("logs --since in an hour: %q", out)
	}
	// run: --entrypoint, -e, -u, -v, -w, --name, and --rm removes it.
	out := e.skiff(t, dir, "run", "--rm", "-T", "--no-deps", "--name", "skflags-once", "--entrypoint", "sh",
		"-e", "X=ex", "-u", "65534", "-v", filepath.Join(dir, "m")+":/m:ro", "-w", "/m",
		"a", "-c", "echo $X $(id -u) $PWD $(cat f)")
	if strings.TrimSpace(out) != "ex 65534 /m mounted" {
		t.Errorf("run flags: %q", out)
	}
	if _, _, code := e.run(t, dir, nil, "skiff", "inspect", "skflags-once"); code == 0 {
		t.Errorf("run --rm left skflags-once")
	}
	e.skiff(t, dir, "down", "-t", "1", "--rmi", "all")
	for _, img := range []string{"skflags-base:1", "skflags-b:1"} {
		if _, _, code := e.run(t, dir, nil, "skiff", "image", "inspect", img); code == 0 {
			t.Errorf("down --rmi all left %s", img)
		}
	}
	if _, _, code := e.run(t, dir, nil, "skiff", "image", "inspect", "busybox"); code != 0 {
		t.Errorf("down --rmi all removed busybox, which only a tag of it was the project's")
	}
}

// lockedBuffer collects a process's output while the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// up in the foreground on a terminal: the log prefixes are coloured, and
// Ctrl-C (typed on the terminal: the line discipline sends SIGINT) stops
// the project, as compose does.
func testComposeCtrlC(t *testing.T, e *composeEnv) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"compose.yaml": `name: skctrlc
services:
  app:
    image: busybox
    init: true
    command: ["sh", "-c", "echo app is up; exec sleep 600"]
`})
	defer e.run(t, dir, nil, "skiff", "compose", "down", "-t", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sk := filepath.Join(binDir, "skiff") + " -H " + e.d.host + " compose up -t 1"
	cmd := exec.CommandContext(ctx, "script", "-qec", sk, "/dev/null")
	cmd.Dir = dir
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NO_COLOR=") { // colours on
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "TERM=xterm", "DOCKER_CONFIG="+e.dockcfg)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// "app-1  | app is up", the prefix in a colour: ESC[...m app-1 ... |
	prefix := regexp.MustCompile(`\x1b\[[0-9;]*m *app-1 +\|[^\n]*app is up`)
	for !prefix.MatchString(out.String()) {
		if ctx.Err() != nil {
			t.Fatalf("up in a terminal: no coloured log line:\n%q", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	stdin.Write([]byte{3}) // Ctrl-C
	err = cmd.Wait()
	if ctx.Err() != nil {
		t.Fatalf("up did not stop on Ctrl-C: %q", out.String())
	}
	if !strings.Contains(out.String(), "Gracefully Stopping") {
		t.Errorf("up after Ctrl-C: %v %q", err, out.String())
	}
	if got := psNames(parsePS(t, e.skiff(t, dir, "ps", "-a", "--format", "json"))); got != "skctrlc-app-1:exited" {
		t.Errorf("after Ctrl-C: %s", got)
	}
}
