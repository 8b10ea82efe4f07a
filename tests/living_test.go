package tests

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

func TestPauseUpdateTopStatsDiff(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	d.must("run", "-d", "--name", "lv", "busybox", "sh", "-c", "echo x > /tmp/new; rm /etc/group; echo changed >> /etc/passwd; exec sleep 1000")
	d.eventually("changes made", func() (bool, string) {
		out, _, _ := d.docker("diff", "lv")
		return strings.Contains(out, "A /tmp/new"), out
	})

	// pause / unpause, with Docker's errors.
	if _, errOut, code := d.docker("unpause", "lv"); code != 1 || !strings.Contains(errOut, "is not paused") {
		t.Errorf("unpause of a running container: %d %s", code, errOut)
	}
	d.must("pause", "lv")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}} {{.State.Running}}", "lv"); strings.TrimSpace(out) != "paused true true" {
		t.Errorf("paused state: %q", out)
	}
	if out, _, _ := d.docker("ps", "--format", "{{.Status}}", "--filter", "name=lv"); !strings.HasSuffix(strings.TrimSpace(out), "(Paused)") {
		t.Errorf("ps of a paused container: %q", out)
	}
	if _, errOut, code := d.docker("pause", "lv"); code != 1 || !strings.Contains(errOut, "already paused") {
		t.Errorf("pause twice: %d %s", code, errOut)
	}
	if _, errOut, code := d.docker("exec", "lv", "true"); code == 0 || !strings.Contains(errOut, "is paused") {
		t.Errorf("exec in a paused container: %d %s", code, errOut)
	}
	d.must("unpause", "lv")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}} {{.State.Paused}}", "lv"); strings.TrimSpace(out) != "running false" {
		t.Errorf("unpaused state: %q", out)
	}

	// top, with ps options passed through.
	out, errOut, code := d.docker("top", "lv")
	if code != 0 || !strings.Contains(out, "sleep 1000") || !strings.Contains(out, "PID") {
		t.Errorf("top: %d %q %s", code, out, errOut)
	}
	out, _, _ = d.docker("top", "lv", "-o", "pid,comm")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || !strings.Contains(lines[0], "COMMAND") || !strings.HasSuffix(lines[1], "sleep") {
		t.Errorf("top -o pid,comm: %q", out)
	}
	out, _, _ = d.skiff("top", "lv", "-o", "pid,comm")
	if !strings.Contains(out, "sleep") {
		t.Errorf("skiff top: %q", out)
	}

	// update applies to the live cgroup and shows in inspect and stats.
	d.must("update", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "40", "--restart", "on-failure:3", "lv")
	out, _, _ = d.docker("inspect", "-f", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}", "lv")
	if strings.TrimSpace(out) != "67108864 500000000 40 on-failure:3" {
		t.Errorf("after update: %q", out)
	}
	out, errOut, code = d.docker("stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}", "lv")
	if code != 0 || !strings.HasPrefix(out, "lv|") || !strings.Contains(out, "/ 64MiB|1|") || !strings.HasSuffix(strings.TrimSpace(out), "%") {
		t.Errorf("stats --no-stream: %d %q %s", code, out, errOut)
	}
	out, _, _ = d.skiff("stats", "--no-stream")
	if !strings.Contains(out, "MEM USAGE / LIMIT") || !strings.Contains(out, "lv") || !strings.Contains(out, "64MiB") {
		t.Errorf("skiff stats --no-stream: %q", out)
	}
	// One sample through the API has the fields the CLIs compute from.
	res, err := d.cli.ContainerStats(context.Background(), "lv", client.ContainerStatsOptions{Stream: false, IncludePreviousSample: true})
	if err != nil {
		t.Fatal(err)
	}
	var s container.StatsResponse
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if s.CPUStats.CPUUsage.TotalUsage == 0 || s.CPUStats.SystemUsage == 0 || s.PreCPUStats.SystemUsage == 0 ||
		s.MemoryStats.Usage == 0 || s.MemoryStats.Limit != 64<<20 || s.PidsStats.Current != 1 || s.PidsStats.Limit != 40 {
		t.Errorf("stats sample: %+v", s)
	}
	// Invalid update, and update of a removed container.
	if _, errOut, code := d.docker("update", "--memory", "1k", "lv"); code == 0 || !strings.Contains(errOut, "Minimum memory limit") {
		t.Errorf("tiny memory: %d %s", code, errOut)
	}
	if _, errOut, code := d.docker("update", "--restart", "sometimes", "lv"); code == 0 || !strings.Contains(errOut, "invalid restart policy") {
		t.Errorf("bad policy: %d %s", code, errOut)
	}

	// diff: A/C/D against the image; the engine's own files are hidden.
	out, _, _ = d.docker("diff", "lv")
	for _, want := range []string{"C /etc", "D /etc/group", "C /etc/passwd", "C /tmp", "A /tmp/new"} {
		if !strings.Contains(out+"\n", want+"\n") {
			t.Errorf("diff lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "/etc/hosts") || strings.Contains(out, "resolv.conf") {
		t.Errorf("diff shows the engine's files:\n%s", out)
	}

	// wait --condition (API): next-exit returns after the kill.
	wr := d.cli.ContainerWait(context.Background(), "lv", client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	d.must("kill", "lv")
	select {
	case r := <-wr.Result:
		if r.StatusCode != 137 {
			t.Errorf("wait next-exit: %d", r.StatusCode)
		}
	case err := <-wr.Error:
		t.Errorf("wait: %v", err)
	}
	// skiff wait --condition: not-running answers at once for a stopped
	// container; a bad condition is refused.
	if out := d.must("wait", "--condition", "not-running", "lv"); out != "137\n" {
		t.Errorf("wait --condition not-running: %q", out)
	}
	if _, errOut, code := d.skiff("wait", "--condition", "bogus", "lv"); code != 1 || !strings.Contains(errOut, "invalid condition") {
		t.Errorf("wait --condition bogus: %d %s", code, errOut)
	}
	if _, errOut, code := d.docker("pause", "lv"); code != 1 || !strings.Contains(errOut, "is not running") {
		t.Errorf("pause of a stopped container: %d %s", code, errOut)
	}
	if _, errOut, code := d.docker("top", "lv"); code != 1 || !strings.Contains(errOut, "is not running") {
		t.Errorf("top of a stopped container: %d %s", code, errOut)
	}
	d.must("rm", "lv")
	// A paused container is removed by force (SIGKILL thaws it).
	d.must("run", "-d", "--name", "pz", "busybox", "sleep", "1000")
	d.must("pause", "pz")
	d.must("rm", "-f", "pz")
	if _, errOut, code := d.docker("update", "--memory", "64m", "lv"); code != 1 || !strings.Contains(errOut, "No such container") {
		t.Errorf("update of a removed container: %d %s", code, errOut)
	}
}

func TestHealthChecks(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	evCtx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ev := d.cli.Events(evCtx, client.EventsListOptions{})

	d.must("run", "-d", "--name", "hc", "--health-cmd", "test -e /tmp/ok && echo fine", "--health-interval", "100ms", "--health-retries", "2", "busybox", "sleep", "1000")
	d.must("run", "-d", "--name", "hang", "--health-cmd", "sleep 100", "--health-timeout", "200ms", "--health-interval", "100ms", "--health-retries", "1", "busybox", "sleep", "1000")
	// The image's HEALTHCHECK: used, merged with flags, or disabled.
	d.must("import", "--change", "HEALTHCHECK --interval=100ms CMD echo imgcheck", busyboxTar, "hcimg")
	d.must("run", "-d", "--name", "img", "hcimg", "sleep", "1000")
	d.must("run", "-d", "--name", "merged", "--health-retries", "1", "hcimg", "sleep", "1000")
	d.must("run", "-d", "--name", "none", "--no-healthcheck", "hcimg", "sleep", "1000")
	health := func(c string) string {
		out, _, _ := d.docker("inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}", c)
		return strings.TrimSpace(out)
	}
	d.eventually("hc unhealthy", func() (bool, string) { s := health("hc"); return s == "unhealthy", s })
	d.must("exec", "hc", "touch", "/tmp/ok")
	d.eventually("hc healthy", func() (bool, string) { s := health("hc"); return s == "healthy", s })
	out, _, _ := d.docker("inspect", "-f", "{{(index .State.Health.Log (len .State.Health.Log | add -1)).Output}}", "hc")
	if !strings.Contains(out, "fine") {
		// (older templates lack add: check the whole log instead)
		out, _, _ = d.docker("inspect", "-f", "{{json .State.Health.Log}}", "hc")
		if !strings.Contains(out, `fine\n`) {
			t.Errorf("health log lacks the output: %s", out)
		}
	}
	if out, _, _ := d.docker("ps", "--filter", "name=hc", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(out), "(healthy)") {
		t.Errorf("ps status: %q", out)
	}
	if out, _, _ := d.docker("ps", "--filter", "health=healthy", "--filter", "name=hc", "--format", "{{.Names}}"); strings.TrimSpace(out) != "hc" {
		t.Errorf("ps --filter health=healthy: %q", out)
	}
	// The hanging check is killed at its timeout and counts as a failure.
	d.eventually("hang unhealthy", func() (bool, string) { s := health("hang"); return s == "unhealthy", s })
	out, _, _ = d.docker("inspect", "-f", "{{json .State.Health.Log}}", "hang")
	if !strings.Contains(out, "Health check exceeded timeout (200ms)") || !strings.Contains(out, `"ExitCode":-1`) {
		t.Errorf("hang log: %s", out)
	}
	if out, _, _ := d.docker("top", "hang", "-o", "args"); strings.Contains(out, "sleep 100\n") {
		t.Errorf("the timed-out check is still running:\n%s", out)
	}
	d.eventually("image check healthy", func() (bool, string) { s := health("img"); return s == "healthy", s })
	d.eventually("merged check healthy", func() (bool, string) { s := health("merged"); return s == "healthy", s })
	if out, _, _ := d.docker("inspect", "-f", "{{json .Config.Healthcheck}}", "merged"); !strings.Contains(out, "imgcheck") || !strings.Contains(out, `"Retries":1`) {
		t.Errorf("merged health check: %s", out)
	}
	if s := health("none"); s != "none" {
		t.Errorf("--no-healthcheck: %s", s)
	}
	// health_status events, with Docker's action text.
	seen := map[string]bool{}
	deadline := time.After(20 * time.Second)
	for !(seen["hc health_status: healthy"] && seen["hc health_status: unhealthy"] && seen["hang health_status: unhealthy"]) {
		select {
		case m := <-ev.Messages:
			if strings.HasPrefix(string(m.Action), "health_status") {
				seen[m.Actor.Attributes["name"]+" "+string(m.Action)] = true
			}
		case err := <-ev.Err:
			t.Fatalf("events: %v", err)
		case <-deadline:
			t.Fatalf("health events seen: %v", seen)
		}
	}

	// Health checks resume after the engine restarts (kill -9).
	cancel()
	d.kill9()
	d.start()
	if s := health("hc"); s != "healthy" {
		t.Errorf("health after the engine restart: %s", s)
	}
	d.must("exec", "hc", "rm", "/tmp/ok")
	d.eventually("hc unhealthy again", func() (bool, string) { s := health("hc"); return s == "unhealthy", s })
}

// The same on a pure cgroup v2 view: freezer, live update and stats read
// from the unified hierarchy.
func TestPauseUpdateStatsCgroup2(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err != nil {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	d := startDaemonWith(t, true)
	d.importBusybox()
	d.must("run", "-d", "--name", "v2", "busybox", "sleep", "1000")
	d.must("pause", "v2")
	if out, _, _ := d.docker("inspect", "-f", "{{.State.Status}}", "v2"); strings.TrimSpace(out) != "paused" {
		t.Errorf("paused on v2: %q", out)
	}
	frozen, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/unified", d.cgParent, strings.TrimSpace(d.must("inspect", "-f", "{{.Id}}", "v2")), "cgroup.freeze"))
	if strings.TrimSpace(string(frozen)) != "1" {
		t.Errorf("cgroup.freeze = %q", frozen)
	}
	d.must("unpause", "v2")
	// This hybrid host binds memory and pids to v1: with the controllers
	// the update applies and shows in stats, without them it fails clearly.
	ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	if strings.Contains(string(ctrls), "memory") && strings.Contains(string(ctrls), "pids") {
		d.must("update", "--memory", "48m", "--pids-limit", "30", "v2")
		out, errOut, code := d.docker("stats", "--no-stream", "--format", "{{.MemUsage}} {{.PIDs}}", "v2")
		if code != 0 || !strings.Contains(out, "/ 48MiB 1") {
			t.Errorf("stats on v2: %d %q %s", code, out, errOut)
		}
	} else if _, errOut, code := d.docker("update", "--memory", "48m", "v2"); code != 1 || !strings.Contains(errOut, "memory") {
		t.Errorf("update without a v2 memory controller: %d %s", code, errOut)
	}
	out, errOut, code := d.docker("stats", "--no-stream", "--format", "{{.Name}} {{.CPUPerc}}", "v2")
	if code != 0 || !strings.HasPrefix(out, "v2 ") || !strings.HasSuffix(strings.TrimSpace(out), "%") {
		t.Errorf("stats on v2: %d %q %s", code, out, errOut)
	}
	if out, _, _ := d.docker("top", "v2"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("top on v2: %q", out)
	}
	d.must("rm", "-f", "v2")
}
