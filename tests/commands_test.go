package tests

import (
	"bufio"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The everyday flags of ps, logs, exec, start, restart, prune and events.
func TestEverydayCommands(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()

	d.must("create", "--name", "c1", "busybox", "echo", "one")
	if _, _, code := d.skiff("run", "--name", "c2", "busybox", "sh", "-c", "exit 2"); code != 2 {
		t.Fatalf("run exit 2: got %d", code)
	}
	id3 := strings.TrimSpace(d.must("run", "-d", "--name", "c3", "busybox", "sleep", "60"))

	// ps: running only by default; -a all; -n/-l newest; filters; --no-trunc.
	if out := d.must("ps", "--format", "{{.Names}}"); out != "c3\n" {
		t.Errorf("ps: %q", out)
	}
	if out := d.must("ps", "-a", "--format", "{{.Names}}"); out != "c3\nc2\nc1\n" {
		t.Errorf("ps -a: %q", out)
	}
	if out := d.must("ps", "-n", "2", "--format", "{{.Names}}"); out != "c3\nc2\n" {
		t.Errorf("ps -n 2: %q", out)
	}
	if out := d.must("ps", "-l", "-q", "--no-trunc"); out != id3+"\n" {
		t.Errorf("ps -l -q --no-trunc: %q", out)
	}
	if out := d.must("ps", "-a", "--filter", "status=exited", "--filter", "exited=2", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(out, "c2 Exited (2)") {
		t.Errorf("ps exited filter: %q", out)
	}
	if out := d.must("ps", "-a", "--filter", "status=created", "--format", "{{.Names}}"); out != "c1\n" {
		t.Errorf("ps created filter: %q", out)
	}
	if _, errOut, code := d.skiff("ps", "--filter", "bogus=1"); code == 0 || !strings.Contains(errOut, "invalid filter") {
		t.Errorf("ps bad filter: %d %q", code, errOut)
	}
	// ps table header and columns.
	if out := d.must("ps"); !strings.HasPrefix(out, "CONTAINER ID   IMAGE     COMMAND") || !strings.Contains(out, `"sleep 60"`) {
		t.Errorf("ps table:\n%s", out)
	}

	// start -a streams the output and passes the exit code through.
	if out, _, code := d.skiff("start", "-a", "c1"); out != "one\n" || code != 0 {
		t.Errorf("start -a: %q %d", out, code)
	}
	if _, _, code := d.skiff("start", "-a", "c2"); code != 2 {
		t.Errorf("start -a exit code %d, want 2", code)
	}

	// exec -d runs in the background.
	d.must("exec", "-d", "c3", "sh", "-c", "echo bg > /tmp/bg")
	waitFor(t, func() bool { out, _, _ := d.skiff("exec", "c3", "cat", "/tmp/bg"); return out == "bg\n" }, "exec -d output")

	// restart gives a new process.
	pid1 := d.must("inspect", "-f", "{{.State.Pid}}", "c3")
	d.must("restart", "-t", "0", "c3")
	if pid2 := d.must("inspect", "-f", "{{.State.Pid}}", "c3"); pid2 == pid1 || pid2 == "0\n" {
		t.Errorf("restart: pid %s → %s", pid1, pid2)
	}

	// stop of a stopped container is not an error (304 from the API).
	d.must("stop", "c2")

	// container prune removes stopped containers only.
	out := d.must("container", "prune", "-f")
	if !strings.Contains(out, "Deleted Containers:") {
		t.Errorf("prune: %q", out)
	}
	if out := d.must("ps", "-a", "--format", "{{.Names}}"); out != "c3\n" {
		t.Errorf("after prune: %q", out)
	}

	// rename.
	d.must("rename", "c3", "c3b")
	if out := d.must("inspect", "-f", "{{.Name}}", id3); out != "/c3b\n" {
		t.Errorf("rename: %q", out)
	}
}

func TestLogsFollowAndUntil(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "-d", "--name", "fo", "busybox", "sh", "-c", "echo a; sleep 1; echo b; sleep 1; echo c")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "skiff"), "-H", d.host, "logs", "-f", "fo")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	// logs -f ends by itself when the container stops.
	if err := cmd.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if strings.Join(lines, ",") != "a,b,c" {
		t.Errorf("logs -f lines: %q", lines)
	}
	// --until the first second shows only what was written before it.
	ts := d.must("logs", "-t", "fo")
	first, err := time.Parse(time.RFC3339Nano, strings.Fields(ts)[0])
	if err != nil {
		t.Fatal(err)
	}
	until := strconv.FormatFloat(float64(first.Add(500*time.Millisecond).UnixNano())/1e9, 'f', 3, 64)
	if out := d.must("logs", "--until", until, "fo"); out != "a\n" {
		t.Errorf("logs --until: %q", out)
	}
}

func TestEventsAndInfo(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	d.must("run", "--rm", "--name", "ev", "busybox", "true")
	until := strconv.FormatInt(time.Now().Add(time.Second).Unix(), 10)
	out := d.must("events", "--since", since, "--until", until, "--filter", "type=container", "--format", "{{.Action}} {{.Actor.Attributes.name}}")
	for _, want := range []string{"create ev", "start ev", "die ev", "destroy ev"} {
		if !strings.Contains(out, want) {
			t.Errorf("events lack %q:\n%s", want, out)
		}
	}
	// The JSON form carries Docker's fields.
	out = d.must("events", "--since", since, "--until", until, "--filter", "event=die", "--format", "{{json .}}")
	var m map[string]any
	if err := json.Unmarshal([]byte(strings.Split(out, "\n")[0]), &m); err != nil || m["Type"] != "container" || m["Action"] != "die" {
		t.Errorf("events json: %q %v", out, err)
	}
	info := d.must("info", "--format", "{{.Containers}} {{.Images}} {{.OSType}} {{.CgroupDriver}}")
	if info != "0 1 linux cgroupfs\n" {
		t.Errorf("info: %q", info)
	}
	if out := d.must("version", "--format", "{{.Server.APIVersion}}"); out != "1.51\n" {
		t.Errorf("version: %q", out)
	}
}

func TestImagesListing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	id := strings.TrimSpace(d.must("images", "-q", "--no-trunc"))
	if !strings.HasPrefix(id, "sha256:") {
		t.Fatalf("images -q --no-trunc: %q", id)
	}
	d.must("tag", "busybox", "second:v1")
	d.must("rmi", "busybox")
	d.must("rmi", "second:v1")
	// An image with no tags is dangling.
	d.must("import", busyboxTar)
	if out := d.must("images", "--filter", "dangling=true", "--format", "{{.Repository}}:{{.Tag}}"); out != "<none>:<none>\n" {
		t.Errorf("dangling: %q", out)
	}
	if out := d.must("images", "--filter", "dangling=false", "-q"); out != "" {
		t.Errorf("dangling=false: %q", out)
	}
	if out := d.must("images", "--format", "table {{.Repository}}\t{{.Tag}}"); !strings.HasPrefix(out, "REPOSITORY") {
		t.Errorf("table format: %q", out)
	}
	if _, errOut, code := d.skiff("rmi", "nope:1"); code == 0 || !strings.Contains(errOut, "No such image") {
		t.Errorf("rmi missing: %d %q", code, errOut)
	}
	if _, errOut, code := d.skiff("import", "/no/such/file.tar"); code == 0 || errOut == "" {
		t.Errorf("import missing file: %d %q", code, errOut)
	}
}
