package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// The fault suite: the engine, a monitor or a container's init SIGKILLed at
// a named step (internal/faults, compiled in with `-tags faults` only), the
// engine started again, and then every object is either whole and working
// or gone, and nothing is left on the host.

var (
	faultBinsOnce sync.Once
	faultBinsDir  string
	faultBinsErr  error
)

// faultBins builds skiffd and skiff-shim with the kill points compiled in,
// once, next to the regular binaries; only the fault tests pay for it.
func faultBins(t *testing.T) string {
	t.Helper()
	faultBinsOnce.Do(func() {
		dir := filepath.Join(binDir, "faults")
		if faultBinsErr = os.MkdirAll(dir, 0o755); faultBinsErr != nil {
			return
		}
		for _, b := range []struct {
			out, pkg, tags string
			flags          []string
		}{
			{"skiffd", "../cmd/skiffd", "faults", nil},
			{"skiff-shim", "../cmd/skiff-shim", "faults,netgo,osusergo", []string{"-ldflags", "-linkmode external -extldflags -static"}},
		} {
			args := append(append([]string{"build", "-tags", b.tags}, b.flags...), "-o", filepath.Join(dir, b.out), b.pkg)
			cmd := exec.Command("go", args...)
			if out, err := cmd.CombinedOutput(); err != nil {
				faultBinsErr = fmt.Errorf("build %s with -tags faults: %v\n%s", b.pkg, err, out)
				return
			}
		}
		for _, b := range []string{"skiff", "skiff-init"} { // `skiff daemon` execs skiffd next to it
			if faultBinsErr = os.Link(filepath.Join(binDir, b), filepath.Join(dir, b)); faultBinsErr != nil {
				return
			}
		}
		faultBinsDir = dir
	})
	if faultBinsErr != nil {
		t.Fatal(faultBinsErr)
	}
	return faultBinsDir
}

// faultCase is one kill: point names the step (internal/faults), victim
// the process that dies there. setup makes the objects the step works on,
// act runs the step (its failure is expected), check looks at what the
// step made once the engine is back (the generic checks follow).
type faultCase struct {
	point, victim string
	cgroup2       bool // on a pure cgroup v2 view (startDaemonWith)
	setup         func(d *daemon, f *faultEnv)
	act           func(d *daemon, f *faultEnv)
	check         func(d *daemon, f *faultEnv)
}

// faultEnv is what a case shares between its steps.
type faultEnv struct {
	t        *testing.T
	registry string // host:port of a registry holding image `ref`
	ref      string
	ctxDir   string // a build context
}

// skiffT runs skiff with a deadline: a step whose engine died must fail,
// not hang.
func (d *daemon) skiffT(timeout time.Duration, args ...string) (string, string, int) {
	return d.runWith(cmdOpts{timeout: timeout}, filepath.Join(binDir, "skiff"), append([]string{"-H", d.host}, args...)...)
}

func TestFaultKillPoints(t *testing.T) {
	sleeper := func(d *daemon, f *faultEnv) {
		d.must("create", "--name", "victim", "-p", "127.0.0.1::80", "busybox", "sleep", "100")
	}
	runner := func(d *daemon, f *faultEnv) {
		d.must("run", "-d", "--name", "victim", "-p", "127.0.0.1::80", "busybox", "sleep", "100")
	}
	act := func(args ...string) func(d *daemon, f *faultEnv) {
		return func(d *daemon, f *faultEnv) { d.skiffT(20*time.Second, args...) }
	}
	// wantState fails unless container victim is in one of the states.
	wantState := func(states ...string) func(d *daemon, f *faultEnv) {
		return func(d *daemon, f *faultEnv) {
			out, errOut, code := d.skiff("inspect", "-f", "{{.State.Status}}", "victim")
			got := strings.TrimSpace(out)
			if code != 0 {
				got = "absent"
				if !strings.Contains(errOut, "No such") {
					d.t.Errorf("inspect victim: %s", errOut)
				}
			}
			for _, s := range states {
				if got == s {
					return
				}
			}
			d.t.Errorf("victim is %s, want one of %v", got, states)
		}
	}
	cases := []faultCase{
		{point: "create-before-record", victim: "engine",
			act:   act("create", "--name", "victim", "busybox", "sleep", "100"),
			check: wantState("absent")},
		{point: "start-before-net", victim: "engine", setup: sleeper, act: act("start", "victim"),
			check: wantState("created")},
		{point: "start-after-net", victim: "engine", setup: sleeper, act: act("start", "victim"),
			check: wantState("created")},
		{point: "start-after-spawn", victim: "engine", setup: sleeper, act: act("start", "victim"),
			check: wantState("created", "exited")},
		{point: "exec-after-start", victim: "engine", setup: runner, act: act("exec", "victim", "sleep", "50"),
			check: wantState("running")},
		{point: "stop-after-signal", victim: "engine", setup: runner, act: act("stop", "victim"),
			check: wantState("running", "exited")},
		{point: "rm-mid", victim: "engine", setup: runner, act: act("rm", "-f", "victim"),
			check: wantState("absent", "exited")},
		{point: "pull-mid-layer", victim: "engine",
			act: func(d *daemon, f *faultEnv) { d.skiffT(30*time.Second, "pull", f.ref) },
			check: func(d *daemon, f *faultEnv) {
				// Whole or absent, and the next pull works.
				if out, _, code := d.skiff("image", "inspect", "-f", "{{len .RootFS.Layers}}", f.ref); code == 0 && out != "3\n" {
					d.t.Errorf("image after the killed pull has %s layers", out)
				}
				d.must("pull", f.ref)
			}},
		{point: "build-mid-run", victim: "engine",
			act: func(d *daemon, f *faultEnv) { d.skiffT(30*time.Second, "build", "-t", "built", f.ctxDir) },
			check: func(d *daemon, f *faultEnv) {
				if _, _, code := d.skiff("image", "inspect", "built"); code == 0 {
					d.t.Error("the killed build left an image")
				}
				if out := d.must("ps", "-aq"); out != "" {
					d.t.Errorf("the killed build left containers: %s", out)
				}
			}},
		{point: "commit-after-layer", victim: "engine",
			setup: func(d *daemon, f *faultEnv) {
				d.must("run", "-d", "--name", "victim", "busybox", "sh", "-c", "echo hi > /f; sleep 100")
			},
			act: act("commit", "victim", "committed"),
			check: func(d *daemon, f *faultEnv) {
				wantState("running")(d, f)
				if _, _, code := d.skiff("image", "inspect", "committed"); code == 0 {
					d.t.Error("the killed commit left an image")
				}
				d.must("commit", "victim", "committed")
				if out := d.must("run", "--rm", "committed", "cat", "/f"); out != "hi\n" {
					d.t.Errorf("committed image: %q", out)
				}
			}},
		{point: "monitor-before-ready", victim: "monitor",
			act:   act("run", "-d", "--name", "victim", "-p", "127.0.0.1::80", "busybox", "sleep", "100"),
			check: wantState("created", "exited")},
		{point: "monitor-after-start", victim: "monitor",
			act:   act("run", "-d", "--name", "victim", "-p", "127.0.0.1::80", "busybox", "sleep", "100"),
			check: wantState("created")}, // the start failed: no reply
		{point: "monitor-after-exit-record", victim: "monitor",
			// The child keeps no pipe open: the monitor writes exit.json at
			// once and dies before it removes the cgroup (and the child).
			act:   act("run", "--name", "victim", "busybox", "sh", "-c", "sleep 100 >/dev/null 2>&1 & exit 3"),
			check: wantState("exited")},
		{point: "init-before-setup", victim: "init",
			act:   act("run", "-d", "--name", "victim", "-p", "127.0.0.1::80", "busybox", "sleep", "100"),
			check: wantState("created", "exited")},
	}
	// The kills that leave a cgroup behind, again on cgroup v2 (cgroup.kill
	// instead of the v1 freezer and per-pid kills).
	for _, c := range cases {
		switch c.point {
		case "start-after-spawn", "monitor-after-start", "monitor-after-exit-record":
			c.cgroup2 = true
			cases = append(cases, c)
		}
	}
	fb := faultBins(t)
	var reg *testRegistry
	ref := ""
	for _, c := range cases {
		if c.point == "pull-mid-layer" {
			reg = startRegistry(t, "", "")
			ref = reg.host + "/e2e/faults:v1"
			img, err := random.Image(4<<20, 3)
			if err != nil {
				t.Fatal(err)
			}
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			if err := remote.Write(r, img); err != nil {
				t.Fatal(err)
			}
		}
	}
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM busybox\nRUN echo a > /a && sleep 5\n"), 0o644)
	for _, c := range cases {
		name := c.point
		if c.cgroup2 {
			name += "-cgroup2"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := &faultEnv{t: t, ref: ref, ctxDir: ctxDir}
			mark := filepath.Join(t.TempDir(), "hit")
			d := startDaemonSetup(t, c.cgroup2, func(d *daemon) {
				d.bins = fb
				d.prepare = func(cmd *exec.Cmd) {
					cmd.Env = append(os.Environ(), "SKIFF_FAULT="+c.point, "SKIFF_FAULT_MARK="+mark)
				}
			})
			baseRules := nftRuleCount(d)
			d.importBusybox()
			if c.setup != nil {
				c.setup(d, f)
			}
			c.act(d, f)
			deadline := time.Now().Add(15 * time.Second)
			for {
				if _, err := os.Stat(mark); err == nil {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the %s never reached %s", c.victim, c.point)
				}
				time.Sleep(20 * time.Millisecond)
			}
			// The engine starts again without the fault.
			d.prepare = nil
			if c.victim == "engine" {
				d.waitDead()
			} else {
				d.stop()
			}
			d.start()
			if c.check != nil {
				c.check(d, f)
			}
			d.checkAllUsable()
			d.removeAll()
			d.checkNothingLeft(baseRules)
		})
	}
}

// waitDead reaps a daemon that killed itself.
func (d *daemon) waitDead() {
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.t.Fatal("the engine did not die")
	}
	d.cmd = nil
	d.cli.Close()
	d.logf.Close()
}

// checkAllUsable asserts that ps, inspect and logs work on every container
// and that each works: a running one runs an exec, another one starts.
func (d *daemon) checkAllUsable() {
	d.t.Helper()
	for _, id := range strings.Fields(d.must("ps", "-aq", "--no-trunc")) {
		st := strings.TrimSpace(d.must("inspect", "-f", "{{.State.Status}}", id))
		d.must("logs", id)
		switch st {
		case "running":
			d.must("exec", id, "true")
		case "created", "exited":
			// Nothing of an earlier run may outlive it: no process in its
			// cgroup, no mount, no veth.
			if l := d.containerLeftovers(id); len(l) > 0 {
				d.t.Errorf("%s container %s holds:\n%s", st, id, strings.Join(l, "\n"))
			}
			d.must("start", id)
		default:
			d.t.Errorf("container %s is stuck %s", id, st)
		}
	}
}

// removeAll removes every container and image through the API.
func (d *daemon) removeAll() {
	d.t.Helper()
	for _, id := range strings.Fields(d.must("ps", "-aq", "--no-trunc")) {
		d.must("rm", "-f", id)
	}
	for _, id := range strings.Fields(d.must("images", "-aq")) {
		d.skiff("rmi", "-f", id) // an id listed under two tags goes with the first
	}
	if out := d.must("images", "-aq"); out != "" {
		d.t.Errorf("images left after rmi: %s", out)
	}
}

// nftRuleCount counts the rules in the daemon's nftables table.
func nftRuleCount(d *daemon) int {
	_, _, table := netNames(d.root)
	out, _ := exec.Command("nft", "-a", "list", "table", "ip", table).Output()
	n := 0
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if strings.Contains(l, "# handle") && !strings.HasPrefix(l, "chain ") && !strings.HasPrefix(l, "table ") &&
			!strings.HasPrefix(l, "set ") && !strings.HasPrefix(l, "map ") {
			n++
		}
	}
	return n
}

// checkNothingLeft asserts that a daemon without containers or images
// holds nothing of them: no cgroup, mount, veth, netns, nftables rule,
// container process, temp or ingest file, blob or snapshot.
func (d *daemon) checkNothingLeft(baseRules int) {
	d.t.Helper()
	var leaks []string
	deadline := time.Now().Add(5 * time.Second)
	for {
		leaks = d.runLeftovers(baseRules)
		if len(leaks) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(leaks) > 0 {
		d.t.Errorf("left behind:\n%s", strings.Join(leaks, "\n"))
	}
}

func (d *daemon) runLeftovers(baseRules int) []string {
	var out []string
	for _, h := range cgroupHierarchies() {
		p := filepath.Join("/sys/fs/cgroup", h, d.cgParent)
		ents, _ := os.ReadDir(p)
		for _, e := range ents {
			if e.IsDir() {
				out = append(out, "cgroup "+filepath.Join(p, e.Name()))
			}
		}
	}
	data, exec_ := filepath.Join(d.root, "data"), filepath.Join(d.root, "exec")
	for _, l := range strings.Split(d.daemonMountinfo(), "\n") {
		if strings.Contains(l, d.root) {
			out = append(out, "mount "+l)
		}
	}
	br, _, _ := netNames(d.root)
	if ents, _ := os.ReadDir("/sys/class/net/" + br + "/brif"); len(ents) > 0 {
		for _, e := range ents {
			out = append(out, "veth "+e.Name())
		}
	}
	if n := nftRuleCount(d); n != baseRules {
		out = append(out, fmt.Sprintf("nftables: %d rules, %d when the daemon started", n, baseRules))
	}
	for _, dir := range []string{
		filepath.Join(exec_, "netns"), filepath.Join(exec_, "containers"), filepath.Join(data, "containers"),
		filepath.Join(data, "content", "ingest"), filepath.Join(data, "content", "blobs", "sha256"),
		filepath.Join(data, "tmp", "build"),
	} {
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			out = append(out, "file "+filepath.Join(dir, e.Name()))
		}
	}
	ents, _ := os.ReadDir(filepath.Join(data, "snapshots"))
	for _, e := range ents {
		if e.Name() != "empty" {
			out = append(out, "snapshot "+e.Name())
		}
	}
	// Processes of the daemon's containers: their monitors name the
	// root; the containers' own processes are in the cgroups above.
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), "skiff-shim") && strings.Contains(string(b), d.root) {
			out = append(out, "process "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
