package tests

import (
	"bytes"
	"context"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestRunFlags runs every flag of `docker run --help` (docker CLI 28) through
// the docker CLI and through skiff's own CLI against one daemon, and asserts
// the flag's effect inside the container or on inspect, or Docker's refusal.
//
// Every row must pass. TestRunFlagsCoverDockerRunHelp keeps the table
// complete.
//
// What skiff refuses, and why (dockerd refuses the same, or warns):
//   - --gpus: skiff has no device driver (dockerd's come from the NVIDIA
//     container toolkit): "could not select device driver".
//   - --isolation other than "default": Linux has no other isolation.
//   - --runtime other than runc, io.containerd.runc.v2 or skiff: skiff has
//     one runtime, which answers to dockerd's names for its default one.
//   - --storage-opt: overlay snapshots have no quota (dockerd's overlay2
//     refuses it unless on xfs with pquota).
//   - --platform of another architecture: the image is not of that
//     platform (dockerd's NotFound, so a client pulls the right one).
//   - --cpu-count, --cpu-percent, --io-maxbandwidth, --io-maxiops: Windows
//     only; both CLIs refuse them against a Linux daemon (exit 1).
//   - --kernel-memory: API 1.42 dropped the field (kernels since 5.4
//     deprecate kmem limits); skiff's CLI warns that it is discarded.
//   - --cpu-rt-period/--cpu-rt-runtime: refused where the kernel has no
//     real-time group scheduling (cgroup v2); on v1 they reach the cgroup,
//     where a runtime needs a real-time budget in the parent that neither
//     dockerd (without its --cpu-rt-runtime) nor skiff gives.
//   - --blkio-weight(-device) on a host without CFQ/BFQ: discarded with
//     dockerd's warning.
//   - --security-opt keys dockerd's parser does not know; --annotation keys
//     under skiff's own org.skiff. prefix; --volume-driver other than local
//     (no volume plugins); --disable-content-trust=false in skiff's CLI (no
//     Docker Content Trust).
func TestRunFlags(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	env := newRunFlagsEnv(t, d)
	rows := runFlagRows(env.facts)
	type job struct {
		row    *runFlagRow
		client string
		rec    *rowRecorder
	}
	var jobs []*job
	for i := range rows {
		r := &rows[i]
		for _, client := range []string{"docker", "skiff"} {
			if r.only != "" && r.only != client {
				continue
			}
			jobs = append(jobs, &job{row: r, client: client, rec: &rowRecorder{}})
		}
	}
	// Rows run in parallel, more of them than the test binary's -parallel
	// (the CPU count): most of a row's time is spent waiting on the daemon.
	sem := make(chan struct{}, 6)
	var wg sync.WaitGroup
	start := time.Now()
	for i, j := range jobs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e := env.rowEnv(j.rec, j.row, j.client, i)
			t0 := time.Now()
			defer func() { e.Logf("took %v", time.Since(t0).Round(time.Millisecond)) }()
			defer e.cleanup()
			j.row.exec(e)
		}()
	}
	wg.Wait()
	t.Logf("%d runs in %v", len(jobs), time.Since(start).Round(time.Millisecond))
	for _, j := range jobs {
		t.Run(j.client+"/"+j.row.id(), func(t *testing.T) {
			for _, l := range j.rec.logs {
				t.Log(l)
			}
			for _, e := range j.rec.errs {
				t.Error(e)
			}
		})
	}
}

// runFlagRow is one case of TestRunFlags: `CLI run [-d] --name {n} ARGS
// IMAGE sh -c CMD` and what must come of it. In args, cmd and the patterns,
// {n} is the container's name, {dir} a directory of the row's own, and the
// other {keys} are the host facts of runFlagsEnv.vars (quoted in patterns).
type runFlagRow struct {
	flag string // the long name of the `docker run` flag covered
	name string // tells several rows of one flag apart

	args   []string // the flags, before the image
	image  string   // default busybox
	cmd    string   // run as sh -c CMD; empty: argv, or the image's command
	argv   []string // the command as is, instead of cmd
	stdin  string
	noName bool // run without --name {n} (the row names it itself)
	// peer, when set, runs first as `run -d --name {n}-peer PEERARGS busybox sh -c PEER`.
	peer     string
	peerArgs []string
	setup    []string // commands of the same CLI run before, split on spaces
	files    map[string]string

	out    string // a regexp stdout must match
	errOut string // a regexp stderr must match
	code   int    // the run's exit code
	// refuse: Docker's refusal; stderr contains it and the run exits
	// refuseCode (125 unless set), leaving no container behind.
	refuse     string
	refuseCode int
	inspect    string // an `inspect -f` format; the output must match inspectOut
	inspectOut string
	check      func(e *rowEnv) // further assertions, after the run
	custom     func(e *rowEnv) // runs instead of the run above

	only string // "docker" or "skiff": the row is for one CLI only
}

func (r *runFlagRow) id() string {
	if r.name != "" {
		return r.flag + "/" + r.name
	}
	return r.flag
}

func (r *runFlagRow) exec(e *rowEnv) {
	if r.custom != nil {
		r.custom(e)
		return
	}
	for p, content := range r.files {
		if err := os.WriteFile(filepath.Join(e.dir, p), []byte(e.expand(content)), 0o644); err != nil {
			e.Fatalf("%v", err)
		}
	}
	for _, s := range r.setup {
		args := strings.Fields(e.expand(s))
		if _, errOut, code := e.cli(args...); code != 0 {
			e.Fatalf("setup %v: exit %d: %s", args, code, errOut)
		}
	}
	if r.peer != "" {
		args := append(append([]string{"run", "-d", "--name", e.name + "-peer"}, e.expandAll(r.peerArgs)...), "busybox", "sh", "-c", e.expand(r.peer))
		if _, errOut, code := e.cli(args...); code != 0 {
			e.Fatalf("peer: exit %d: %s", code, errOut)
		}
	}
	args := []string{"run"}
	if !r.noName {
		args = append(args, "--name", e.name)
	}
	args = append(args, e.expandAll(r.args)...)
	image := r.image
	if image == "" {
		image = "busybox"
	}
	args = append(args, e.expand(image))
	switch {
	case r.cmd != "":
		args = append(args, "sh", "-c", e.expand(r.cmd))
	case r.argv != nil:
		args = append(args, e.expandAll(r.argv)...)
	}
	var stdin *strings.Reader
	if r.stdin != "" {
		stdin = strings.NewReader(r.stdin)
	}
	e.stdout, e.stderr, e.code = e.cliIn(stdin, args...)
	e.Logf("%s %q: exit %d\nstdout: %q\nstderr: %q", e.client, args, e.code, e.stdout, e.stderr)
	if r.refuse != "" {
		want := r.refuseCode
		if want == 0 {
			want = 125
		}
		if e.code != want || !strings.Contains(e.stderr, e.expand(r.refuse)) {
			e.Errorf("want the refusal %q and exit %d; got exit %d, stderr %q", e.expand(r.refuse), want, e.code, e.stderr)
		}
		if !r.noName {
			if _, _, code := e.cli("inspect", "--type", "container", e.name); code == 0 {
				e.Errorf("the refused run left container %s", e.name)
			}
		}
		if r.check != nil {
			r.check(e)
		}
		return
	}
	if e.code != r.code {
		e.Errorf("exit %d, want %d; stderr %q", e.code, r.code, e.stderr)
	}
	if r.out != "" && !e.match(r.out, e.stdout) {
		e.Errorf("stdout %q does not match %q", e.stdout, e.expandRe(r.out))
	}
	if r.errOut != "" && !e.match(r.errOut, e.stderr) {
		e.Errorf("stderr %q does not match %q", e.stderr, e.expandRe(r.errOut))
	}
	if r.inspect != "" {
		out := e.inspect(r.inspect)
		if !e.match(r.inspectOut, out) {
			e.Errorf("inspect %s = %q, does not match %q", r.inspect, out, e.expandRe(r.inspectOut))
		}
	}
	if r.check != nil {
		r.check(e)
	}
}

// hostFacts are what rows expect of this host.
type hostFacts struct {
	arch        string // GOARCH of the images (busybox is the host's)
	otherArch   string
	cgroupV1    bool // the daemon runs containers on the v1 hierarchies
	blkioWeight bool // the block I/O weight file exists (BFQ or CFQ)
	memsw       bool // swap accounting (memory.memsw.*)
	rtSched     bool // real-time group scheduling (cpu.rt_runtime_us)
	blockDev    string
	blockMajMin string
	capBnd      string // the test's bounding set, as in /proc/self/status
}

func probeHostFacts(t *testing.T) hostFacts {
	f := hostFacts{arch: runtime.GOARCH, otherArch: "arm64"}
	if f.arch == "arm64" {
		f.otherArch = "amd64"
	}
	_, err := os.Stat("/sys/fs/cgroup/memory")
	f.cgroupV1 = err == nil
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	f.blkioWeight = exists("/sys/fs/cgroup/blkio/blkio.weight") || exists("/sys/fs/cgroup/blkio/blkio.bfq.weight")
	f.memsw = exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
	f.rtSched = exists("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")
	// A block device for the throttle rows: the first one in /sys/block
	// that has its node in /dev.
	ents, _ := os.ReadDir("/sys/block")
	for _, e := range ents {
		if b, err := os.ReadFile(filepath.Join("/sys/block", e.Name(), "dev")); err == nil && exists("/dev/"+e.Name()) {
			f.blockDev, f.blockMajMin = "/dev/"+e.Name(), strings.TrimSpace(string(b))
			break
		}
	}
	if f.blockDev == "" {
		t.Fatal("no block device in /sys/block with a node in /dev")
	}
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "CapBnd:\t"); ok {
			f.capBnd = v
		}
	}
	return f
}

type runFlagsEnv struct {
	t     *testing.T
	d     *daemon
	facts hostFacts
	vars  map[string]string
}

func newRunFlagsEnv(t *testing.T, d *daemon) *runFlagsEnv {
	f := probeHostFacts(t)
	e := &runFlagsEnv{t: t, d: d, facts: f, vars: map[string]string{}}
	hostname, _ := os.Hostname()
	e.vars["hostname"] = hostname
	for _, ns := range []string{"pid", "ipc", "uts", "net", "cgroup", "user"} {
		l, err := os.Readlink("/proc/self/ns/" + ns)
		if err != nil {
			t.Fatal(err)
		}
		e.vars["hostns-"+ns] = l
	}
	_, bip, _ := netNames(d.root)
	e.vars["gw"] = strings.TrimSuffix(bip, "/24")
	e.vars["blk"], e.vars["blkmm"] = f.blockDev, f.blockMajMin
	e.vars["arch"], e.vars["otherarch"] = f.arch, f.otherArch
	// A user network of this daemon's own, with a subnet no other test uses.
	h := fnv.New32a()
	h.Write([]byte(d.root))
	v := h.Sum32()
	e.vars["netpfx"] = fmt.Sprintf("10.%d.%d", 252+v%3, (v>>8)%256)
	e.vars["net"] = "flagnet"
	d.must("network", "create", "--subnet", e.vars["netpfx"]+".0/24", "flagnet")
	t.Cleanup(func() { d.skiff("network", "rm", "flagnet") })
	// An image with a HEALTHCHECK, for --no-healthcheck.
	d.mustIn(strings.NewReader("FROM busybox\nHEALTHCHECK --interval=1s CMD true\n"), "build", "-q", "-t", "hcbox", "-")
	// A registry on loopback with busybox in it, for --pull and --quiet.
	reg := startRegistry(t, "", "")
	e.vars["reg"] = reg.host
	d.must("tag", "busybox", reg.host+"/flags/busybox")
	d.must("push", reg.host+"/flags/busybox")
	return e
}

// rowEnv is one run of a row through one CLI. It records failures like a
// testing.T, so rows can run on goroutines of their own.
type rowEnv struct {
	*rowRecorder
	env    *runFlagsEnv
	d      *daemon
	row    *runFlagRow
	client string
	name   string
	dir    string
	vars   map[string]string

	stdout, stderr string
	code           int
	cleanups       []func()
}

type rowRecorder struct {
	mu   sync.Mutex
	errs []string
	logs []string
}

func (r *rowRecorder) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

// Fatalf records the failure and ends the row's goroutine.
func (r *rowRecorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	runtime.Goexit()
}

func (r *rowRecorder) Logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logs = append(r.logs, fmt.Sprintf(format, args...))
}

func (env *runFlagsEnv) rowEnv(rec *rowRecorder, row *runFlagRow, client string, i int) *rowEnv {
	dir, err := os.MkdirTemp(env.d.root, "row-")
	if err != nil {
		env.t.Fatal(err)
	}
	e := &rowEnv{rowRecorder: rec, env: env, d: env.d, row: row, client: client,
		name: fmt.Sprintf("rf%d-%s", i, client), dir: dir, vars: map[string]string{}}
	for k, v := range env.vars {
		e.vars[k] = v
	}
	e.vars["n"], e.vars["dir"], e.vars["i"] = e.name, dir, fmt.Sprintf("%x", i)
	e.vars["cgp"] = env.d.cgParent + "/" + e.name + "-parent"
	return e
}

func (e *rowEnv) cleanup() {
	for i := len(e.cleanups) - 1; i >= 0; i-- {
		e.cleanups[i]()
	}
	e.cli("rm", "-f", e.name, e.name+"-peer")
}

func (e *rowEnv) expand(s string) string {
	for k, v := range e.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

func (e *rowEnv) expandAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = e.expand(s)
	}
	return out
}

// expandRe expands {keys} in a pattern, quoted.
func (e *rowEnv) expandRe(s string) string {
	for k, v := range e.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", regexp.QuoteMeta(v))
	}
	return s
}

func (e *rowEnv) match(pattern, s string) bool {
	re, err := regexp.Compile(e.expandRe(pattern))
	if err != nil {
		e.Fatalf("pattern %q: %v", pattern, err)
	}
	return re.MatchString(s)
}

// cli runs the row's CLI (docker or skiff) against the daemon.
func (e *rowEnv) cli(args ...string) (string, string, int) {
	return e.cliIn(nil, args...)
}

func (e *rowEnv) cliIn(stdin *strings.Reader, args ...string) (string, string, int) {
	cmd := e.command(args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr = &so, &se
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := cmd.Start(); err != nil {
		e.Fatalf("%s %v: %v", e.client, args, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		cmd.Process.Kill()
		<-done
		e.Fatalf("%s %v: timed out", e.client, args)
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		e.Fatalf("%s %v: %v", e.client, args, err)
	}
	return so.String(), se.String(), code
}

func (e *rowEnv) command(args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if e.client == "docker" {
		cmd = exec.Command("docker", args...)
	} else {
		cmd = exec.Command(filepath.Join(binDir, "skiff"), append([]string{"-H", e.d.host}, args...)...)
	}
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.d.host, "DOCKER_CONFIG="+filepath.Join(e.d.root, "dockercfg-"+e.client))
	return cmd
}

func (e *rowEnv) must(args ...string) string {
	out, errOut, code := e.cli(args...)
	if code != 0 {
		e.Fatalf("%s %v: exit %d: %s", e.client, args, code, errOut)
	}
	return out
}

func (e *rowEnv) inspect(format string) string {
	return strings.TrimSpace(e.must("inspect", "-f", e.expand(format), e.name))
}

// exec runs sh -c CMD in the row's (running) container.
func (e *rowEnv) exec(cmd string) string {
	return e.must("exec", e.name, "sh", "-c", e.expand(cmd))
}

// waitInspect polls an inspect format until its output matches pattern.
func (e *rowEnv) waitInspect(format, pattern string, within time.Duration) string {
	deadline := time.Now().Add(within)
	for {
		out := e.inspect(format)
		if e.match(pattern, out) {
			return out
		}
		if time.Now().After(deadline) {
			e.Errorf("inspect %s = %q, did not come to match %q within %v", format, out, pattern, within)
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *rowEnv) id() string { return e.inspect("{{.Id}}") }

// cgroupFile reads a file of the container's cgroup on the host, from the
// v1 controller's hierarchy or the v2 one.
func (e *rowEnv) cgroupFile(parent, ctrl, file string) (string, error) {
	id := e.id()
	p := filepath.Join("/sys/fs/cgroup", ctrl, parent, id, file)
	if !e.env.facts.cgroupV1 {
		p = filepath.Join("/sys/fs/cgroup", parent, id, file)
	}
	b, err := os.ReadFile(p)
	return strings.TrimSpace(string(b)), err
}

// cgroupRead is what a container sees of its own cgroup: the v1 controller
// file, else the v2 one.
func cgroupRead(v1, v2 string) string {
	return fmt.Sprintf("cat /sys/fs/cgroup/%s 2>/dev/null || cat /sys/fs/cgroup/%s", v1, v2)
}

// capEff is the CapEff line of a set of capability numbers.
func capEff(caps ...int) string {
	var v uint64
	for _, c := range caps {
		v |= 1 << c
	}
	return fmt.Sprintf("CapEff:\t%016x\n", v)
}

// Docker's default capabilities, by number.
var defaultCapNums = []int{0, 1, 3, 4, 5, 6, 7, 8, 10, 13, 18, 27, 29, 31}

func without(list []int, drop int) []int {
	var out []int
	for _, v := range list {
		if v != drop {
			out = append(out, v)
		}
	}
	return out
}

// healthRow is a detached container whose health the check polls.
func healthRow(flag string, args []string, check func(e *rowEnv)) runFlagRow {
	return runFlagRow{flag: flag, args: append([]string{"-d"}, args...), cmd: "sleep 60", check: check}
}

func runFlagRows(f hostFacts) []runFlagRow {
	v1 := f.cgroupV1
	rows := []runFlagRow{
		{flag: "add-host", args: []string{"--add-host", "h1.test:10.1.2.3"}, cmd: "grep h1.test /etc/hosts", out: `^10\.1\.2\.3\s+h1\.test\n$`},
		{flag: "add-host", name: "host-gateway", args: []string{"--add-host", "hg.test:host-gateway"}, cmd: "grep hg.test /etc/hosts", out: `^{gw}\s+hg\.test\n$`},
		{flag: "annotation", args: []string{"-d", "--annotation", "org.example.k=v1"}, cmd: "sleep 60",
			inspect: "{{json .HostConfig.Annotations}}", inspectOut: `^\{"org\.example\.k":"v1"\}$`,
			check: func(e *rowEnv) {
				// Passed through to the OCI runtime: the bundle's spec.
				b, err := os.ReadFile(filepath.Join(e.d.root, "exec", "containers", e.id(), "config.json"))
				if err != nil || !strings.Contains(string(b), `"org.example.k":"v1"`) {
					e.Errorf("the annotation is not in the OCI spec: %v\n%s", err, b)
				}
			}},
		{flag: "annotation", name: "reserved", args: []string{"--annotation", "org.skiff.rootfs.overlay=x"}, cmd: "true",
			refuse: "invalid Annotations: the org.skiff. prefix is reserved for skiff's runtime"},
		{flag: "attach", args: []string{"-a", "stdout"}, cmd: "echo out; echo err >&2", out: `^out\n$`,
			check: func(e *rowEnv) {
				if strings.Contains(e.stderr, "err") {
					e.Errorf("stderr attached: %q", e.stderr)
				}
			}},
		{flag: "cap-add", args: []string{"--cap-add", "NET_ADMIN"}, cmd: "grep CapEff /proc/self/status", out: "^" + capEff(append(defaultCapNums, 12)...) + "$"},
		{flag: "cap-drop", args: []string{"--cap-drop", "CHOWN"}, cmd: "grep CapEff /proc/self/status; chown 1 /tmp", code: 1,
			out: "^" + capEff(without(defaultCapNums, 0)...) + "$", errOut: "Operation not permitted"},
		{flag: "cgroup-parent", args: []string{"-d", "--cgroup-parent", "{cgp}"}, cmd: "sleep 60",
			inspect: "{{.HostConfig.CgroupParent}}", inspectOut: "^{cgp}$",
			check: func(e *rowEnv) {
				cgp := e.vars["cgp"]
				e.cleanups = append(e.cleanups, func() {
					e.cli("rm", "-f", e.name)
					removeCgroupDirs(cgp)
				})
				if _, err := e.cgroupFile(cgp, "pids", "cgroup.procs"); err != nil {
					e.Errorf("no cgroup under the parent: %v", err)
				}
			}},
		{flag: "cgroupns", name: "host", args: []string{"--cgroupns", "host"}, cmd: "readlink /proc/self/ns/cgroup", out: "^{hostns-cgroup}\n$"},
		{flag: "cgroupns", name: "private", args: []string{"--cgroupns", "private"}, cmd: "readlink /proc/self/ns/cgroup",
			check: func(e *rowEnv) {
				if strings.TrimSpace(e.stdout) == e.vars["hostns-cgroup"] {
					e.Errorf("--cgroupns private shares the host's namespace")
				}
			}},
		{flag: "cidfile", args: []string{"--cidfile", "{dir}/cid"}, cmd: "true",
			check: func(e *rowEnv) {
				b, err := os.ReadFile(filepath.Join(e.dir, "cid"))
				if id := e.id(); err != nil || string(b) != id {
					e.Errorf("cidfile holds %q (%v), want %s", b, err, id)
				}
			}},
		{flag: "cidfile", name: "exists", files: map[string]string{"cid": "x"}, args: []string{"--cidfile", "{dir}/cid"}, cmd: "true",
			refuse: "container ID file found, make sure the other container isn't running or delete {dir}/cid"},
		{flag: "cpu-count", args: []string{"--cpu-count", "2"}, cmd: "true", refuseCode: 1,
			refuse: `"--cpu-count" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux`},
		{flag: "cpu-percent", args: []string{"--cpu-percent", "20"}, cmd: "true", refuseCode: 1,
			refuse: `"--cpu-percent" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux`},
		{flag: "cpu-period", args: []string{"--cpu-period", "50000"}, cmd: cgroupRead("cpu/cpu.cfs_period_us", "cpu.max"), out: `^(max )?50000\n$`},
		{flag: "cpu-quota", args: []string{"--cpu-quota", "20000"}, cmd: cgroupRead("cpu/cpu.cfs_quota_us", "cpu.max"), out: `^20000( 100000)?\n$`},
		{flag: "cpu-shares", args: []string{"-c", "512"}, cmd: cgroupRead("cpu/cpu.shares", "cpu.weight"), out: `^(512|20)\n$`},
		{flag: "cpus", args: []string{"--cpus", "0.5"}, cmd: cgroupRead("cpu/cpu.cfs_quota_us", "cpu.max"), out: `^50000( 100000)?\n$`},
		{flag: "cpuset-cpus", args: []string{"--cpuset-cpus", "0"}, cmd: "grep Cpus_allowed_list /proc/self/status", out: `^Cpus_allowed_list:\s+0\n$`},
		{flag: "cpuset-cpus", name: "unavailable", args: []string{"--cpuset-cpus", "64"}, cmd: "true", refuse: "Requested CPUs are not available - requested 64, available: 0-"},
		{flag: "cpuset-mems", args: []string{"--cpuset-mems", "0"}, cmd: "grep Mems_allowed_list /proc/self/status", out: `^Mems_allowed_list:\s+0\n$`},
		{flag: "cpuset-mems", name: "unavailable", args: []string{"--cpuset-mems", "7"}, cmd: "true", refuse: "Requested memory nodes are not available - requested 7, available: 0"},
		{flag: "detach", args: []string{"-d"}, cmd: "sleep 60", out: `^[0-9a-f]{64}\n$`, inspect: "{{.State.Running}}", inspectOut: "^true$"},
		// The detach keys, read from stdin, end the client's attachment
		// and leave the container running.
		{flag: "detach-keys", custom: detachKeysCheck},
		{flag: "disable-content-trust", name: "false", only: "skiff", args: []string{"--disable-content-trust=false"}, cmd: "true",
			refuse: "skiff does not verify image signatures (Docker Content Trust is not supported)"},
		{flag: "disable-content-trust", args: []string{"--disable-content-trust"}, cmd: "echo ok", out: "^ok\n$"},
		{flag: "dns", args: []string{"--dns", "10.9.8.7"}, cmd: "grep nameserver /etc/resolv.conf", out: `^nameserver 10\.9\.8\.7\n$`},
		{flag: "dns-option", args: []string{"--dns-option", "ndots:3"}, cmd: "grep options /etc/resolv.conf", out: `^options ndots:3\n$`},
		{flag: "dns-search", args: []string{"--dns-search", "ex.test"}, cmd: "grep search /etc/resolv.conf", out: `^search ex\.test\n$`},
		{flag: "domainname", args: []string{"--domainname", "ex.org"}, cmd: "cat /proc/sys/kernel/domainname", out: "^ex.org\n$"},
		{flag: "entrypoint", args: []string{"--entrypoint", "echo"}, argv: []string{"from", "entrypoint"}, out: "^from entrypoint\n$"},
		{flag: "env", args: []string{"-e", "A=b c"}, cmd: `echo "$A"`, out: "^b c\n$"},
		{flag: "env-file", files: map[string]string{"env": "# a comment\nEF=from-file\n"}, args: []string{"--env-file", "{dir}/env"}, cmd: `echo "$EF"`, out: "^from-file\n$"},
		{flag: "expose", args: []string{"--expose", "7777"}, cmd: "true", inspect: "{{json .Config.ExposedPorts}}", inspectOut: `"7777/tcp":\{\}`},
		{flag: "gpus", args: []string{"--gpus", "all"}, cmd: "true", refuse: `could not select device driver "" with capabilities: [[gpu]]`},
		{flag: "group-add", args: []string{"--group-add", "123", "--group-add", "staff"}, cmd: "id -G | tr ' ' '\\n' | sort -n | tr '\\n' ' '", out: "^0 50 123 $"},
		healthRow("health-cmd", []string{"--health-cmd", "test -d /tmp", "--health-interval", "200ms"}, func(e *rowEnv) {
			e.waitInspect("{{.State.Health.Status}}", "^healthy$", 10*time.Second)
		}),
		healthRow("health-interval", []string{"--health-cmd", "echo x >> /tmp/n", "--health-interval", "250ms"}, func(e *rowEnv) {
			e.waitInspect("{{.State.Health.Status}}", "^healthy$", 10*time.Second)
			time.Sleep(1500 * time.Millisecond)
			if n := strings.Count(e.exec("cat /tmp/n"), "x"); n < 4 {
				e.Errorf("%d checks in 1.5 s at an interval of 250ms", n)
			}
		}),
		healthRow("health-retries", []string{"--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "2"}, func(e *rowEnv) {
			e.waitInspect("{{.State.Health.Status}} {{.Config.Healthcheck.Retries}}", "^unhealthy 2$", 10*time.Second)
		}),
		healthRow("health-timeout", []string{"--health-cmd", "sleep 5", "--health-interval", "200ms", "--health-timeout", "300ms", "--health-retries", "1"}, func(e *rowEnv) {
			e.waitInspect("{{.State.Health.Status}}", "^unhealthy$", 10*time.Second)
			if out := e.inspect("{{range .State.Health.Log}}{{.Output}}{{end}}"); !strings.Contains(out, "Health check exceeded timeout (300ms)") {
				e.Errorf("health log: %q", out)
			}
		}),
		healthRow("health-start-period", []string{"--health-cmd", "false", "--health-interval", "200ms", "--health-retries", "1", "--health-start-period", "60s"}, func(e *rowEnv) {
			time.Sleep(1500 * time.Millisecond)
			// Failures within the start period do not count.
			if out := e.inspect("{{.State.Health.Status}} {{.State.Health.FailingStreak}}"); out != "starting 0" {
				e.Errorf("in the start period: %q", out)
			}
		}),
		healthRow("health-start-interval", []string{"--health-cmd", "echo x >> /tmp/n; false", "--health-interval", "60s", "--health-start-period", "60s", "--health-start-interval", "200ms"}, func(e *rowEnv) {
			time.Sleep(1500 * time.Millisecond)
			if n := strings.Count(e.exec("cat /tmp/n 2>/dev/null"), "x"); n < 3 {
				e.Errorf("%d checks in 1.5 s of start period at a start interval of 200ms", n)
			}
		}),
		{flag: "help", args: []string{"--help"}, noName: true, out: `(?s)Usage:\s+\S+ run \[OPTIONS\] IMAGE.*--add-host`},
		{flag: "hostname", args: []string{"-h", "h1.example"}, cmd: "hostname; cat /etc/hostname", out: "^h1.example\nh1.example\n$"},
		{flag: "init", args: []string{"--init"}, cmd: "cat /proc/1/comm; echo $$", out: "^(docker|skiff)-init\n[0-9]+\n$"},
		{flag: "interactive", args: []string{"-i"}, argv: []string{"cat"}, stdin: "from stdin\n", out: "^from stdin\n$"},
		{flag: "io-maxbandwidth", args: []string{"--io-maxbandwidth", "1m"}, cmd: "true", refuseCode: 1,
			refuse: `"--io-maxbandwidth" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux`},
		{flag: "io-maxiops", args: []string{"--io-maxiops", "10"}, cmd: "true", refuseCode: 1,
			refuse: `"--io-maxiops" is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux`},
		{flag: "ip", args: []string{"--network", "{net}", "--ip", "{netpfx}.77"}, only: "docker", cmd: "ip -4 -o addr show eth0", out: `inet {netpfx}\.77/24`},
		{flag: "ip", args: []string{"--network", "{net}", "--ip", "{netpfx}.78"}, only: "skiff", cmd: "ip -4 -o addr show eth0", out: `inet {netpfx}\.78/24`},
		// skiff's networks are IPv4 only (network create --ipv6 is refused,
		// TestNetworkIPv6Refused): an --ip6 finds no subnet, in dockerd's words.
		{flag: "ip6", args: []string{"--network", "{net}", "--ip6", "fd5a:{i}::50"}, cmd: "true",
			refuse: "no configured subnet contains IP address fd5a:{i}::50"},
		{flag: "ipc", name: "host", args: []string{"--ipc", "host"}, cmd: "readlink /proc/self/ns/ipc", out: "^{hostns-ipc}\n$"},
		{flag: "ipc", name: "container", peer: "sleep 60", peerArgs: []string{"--ipc", "shareable"}, args: []string{"--ipc", "container:{n}-peer"}, cmd: "readlink /proc/self/ns/ipc",
			check: func(e *rowEnv) {
				if peer := e.must("exec", e.name+"-peer", "readlink", "/proc/self/ns/ipc"); peer != e.stdout {
					e.Errorf("ipc namespace %q, the peer's %q", e.stdout, peer)
				}
			}},
		{flag: "ipc", name: "none", args: []string{"--ipc", "none"}, cmd: "grep -c ' /dev/shm ' /proc/self/mountinfo", code: 1, out: "^0\n$"},
		{flag: "ipc", name: "private", args: []string{"--ipc", "private"}, cmd: "readlink /proc/self/ns/ipc; grep -c ' /dev/shm ' /proc/self/mountinfo",
			check: func(e *rowEnv) {
				if strings.HasPrefix(e.stdout, e.vars["hostns-ipc"]) || !strings.HasSuffix(e.stdout, "\n1\n") {
					e.Errorf("--ipc private: %q", e.stdout)
				}
			}},
		{flag: "isolation", args: []string{"--isolation", "default"}, cmd: "echo ok", out: "^ok\n$"},
		{flag: "isolation", name: "process", args: []string{"--isolation", "process"}, cmd: "true", refuse: "invalid isolation (process): linux only supports 'default'"},
		// API 1.42 removed KernelMemory: dockerd ignores it as an unknown
		// field; skiff's CLI says it is discarded.
		{flag: "kernel-memory", args: []string{"--kernel-memory", "8m"}, cmd: "echo ok", out: "^ok\n$", check: func(e *rowEnv) {
			if e.client == "skiff" && !strings.Contains(e.stderr, "WARNING: Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.") {
				e.Errorf("no warning that --kernel-memory is discarded: %q", e.stderr)
			}
		}},
		{flag: "label", args: []string{"-l", "a.b=c d"}, cmd: "true", inspect: `{{index .Config.Labels "a.b"}}`, inspectOut: "^c d$"},
		{flag: "label-file", files: map[string]string{"labels": "lf=from-file\n"}, args: []string{"--label-file", "{dir}/labels"}, cmd: "true", inspect: "{{.Config.Labels.lf}}", inspectOut: "^from-file$"},
		{flag: "link", name: "default-bridge", peer: "sleep 60", args: []string{"--link", "{n}-peer:db"}, cmd: "grep -w db /etc/hosts",
			check: func(e *rowEnv) {
				ip := strings.TrimSpace(e.must("inspect", "-f", "{{.NetworkSettings.IPAddress}}", e.name+"-peer"))
				if f := strings.Fields(e.stdout); len(f) < 2 || f[0] != ip {
					e.Errorf("db in /etc/hosts: %q, the peer is at %s", e.stdout, ip)
				}
			}},
		{flag: "link", name: "default-bridge-env", peer: "sleep 60", peerArgs: []string{"-e", "PEERVAR=x"}, args: []string{"--link", "{n}-peer:db"}, cmd: "echo $DB_NAME $DB_ENV_PEERVAR", out: "^/{n}/db x\n$"},
		{flag: "link", name: "user-network", peer: "sleep 60", peerArgs: []string{"--network", "{net}"}, args: []string{"--network", "{net}", "--link", "{n}-peer:db"}, cmd: "ping -c1 -W2 db >/dev/null && echo reached", out: "^reached\n$"},
		{flag: "link-local-ip", args: []string{"--link-local-ip", "169.254.10.10"}, cmd: "ip -4 -o addr show eth0", out: `inet 169\.254\.10\.10/16 `},
		// dockerd takes any address but none or 0.0.0.0/::, on any network.
		{flag: "link-local-ip", name: "user-network", args: []string{"--network", "{net}", "--link-local-ip", "169.254.9.9", "--link-local-ip", "10.99.0.1"}, cmd: "ip -4 -o addr show eth0 | grep -c -e 'inet 169.254.9.9/16 ' -e 'inet 10.99.0.1/16 ' -e 'inet {netpfx}'",
			out: "^3\n$", inspect: "{{json .NetworkSettings.Networks}}", inspectOut: `"LinkLocalIPs":\["169.254.9.9","10.99.0.1"\]`},
		{flag: "link-local-ip", name: "unspecified", args: []string{"--link-local-ip", "0.0.0.0"}, cmd: "true", refuse: "invalid link-local IP address: 0.0.0.0"},
		{flag: "log-driver", name: "json-file", args: []string{"--log-driver", "json-file"}, cmd: "echo logged",
			check: func(e *rowEnv) {
				if out := e.must("logs", e.name); out != "logged\n" {
					e.Errorf("logs: %q", out)
				}
			}},
		{flag: "log-driver", name: "none", args: []string{"--log-driver", "none"}, cmd: "echo logged", out: "^logged\n$",
			check: func(e *rowEnv) {
				if _, errOut, code := e.cli("logs", e.name); code == 0 || !strings.Contains(errOut, "configured logging driver does not support reading") {
					e.Errorf("logs of a none container: exit %d %q", code, errOut)
				}
			}},
		{flag: "log-driver", name: "local", args: []string{"--log-driver", "local"}, cmd: "echo logged",
			check: func(e *rowEnv) {
				if out := e.must("logs", e.name); out != "logged\n" {
					e.Errorf("logs: %q", out)
				}
			}},
		{flag: "log-opt", name: "rotation", args: []string{"--log-opt", "max-size=1k", "--log-opt", "max-file=2"}, cmd: "i=0; while [ $i -lt 100 ]; do echo 0123456789012345678901234567890123456789; i=$((i+1)); done",
			check: func(e *rowEnv) {
				p := e.inspect("{{.LogPath}}")
				st, err := os.Stat(p)
				_, err1 := os.Stat(p + ".1")
				_, err2 := os.Stat(p + ".2")
				if err != nil || st.Size() > 2048 || err1 != nil || err2 == nil {
					e.Errorf("json-file with max-size=1k max-file=2: %v %v %v", err, err1, err2)
				}
			}},
		{flag: "log-opt", name: "labels", args: []string{"-l", "lab=lv", "--log-opt", "labels=lab"}, cmd: "echo logged",
			check: func(e *rowEnv) {
				b, err := os.ReadFile(e.inspect("{{.LogPath}}"))
				if err != nil || !strings.Contains(string(b), `"attrs":{"lab":"lv"}`) {
					e.Errorf("json-file record without the label: %v %s", err, b)
				}
			}},
		{flag: "mac-address", args: []string{"--mac-address", "92:d0:c6:0a:29:33"}, cmd: "cat /sys/class/net/eth0/address", out: "^92:d0:c6:0a:29:33\n$"},
		{flag: "memory", args: []string{"-m", "64m"}, cmd: cgroupRead("memory/memory.limit_in_bytes", "memory.max"), out: "^67108864\n$"},
		{flag: "memory-reservation", args: []string{"--memory-reservation", "32m"}, cmd: cgroupRead("memory/memory.soft_limit_in_bytes", "memory.low"), out: "^33554432\n$"},
		{flag: "memory-swappiness", args: []string{"--memory-swappiness", "10"}, cmd: "cat /sys/fs/cgroup/memory/memory.swappiness", out: "^10\n$"},
		{flag: "mount", name: "bind", files: map[string]string{"f": "bound"}, args: []string{"--mount", "type=bind,source={dir},target=/mnt/b,readonly"}, cmd: "cat /mnt/b/f; touch /mnt/b/g", code: 1, out: "^bound$", errOut: "Read-only file system"},
		{flag: "mount", name: "volume", args: []string{"--mount", "type=volume,source={n}-vol,target=/mnt/v"}, cmd: "touch /mnt/v/x",
			check: func(e *rowEnv) {
				e.cleanups = append(e.cleanups, func() { e.cli("rm", "-f", e.name); e.cli("volume", "rm", e.name+"-vol") })
				mp := strings.TrimSpace(e.must("volume", "inspect", "-f", "{{.Mountpoint}}", e.name+"-vol"))
				if _, err := os.Stat(filepath.Join(mp, "x")); err != nil {
					e.Errorf("file not in the volume: %v", err)
				}
			}},
		{flag: "mount", name: "tmpfs", args: []string{"--mount", "type=tmpfs,target=/mnt/t,tmpfs-size=1m"}, cmd: "grep ' /mnt/t ' /proc/mounts", out: `^tmpfs /mnt/t tmpfs \S*size=1024k`},
		{flag: "name", args: []string{}, cmd: "true", inspect: "{{.Name}}", inspectOut: "^/{n}$"},
		{flag: "network", name: "none", args: []string{"--network", "none"}, cmd: "ls /sys/class/net", out: "^lo\n$"},
		{flag: "network", name: "host", args: []string{"--network", "host"}, cmd: "readlink /proc/self/ns/net", out: "^{hostns-net}\n$"},
		{flag: "network", name: "user", args: []string{"--network", "{net}"}, cmd: "ip -4 -o addr show eth0", out: `inet {netpfx}\.\d+/24`},
		{flag: "network", name: "container", peer: "sleep 60", args: []string{"--network", "container:{n}-peer"}, cmd: "readlink /proc/self/ns/net",
			check: func(e *rowEnv) {
				if peer := e.must("exec", e.name+"-peer", "readlink", "/proc/self/ns/net"); peer != e.stdout {
					e.Errorf("net namespace %q, the peer's %q", e.stdout, peer)
				}
			}},
		{flag: "network-alias", peer: "sleep 60", peerArgs: []string{"--network", "{net}", "--network-alias", "{n}-alias"}, args: []string{"--network", "{net}"}, cmd: "ping -c1 -W2 {n}-alias >/dev/null && echo reached", out: "^reached\n$"},
		{flag: "no-healthcheck", image: "hcbox", args: []string{"-d", "--no-healthcheck"}, cmd: "sleep 60",
			inspect: "{{.Config.Healthcheck.Test}} {{if .State.Health}}health{{else}}none{{end}}", inspectOut: `^\[NONE\] none$`},
		{flag: "oom-score-adj", args: []string{"--oom-score-adj", "200"}, cmd: "cat /proc/self/oom_score_adj", out: "^200\n$"},
		{flag: "oom-score-adj", name: "range", args: []string{"--oom-score-adj", "1001"}, cmd: "true", refuse: "Invalid value 1001, range for oom score adj is [-1000, 1000]"},
		{flag: "pid", name: "host", args: []string{"--pid", "host"}, cmd: "readlink /proc/self/ns/pid", out: "^{hostns-pid}\n$"},
		{flag: "pid", name: "container", peer: "sleep 60", args: []string{"--pid", "container:{n}-peer"}, cmd: "readlink /proc/self/ns/pid",
			check: func(e *rowEnv) {
				if peer := e.must("exec", e.name+"-peer", "readlink", "/proc/self/ns/pid"); peer != e.stdout {
					e.Errorf("pid namespace %q, the peer's %q", e.stdout, peer)
				}
			}},
		{flag: "pids-limit", args: []string{"--pids-limit", "20"}, cmd: cgroupRead("pids/pids.max", "pids.max"), out: "^20\n$"},
		{flag: "platform", args: []string{"--platform", "linux/{arch}"}, cmd: "echo ok", out: "^ok\n$"},
		{flag: "platform", name: "other-arch", args: []string{"--pull", "never", "--platform", "linux/{otherarch}"}, cmd: "true",
			refuse: "image with reference busybox was found but its platform (linux/{arch}) does not match the specified platform (linux/{otherarch})"},
		// Every capability the host's bounding set has.
		{flag: "privileged", args: []string{"--privileged"}, cmd: "grep CapEff /proc/self/status", out: "^CapEff:\t" + f.capBnd + "\n$"},
		{flag: "privileged", name: "devices", args: []string{"--privileged"}, cmd: "test -b {blk} && echo has-{blk}", out: "^has-{blk}\n$"},
		{flag: "publish", args: []string{"-d", "-p", "127.0.0.1::8080"}, cmd: "while :; do echo hi-from-container | nc -l -p 8080; done",
			check: func(e *rowEnv) {
				hostPort := e.inspect(`{{(index (index .NetworkSettings.Ports "8080/tcp") 0).HostPort}}`)
				deadline := time.Now().Add(10 * time.Second)
				for {
					out, _ := exec.Command("busybox", "nc", "-w", "2", "127.0.0.1", hostPort).Output()
					if strings.Contains(string(out), "hi-from-container") {
						return
					}
					if time.Now().After(deadline) {
						e.Errorf("127.0.0.1:%s answered %q", hostPort, out)
						return
					}
					time.Sleep(200 * time.Millisecond)
				}
			}},
		{flag: "publish-all", args: []string{"-d", "-P", "--expose", "8081"}, cmd: "sleep 60",
			inspect: `{{(index (index .NetworkSettings.Ports "8081/tcp") 0).HostPort}}`, inspectOut: "^[1-9][0-9]*$"},
		{flag: "pull", name: "always", args: []string{"--pull", "always"}, image: "{reg}/flags/busybox", cmd: "echo ok", out: "^ok\n$", errOut: "(?i)pull"},
		{flag: "pull", name: "never", args: []string{"--pull", "never"}, image: "{reg}/flags/nosuch", cmd: "true", refuse: "No such image: {reg}/flags/nosuch:latest"},
		{flag: "quiet", args: []string{"-q", "--pull", "always"}, image: "{reg}/flags/busybox", cmd: "echo ok", out: "^ok\n$",
			check: func(e *rowEnv) {
				if e.stderr != "" {
					e.Errorf("-q printed %q", e.stderr)
				}
			}},
		{flag: "read-only", args: []string{"--read-only"}, cmd: "touch /x", code: 1, errOut: "Read-only file system"},
		{flag: "restart", args: []string{"-d", "--restart", "on-failure:2"}, cmd: "exit 3",
			check: func(e *rowEnv) {
				e.waitInspect("{{.RestartCount}} {{.State.Status}} {{.State.ExitCode}}", "^2 exited 3$", 15*time.Second)
			}},
		{flag: "restart", name: "with-rm", args: []string{"--rm", "--restart", "always"}, cmd: "true", refuse: "conflicting options: cannot specify both --restart and --rm"},
		{flag: "rm", args: []string{"--rm"}, cmd: "echo ok", out: "^ok\n$",
			check: func(e *rowEnv) {
				if _, errOut, code := e.cli("inspect", e.name); code == 0 || !strings.Contains(errOut, "No such") {
					e.Errorf("--rm container still there: %q", errOut)
				}
			}},
		{flag: "runtime", args: []string{"--runtime", "runc"}, cmd: "echo ok", out: "^ok\n$"},
		{flag: "runtime", name: "unknown", args: []string{"--runtime", "nosuch"}, cmd: "true", refuse: "unknown or invalid runtime name: nosuch"},
		{flag: "security-opt", name: "no-new-privileges", args: []string{"--security-opt", "no-new-privileges"}, cmd: "grep NoNewPrivs /proc/self/status", out: `^NoNewPrivs:\s+1\n$`},
		{flag: "security-opt", name: "seccomp", args: []string{"--security-opt", "seccomp=unconfined"}, cmd: "grep '^Seccomp:' /proc/self/status", out: `^Seccomp:\s+0\n$`},
		{flag: "security-opt", name: "systempaths", args: []string{"--security-opt", "systempaths=unconfined"}, cmd: "grep -c ' /proc/kcore ' /proc/self/mountinfo", code: 1, out: "^0\n$"},
		{flag: "security-opt", name: "writable-cgroups", args: []string{"--security-opt", "writable-cgroups=true"}, cmd: "awk '$5 == \"/sys/fs/cgroup/pids\" || $5 == \"/sys/fs/cgroup\" {print $6}' /proc/self/mountinfo | cut -d, -f1 | sort -u", out: "^rw\n$"},
		{flag: "security-opt", name: "default-cgroups-ro", args: []string{}, cmd: "awk '$5 == \"/sys/fs/cgroup/pids\" || $5 == \"/sys/fs/cgroup\" {print $6}' /proc/self/mountinfo | cut -d, -f1 | sort -u", out: "^ro\n$"},
		{flag: "security-opt", name: "unknown", args: []string{"--security-opt", "foo=bar"}, cmd: "true", refuse: `invalid --security-opt 2: "foo=bar"`},
		{flag: "shm-size", args: []string{"--shm-size", "2m"}, cmd: "grep ' /dev/shm ' /proc/mounts", out: `size=2048k`},
		{flag: "sig-proxy", name: "true", custom: sigProxyCheck(true)},
		{flag: "sig-proxy", name: "false", custom: sigProxyCheck(false)},
		{flag: "stop-signal", args: []string{"-d", "--stop-signal", "USR1"}, cmd: `trap 'echo got-usr1; exit 0' USR1; echo ready; while :; do sleep 0.1; done`,
			check: func(e *rowEnv) {
				// A signal that PID 1 does not handle yet is discarded:
				// stop only once the trap is set.
				for deadline := time.Now().Add(20 * time.Second); e.must("logs", e.name) != "ready\n" && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
				}
				e.must("stop", "-t", "20", e.name)
				if out := e.must("logs", e.name); out != "ready\ngot-usr1\n" {
					e.Errorf("logs after stop: %q", out)
				}
				if out := e.inspect("{{.State.ExitCode}}"); out != "0" {
					e.Errorf("exit code %s", out)
				}
			}},
		{flag: "stop-timeout", args: []string{"-d", "--stop-timeout", "1"}, cmd: `trap '' TERM; while :; do sleep 0.1; done`,
			check: func(e *rowEnv) {
				start := time.Now()
				e.must("stop", e.name)
				if took := time.Since(start); took > 6*time.Second {
					e.Errorf("stop took %v with --stop-timeout 1", took)
				}
				if out := e.inspect("{{.State.ExitCode}} {{.Config.StopTimeout}}"); out != "137 1" {
					e.Errorf("after stop: %q", out)
				}
			}},
		{flag: "storage-opt", args: []string{"--storage-opt", "size=1G"}, cmd: "true", refuse: "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"},
		{flag: "sysctl", args: []string{"--sysctl", "kernel.shm_rmid_forced=1", "--sysctl", "net.ipv4.tcp_syncookies=0"}, cmd: "cat /proc/sys/kernel/shm_rmid_forced /proc/sys/net/ipv4/tcp_syncookies", out: "^1\n0\n$"},
		{flag: "sysctl", name: "not-namespaced", args: []string{"--sysctl", "vm.swappiness=7"}, cmd: "true", refuse: "sysctl 'vm.swappiness=7' is not allowed"},
		{flag: "tmpfs", args: []string{"--tmpfs", "/run/t:size=1m,mode=1770"}, cmd: "grep ' /run/t ' /proc/mounts; stat -c %a /run/t", out: `^tmpfs /run/t tmpfs \S*size=1024k\S* 0 0\n1770\n$`},
		{flag: "tty", args: []string{"-t"}, cmd: "test -t 1 && echo tty", out: "^tty\r\n$"},
		{flag: "ulimit", args: []string{"--ulimit", "nofile=512:1024"}, cmd: "ulimit -n; ulimit -Hn", out: "^512\n1024\n$"},
		{flag: "use-api-socket", args: []string{"--use-api-socket"}, cmd: "test -S /var/run/docker.sock && echo socket", out: "^socket\n$"},
		{flag: "user", args: []string{"-u", "1:1"}, cmd: "id", out: `^uid=1\(daemon\) gid=1\(daemon\)`},
		{flag: "userns", args: []string{"--userns", "host"}, cmd: "readlink /proc/self/ns/user", out: "^{hostns-user}\n$"},
		{flag: "uts", args: []string{"--uts", "host"}, cmd: "hostname", out: "^{hostname}\n$"},
		{flag: "volume", name: "bind", files: map[string]string{"f": "bound"}, args: []string{"-v", "{dir}:/mnt/b"}, cmd: "cat /mnt/b/f; echo w > /mnt/b/g",
			out: "^bound$", check: func(e *rowEnv) {
				if b, err := os.ReadFile(filepath.Join(e.dir, "g")); err != nil || string(b) != "w\n" {
					e.Errorf("write through the bind: %q %v", b, err)
				}
			}},
		{flag: "volume", name: "anonymous", args: []string{"-v", "/data"}, cmd: "true", inspect: "{{range .Mounts}}{{.Type}} {{.Destination}}{{end}}", inspectOut: "^volume /data$",
			check: func(e *rowEnv) {
				vol := e.inspect("{{range .Mounts}}{{.Name}}{{end}}")
				e.cleanups = append(e.cleanups, func() { e.cli("rm", "-f", e.name); e.cli("volume", "rm", vol) })
			}},
		{flag: "volume-driver", args: []string{"--volume-driver", "local", "-v", "/data"}, cmd: "true", inspect: "{{range .Mounts}}{{.Driver}}{{end}}", inspectOut: "^local$",
			check: func(e *rowEnv) {
				vol := e.inspect("{{range .Mounts}}{{.Name}}{{end}}")
				e.cleanups = append(e.cleanups, func() { e.cli("rm", "-f", e.name); e.cli("volume", "rm", vol) })
			}},
		{flag: "volume-driver", name: "unknown", args: []string{"--volume-driver", "nosuch", "-v", "/data"}, cmd: "true", refuse: `error looking up volume plugin nosuch: plugin "nosuch" not found`},
		{flag: "volumes-from", peer: "echo shared > /shared/f; sleep 60", peerArgs: []string{"-v", "/shared"}, args: []string{"--volumes-from", "{n}-peer:ro"}, cmd: "sleep 1; cat /shared/f; touch /shared/g", code: 1, out: "^shared\n$", errOut: "Read-only file system",
			check: func(e *rowEnv) {
				vol := e.inspect("{{range .Mounts}}{{.Name}}{{end}}")
				e.cleanups = append(e.cleanups, func() { e.cli("rm", "-f", e.name, e.name+"-peer"); e.cli("volume", "rm", vol) })
			}},
		{flag: "workdir", args: []string{"-w", "/made/by/run"}, cmd: "pwd", out: "^/made/by/run\n$"},
	}

	// Block I/O: the weight takes effect where the host has the weight
	// file; elsewhere dockerd discards it with a warning.
	if f.blkioWeight {
		rows = append(rows,
			runFlagRow{flag: "blkio-weight", args: []string{"--blkio-weight", "300"}, cmd: "cat /sys/fs/cgroup/blkio/blkio.bfq.weight 2>/dev/null || cat /sys/fs/cgroup/blkio/blkio.weight", out: "300"},
			runFlagRow{flag: "blkio-weight", name: "range", args: []string{"--blkio-weight", "5"}, cmd: "true", refuse: "Range of blkio weight is from 10 to 1000"})
	} else {
		rows = append(rows, runFlagRow{flag: "blkio-weight", args: []string{"--blkio-weight", "300"}, cmd: "echo ok", out: "^ok\n$",
			errOut:  "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.",
			inspect: "{{.HostConfig.BlkioWeight}}", inspectOut: "^0$"})
	}
	if f.blkioWeight {
		rows = append(rows, runFlagRow{flag: "blkio-weight-device", args: []string{"--blkio-weight-device", "{blk}:300"},
			cmd: "cat /sys/fs/cgroup/blkio/blkio.bfq.weight_device /sys/fs/cgroup/blkio/blkio.weight_device /sys/fs/cgroup/io.bfq.weight 2>/dev/null", out: "{blkmm} 300"})
	} else {
		rows = append(rows, runFlagRow{flag: "blkio-weight-device", args: []string{"--blkio-weight-device", "{blk}:300"}, cmd: "echo ok", out: "^ok\n$",
			errOut: "WARNING: Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded."})
	}
	rows = append(rows,
		runFlagRow{flag: "device-read-bps", args: []string{"--device-read-bps", "{blk}:1mb"}, cmd: cgroupRead("blkio/blkio.throttle.read_bps_device", "io.max"), out: "{blkmm} (rbps=)?1048576"},
		runFlagRow{flag: "device-write-bps", args: []string{"--device-write-bps", "{blk}:2mb"}, cmd: cgroupRead("blkio/blkio.throttle.write_bps_device", "io.max"), out: "{blkmm} .*?(wbps=)?2097152"},
		runFlagRow{flag: "device-read-iops", args: []string{"--device-read-iops", "{blk}:300"}, cmd: cgroupRead("blkio/blkio.throttle.read_iops_device", "io.max"), out: "{blkmm} .*?(riops=)?300"},
		runFlagRow{flag: "device-write-iops", args: []string{"--device-write-iops", "{blk}:400"}, cmd: cgroupRead("blkio/blkio.throttle.write_iops_device", "io.max"), out: "{blkmm} .*?(wiops=)?400"},
		runFlagRow{flag: "device", args: []string{"--device", "/dev/zero:/dev/xzero:r"}, cmd: "test -c /dev/xzero && head -c 3 /dev/xzero | wc -c", out: "^3\n$"},
		// A node of a major no driver has: the cgroup rule turns "not
		// permitted" into "no such device".
		runFlagRow{flag: "device-cgroup-rule", args: []string{"--device-cgroup-rule", "c 42:* rmw"}, cmd: "mknod /tmp/n c 42 1 && cat /tmp/n", code: 1, errOut: "No such device", check: func(e *rowEnv) {
			if strings.Contains(e.stderr, "not permitted") {
				e.Errorf("the rule did not allow the device: %q", e.stderr)
			}
		}},
	)

	// Memory and swap.
	if f.memsw || !v1 {
		rows = append(rows, runFlagRow{flag: "memory-swap", args: []string{"-m", "64m", "--memory-swap", "96m"}, cmd: cgroupRead("memory/memory.memsw.limit_in_bytes", "memory.swap.max"), out: "^(100663296|33554432)\n$"})
	} else {
		rows = append(rows, runFlagRow{flag: "memory-swap", args: []string{"-m", "64m", "--memory-swap", "96m"}, cmd: "cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
			out: "^67108864\n$", errOut: "WARNING: Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap."})
	}
	rows = append(rows, runFlagRow{flag: "memory-swap", name: "below-memory", args: []string{"-m", "64m", "--memory-swap", "32m"}, cmd: "true",
		refuse: "Minimum memoryswap limit should be larger than memory limit, see usage"})
	if v1 {
		rows = append(rows, runFlagRow{flag: "oom-kill-disable", args: []string{"-m", "64m", "--oom-kill-disable"}, cmd: "grep oom_kill_disable /sys/fs/cgroup/memory/memory.oom_control", out: "^oom_kill_disable 1\n$"})
	} else {
		rows = append(rows, runFlagRow{flag: "oom-kill-disable", args: []string{"-m", "64m", "--oom-kill-disable"}, cmd: "echo ok", out: "^ok\n$",
			errOut: "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."})
	}

	// Real-time scheduling: cgroup v1 with RT group scheduling only.
	if f.rtSched {
		rows = append(rows,
			runFlagRow{flag: "cpu-rt-period", args: []string{"--cpu-rt-period", "500000"}, cmd: "cat /sys/fs/cgroup/cpu/cpu.rt_period_us", out: "^500000\n$"},
			// The runtime goes to the container's cgroup, which the kernel
			// refuses while its parent has no real-time budget: dockerd
			// gives its parent one only when started with --cpu-rt-runtime,
			// and skiff has no such daemon option.
			runFlagRow{flag: "cpu-rt-runtime", args: []string{"--cpu-rt-runtime", "20000"}, cmd: "true", code: 125, errOut: `cpu\.rt_runtime_us.*invalid argument`,
				inspect: "{{.HostConfig.CPURealtimeRuntime}}", inspectOut: "^20000$"},
		)
	} else {
		rows = append(rows,
			runFlagRow{flag: "cpu-rt-period", args: []string{"--cpu-rt-period", "500000"}, cmd: "true", refuse: "kernel does not support CPU real-time scheduler"},
			runFlagRow{flag: "cpu-rt-runtime", args: []string{"--cpu-rt-runtime", "20000"}, cmd: "true", refuse: "kernel does not support CPU real-time scheduler"})
	}
	rows = append(rows, runFlagRow{flag: "cpu-rt-runtime", name: "above-period", args: []string{"--cpu-rt-period", "100000", "--cpu-rt-runtime", "200000"}, cmd: "true",
		refuse: map[bool]string{true: "cpu real-time runtime cannot be higher than cpu real-time period", false: "kernel does not support CPU real-time scheduler"}[f.rtSched]})
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].flag < rows[j].flag })
	return rows
}

// sigProxyCheck runs an attached container, sends the CLI SIGUSR1 and checks
// that the container got it (--sig-proxy=true, the default) or not.
func sigProxyCheck(proxy bool) func(e *rowEnv) {
	return func(e *rowEnv) {
		args := []string{"run", "--name", e.name, fmt.Sprintf("--sig-proxy=%v", proxy), "busybox", "sh", "-c",
			`trap 'echo got-usr1; exit 7' USR1; echo ready; while :; do sleep 0.1; done`}
		cmd := e.command(args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var se bytes.Buffer
		out, err := cmd.StdoutPipe()
		if err != nil {
			e.Fatalf("%v", err)
		}
		cmd.Stderr = &se
		if err := cmd.Start(); err != nil {
			e.Fatalf("%v", err)
		}
		defer cmd.Process.Kill()
		buf := make([]byte, 64)
		n, _ := out.Read(buf)
		if !strings.Contains(string(buf[:n]), "ready") {
			e.Fatalf("container did not start: %q %s", buf[:n], se.String())
		}
		cmd.Process.Signal(syscall.SIGUSR1)
		done := make(chan error, 1)
		go func() {
			rest, _ := io.ReadAll(out)
			buf = append(buf[:n], rest...)
			done <- cmd.Wait()
		}()
		if proxy {
			select {
			case err := <-done:
				ee, _ := err.(*exec.ExitError)
				if !strings.Contains(string(buf), "got-usr1") || ee == nil || ee.ExitCode() != 7 {
					e.Errorf("signal not proxied: %q %v %s", buf, err, se.String())
				}
			case <-time.After(10 * time.Second):
				e.Errorf("the CLI did not end after SIGUSR1 was proxied")
			}
			return
		}
		// Without the proxy the container does not get the signal (the
		// CLI ignores it, as docker's does).
		time.Sleep(time.Second)
		if out := e.inspect("{{.State.Running}}"); out != "true" {
			e.Errorf("container state after the CLI got SIGUSR1: %s", out)
		}
		cmd.Process.Kill()
		<-done
		if strings.Contains(string(buf), "got-usr1") {
			e.Errorf("the signal reached the container: %q", buf)
		}
	}
}

// TestRunFlagsCoverDockerRunHelp checks the table of TestRunFlags against the
// live `docker run --help`: every flag has a row, and every row a flag. And
// skiff's `run --help` lists every flag docker's does.
func TestRunFlagsCoverDockerRunHelp(t *testing.T) {
	needDockerCLI(t)
	out, err := exec.Command("docker", "run", "--help").Output()
	if err != nil {
		t.Fatalf("docker run --help: %v", err)
	}
	docker := helpFlags(string(out))
	if len(docker) < 90 {
		t.Fatalf("only %d flags in docker run --help:\n%s", len(docker), out)
	}
	f := hostFacts{arch: runtime.GOARCH, otherArch: "arm64", blockDev: "/dev/x", cgroupV1: true, rtSched: true}
	rows := runFlagRows(f)
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.flag] = true
	}
	for _, fl := range docker {
		if !covered[fl] {
			t.Errorf("--%s of docker run has no row in TestRunFlags", fl)
		}
	}
	for fl := range covered {
		if !slicesContains(docker, fl) {
			t.Errorf("row for --%s, which docker run does not have", fl)
		}
	}
	// skiff's own CLI.
	sk := exec.Command(filepath.Join(binDir, "skiff"), "run", "--help")
	skOut, err := sk.Output()
	if err != nil {
		t.Fatalf("skiff run --help: %v", err)
	}
	skiff := helpFlags(string(skOut))
	for _, fl := range docker {
		if !slicesContains(skiff, fl) {
			t.Errorf("skiff run lacks --%s", fl)
		}
	}
}

var helpFlagRe = regexp.MustCompile(`(?m)^\s+(?:-[A-Za-z], )?--([a-z0-9-]+)`)

func helpFlags(help string) []string {
	var out []string
	for _, m := range helpFlagRe.FindAllStringSubmatch(help, -1) {
		out = append(out, m[1])
	}
	return out
}

func slicesContains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// detachKeysCheck runs `run -it --detach-keys ctrl-x,x` in a terminal (tmux):
// typing the keys ends the client with status 0 and leaves the container
// running.
func detachKeysCheck(e *rowEnv) {
	if _, err := exec.LookPath("tmux"); err != nil {
		e.Fatalf("tmux not installed (%v): run hack/deps.sh", err)
	}
	server := fmt.Sprintf("skiff-rf-%d", os.Getpid())
	cli := "docker"
	if e.client == "skiff" {
		cli = filepath.Join(binDir, "skiff") + " -H " + e.d.host
	}
	script := fmt.Sprintf("export DOCKER_HOST=%s DOCKER_CONFIG=%s/dockercfg-%s; %s run -it --name %s --detach-keys ctrl-x,x busybox sh; echo CLI-EXIT=$?; sleep 60",
		e.d.host, e.d.root, e.client, cli, e.name)
	tmux := func(args ...string) string {
		out, err := exec.Command("tmux", append([]string{"-L", server}, args...)...).CombinedOutput()
		if err != nil {
			e.Fatalf("tmux %v: %v %s", args, err, out)
		}
		return string(out)
	}
	tmux("new-session", "-d", "-s", e.name, "-x", "80", "-y", "24", script)
	e.cleanups = append(e.cleanups, func() { exec.Command("tmux", "-L", server, "kill-session", "-t", e.name).Run() })
	waitPane := func(want string) string {
		deadline := time.Now().Add(15 * time.Second)
		for {
			pane := tmux("capture-pane", "-p", "-t", e.name)
			if strings.Contains(pane, want) {
				return pane
			}
			if time.Now().After(deadline) {
				e.Fatalf("the terminal never showed %q:\n%s", want, pane)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitPane("/ #")
	tmux("send-keys", "-t", e.name, "C-x", "x")
	waitPane("CLI-EXIT=0")
	if out := e.inspect("{{.State.Running}}"); out != "true" {
		e.Errorf("the container after the detach keys: running=%s", out)
	}
}

// TestRunFlagsCgroupV2 checks the flags whose answer depends on the cgroup
// version on a pure cgroup v2 view: real-time CPU limits are refused (v2
// has no RT group scheduling), memory swappiness and the OOM-killer switch
// are discarded with dockerd's warnings, and so is the block I/O weight
// without the io controller (taken with it).
func TestRunFlagsCgroupV2(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/sys/fs/cgroup/unified/cgroup.procs"); err != nil {
		t.Skip("no cgroup2 hierarchy on this host")
	}
	d := startDaemonWith(t, true)
	d.importBusybox()
	for _, args := range [][]string{{"--cpu-rt-period", "500000"}, {"--cpu-rt-runtime", "1000"}} {
		_, errOut, code := d.docker(append(append([]string{"run", "--rm"}, args...), "busybox", "true")...)
		if code != 125 || !strings.Contains(errOut, "kernel does not support CPU real-time scheduler") {
			t.Errorf("%v on cgroup v2: exit %d %q", args, code, errOut)
		}
	}
	// cgroup v2 has no memory.swappiness and no OOM-killer switch.
	for _, tc := range []struct{ flag, warning string }{
		{"--memory-swappiness=10", "WARNING: Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded."},
		{"--oom-kill-disable", "WARNING: Your kernel does not support OomKillDisable. OomKillDisable discarded."},
	} {
		out, errOut, code := d.docker("run", "--rm", tc.flag, "busybox", "echo", "ok")
		if code != 0 || out != "ok\n" || !strings.Contains(errOut, tc.warning) {
			t.Errorf("%s on cgroup v2: exit %d %q %q", tc.flag, code, out, errOut)
		}
	}
	ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
	out, errOut, code := d.docker("run", "--rm", "--blkio-weight", "300", "busybox", "echo", "ok")
	if slicesContains(strings.Fields(string(ctrls)), "io") {
		if code != 0 || out != "ok\n" || strings.Contains(errOut, "WARNING") {
			t.Errorf("--blkio-weight with the io controller: exit %d %q %q", code, out, errOut)
		}
	} else if code != 0 || out != "ok\n" || !strings.Contains(errOut, "WARNING: Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.") {
		t.Errorf("--blkio-weight without the io controller: exit %d %q %q", code, out, errOut)
	}
}
