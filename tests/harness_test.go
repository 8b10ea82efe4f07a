// Package tests holds end-to-end tests: they build skiff and skiff-shim, start
// a daemon on a private data root, socket and cgroup parent, and drive it as
// users do — with skiff's CLI, the real docker CLI and the official Go client.
package tests

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

var (
	binDir     string // holds skiff and skiff-shim
	busyboxTar string // a busybox root filesystem tarball
)

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("skipping end-to-end tests: they need root")
		return 0
	}
	dir, err := os.MkdirTemp("", "skiff-e2e-bin-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	binDir = dir
	// Built as hack/build.sh builds them (the shim static, skiff and
	// skiff-init without cgo), so the tests run what users run.
	for _, b := range []struct {
		out, pkg string
		flags    []string
	}{
		{"skiff", "../cmd/skiff", nil},
		{"skiffd", "../cmd/skiffd", nil},
		{"skiff-shim", "../cmd/skiff-shim", []string{"-tags", "netgo,osusergo", "-ldflags", "-linkmode external -extldflags -static"}},
		{"skiff-init", "../cmd/skiff-init", nil},
	} {
		args := append(append([]string{"build"}, b.flags...), "-o", filepath.Join(dir, b.out), b.pkg)
		cmd := exec.Command("go", args...)
		if b.out == "skiff-init" || b.out == "skiff" {
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		}
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Println("build", b.pkg, "failed:", err)
			return 1
		}
	}
	busyboxTar = filepath.Join(dir, "busybox.tar")
	if err := writeBusyboxTar(busyboxTar); err != nil {
		fmt.Println("busybox tar:", err)
		return 1
	}
	prebuildSystemdImage() // systemd_test.go
	return m.Run()
}

// writeBusyboxTar builds the same image hack/mkbusybox.sh builds.
func writeBusyboxTar(path string) error {
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("busybox-static is required: %w", err)
	}
	out, err := exec.Command("/bin/busybox", "--list").Output()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(name string, mode int64) {
		tw.WriteHeader(&tar.Header{Name: name + "/", Typeflag: tar.TypeDir, Mode: mode, ModTime: time.Unix(0, 0)})
	}
	file := func(name string, mode int64, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(data)), ModTime: time.Unix(0, 0)})
		tw.Write(data)
	}
	for _, d := range []string{"bin", "etc", "root", "home", "var", "usr", "usr/bin", "proc", "sys", "dev"} {
		dir(d, 0o755)
	}
	dir("tmp", 0o1777)
	file("bin/busybox", 0o755, bb)
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" {
			tw.WriteHeader(&tar.Header{Name: "bin/" + a, Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777, ModTime: time.Unix(0, 0)})
		}
	}
	file("etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/home:/bin/false\n"))
	file("etc/group", 0o644, []byte("root:x:0:\ndaemon:x:1:\ntty:x:5:\nstaff:x:50:nobody\nnogroup:x:65534:\n"))
	file("etc/notexec", 0o644, []byte("not a program\n"))
	if err := tw.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// daemon is one skiff daemon with its own roots.
type daemon struct {
	t        *testing.T
	root     string
	sock     string
	host     string
	cgParent string
	cmd      *exec.Cmd
	logf     *os.File
	cli      *client.Client
	// cgroup2 runs the daemon in a mount namespace of its own where
	// /sys/fs/cgroup is a cgroup2 mount: a pure cgroup v2 host as skiff sees it.
	cgroup2 bool
	// extraConfig is more daemon.json keys (a JSON object's members, without
	// braces) for the next start; nsSetup is shell run in a private mount
	// namespace of the daemon (and so of its monitors) before it starts.
	extraConfig, nsSetup string
	// prepare, when set, adjusts the daemon's command before it starts.
	prepare func(*exec.Cmd)
	// criSock is the daemon's own Kubernetes CRI socket (cri_test.go).
	criSock string
	// bins, when set, holds the daemon's binaries instead of binDir (the
	// fault suite's `-tags faults` build, faults_test.go).
	bins string
}

// startDaemon starts a daemon on fresh roots and registers its cleanup:
// every container removed, the daemon stopped, and no leftovers checked.
func startDaemon(t *testing.T) *daemon {
	t.Helper()
	return startDaemonWith(t, false)
}

func startDaemonWith(t *testing.T, cgroup2 bool) *daemon {
	t.Helper()
	return startDaemonSetup(t, cgroup2, nil)
}

// startDaemonSetup is startDaemonWith with setup called on the daemon
// before it starts (to set extraConfig or nsSetup).
func startDaemonSetup(t *testing.T, cgroup2 bool, setup func(*daemon)) *daemon {
	t.Helper()
	root, err := os.MkdirTemp("", "skiff-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	d := &daemon{
		t: t, root: root, sock: filepath.Join(root, "skiff.sock"), criSock: filepath.Join(root, "cri.sock"),
		cgParent: fmt.Sprintf("/skiff-e2e-%d-%s", os.Getpid(), name),
		cgroup2:  cgroup2,
	}
	d.host = "unix://" + d.sock
	if setup != nil {
		setup(d)
	}
	d.start()
	t.Cleanup(func() { d.cleanup() })
	return d
}

func (d *daemon) start() {
	d.t.Helper()
	cfg := filepath.Join(d.root, "daemon.json")
	d.writeConfig(cfg)
	logf, err := os.OpenFile(filepath.Join(d.root, "daemon.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	d.logf = logf
	bins := binDir
	if d.bins != "" {
		bins = d.bins
	}
	args := []string{filepath.Join(bins, "skiff"), "daemon", "-H", d.host,
		"--data-root", filepath.Join(d.root, "data"), "--exec-root", filepath.Join(d.root, "exec"),
		"--config-file", cfg, "--debug", "--cri-socket", d.criSock}
	if d.cgroup2 || d.nsSetup != "" {
		script := `mount --make-rprivate / && `
		if d.cgroup2 {
			script += `mount -t cgroup2 none /sys/fs/cgroup && `
		}
		if d.nsSetup != "" {
			script += d.nsSetup + ` && `
		}
		args = append([]string{"unshare", "-m", "sh", "-c", script + `exec "$@"`, "sh"}, args...)
	}
	d.cmd = exec.Command(args[0], args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if d.prepare != nil {
		d.prepare(d.cmd)
	}
	if err := d.cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	c, err := client.New(client.WithHost(d.host), client.WithAPIVersionNegotiation())
	if err != nil {
		d.t.Fatal(err)
	}
	d.cli = c
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := c.Ping(ctx, client.PingOptions{})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not answer: %v\n%s", err, d.log())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeConfig writes the daemon.json of d to path.
func (d *daemon) writeConfig(path string) {
	extra := ""
	if d.extraConfig != "" {
		extra = ", " + d.extraConfig
	}
	if !strings.Contains(d.extraConfig, `"cni-conf-dir"`) {
		// Pods get loopback only unless the test writes a CNI config: the
		// host's /etc/cni/net.d is not the tests'.
		extra += fmt.Sprintf(`, "cni-conf-dir": %q`, filepath.Join(d.root, "no-cni"))
	}
	if !strings.Contains(d.extraConfig, `"certs-d"`) {
		// Registry hosts configuration: the test's own (it may write
		// files there), never the host's /etc/skiff/certs.d.
		extra += fmt.Sprintf(`, "certs-d": %q`, d.certsD())
	}
	// favordynmods off: tests leave the host's cgroup mounts as they found them.
	os.WriteFile(path, []byte(fmt.Sprintf(`{"cgroup-parent": %q, "cgroup-favordynmods": false, %s%s}`, d.cgParent, netConfigFor(d.root), extra)), 0o644)
}

// certsD is the daemon's registry hosts configuration directory.
func (d *daemon) certsD() string { return filepath.Join(d.root, "certs.d") }

func (d *daemon) log() string {
	b, _ := os.ReadFile(filepath.Join(d.root, "daemon.log"))
	return string(b)
}

// stop ends the daemon gracefully (SIGTERM); containers keep running.
func (d *daemon) stop() {
	if d.cmd == nil {
		return
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
	}
	d.cmd = nil
	d.cli.Close()
	d.logf.Close()
}

// kill9 kills the daemon without warning.
func (d *daemon) kill9() {
	d.cmd.Process.Kill()
	d.cmd.Wait()
	d.cmd = nil
	d.cli.Close()
	d.logf.Close()
}

func (d *daemon) cleanup() {
	t := d.t
	if d.cmd != nil {
		// Remove what the test left, through the API.
		out, _, _ := d.skiff("ps", "-aq", "--no-trunc")
		for _, id := range strings.Fields(out) {
			d.skiff("rm", "-f", id)
		}
		d.stop()
	}
	if t.Failed() {
		t.Logf("daemon log:\n%s", d.log())
	}
	checkNoLeaks(t, d)
	checkNoNetLeaks(t, d)
	os.RemoveAll(d.root)
}

// checkNoLeaks fails the test if the daemon left mounts, cgroups or processes.
func checkNoLeaks(t *testing.T, d *daemon) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		var leaks []string
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, d.root) {
				leaks = append(leaks, "mount: "+l)
			}
		}
		for _, h := range cgroupHierarchies() {
			p := filepath.Join("/sys/fs/cgroup", h, d.cgParent)
			if entries, err := os.ReadDir(p); err == nil {
				for _, e := range entries {
					if e.IsDir() {
						leaks = append(leaks, "cgroup: "+filepath.Join(p, e.Name()))
					}
				}
			}
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			b, _ := os.ReadFile(p)
			if bytes.Contains(b, []byte(d.root)) {
				leaks = append(leaks, "process: "+strings.ReplaceAll(string(b), "\x00", " "))
			}
		}
		if len(leaks) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("leftovers after the test:\n%s", strings.Join(leaks, "\n"))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The per-test cgroup parents themselves.
	removeCgroupDirs(d.cgParent)
}

// cgroupHierarchies are the host's cgroup mounts below /sys/fs/cgroup: every
// v1 hierarchy (name=systemd included), the hybrid cgroup2 at unified, and ""
// for the root of a pure v2 host.
func cgroupHierarchies() []string {
	out := []string{""}
	entries, _ := os.ReadDir("/sys/fs/cgroup")
	for _, e := range entries {
		if e.IsDir() || e.Type()&os.ModeSymlink != 0 {
			out = append(out, e.Name())
		}
	}
	return out
}

// removeCgroupDirs removes the cgroup directory rel (empty by then) from
// every hierarchy, so a test leaves none behind.
func removeCgroupDirs(rel string) {
	for _, h := range cgroupHierarchies() {
		os.Remove(filepath.Join("/sys/fs/cgroup", h, rel))
	}
}

// skiff runs the skiff CLI against d and returns stdout, stderr, exit code.
func (d *daemon) skiff(args ...string) (string, string, int) {
	return d.run(nil, filepath.Join(binDir, "skiff"), append([]string{"-H", d.host}, args...)...)
}

// skiffIn is skiff with stdin.
func (d *daemon) skiffIn(stdin io.Reader, args ...string) (string, string, int) {
	return d.run(stdin, filepath.Join(binDir, "skiff"), append([]string{"-H", d.host}, args...)...)
}

// docker runs the real docker CLI against d.
func (d *daemon) docker(args ...string) (string, string, int) {
	d.t.Helper()
	needDockerCLI(d.t)
	return d.run(nil, "docker", args...)
}

// needDockerCLI fails the test when no docker CLI is in PATH. It does not
// skip: a skipped test reads as ok in `go test`, and hack/deps.sh provides
// the CLI on every machine.
func needDockerCLI(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatalf("docker CLI not installed (%v): run hack/deps.sh, which builds it from github.com/docker/cli", err)
	}
}

func (d *daemon) run(stdin io.Reader, bin string, args ...string) (string, string, int) {
	return d.runWith(cmdOpts{stdin: stdin}, bin, args...)
}

// cmdOpts are what a client command may need beyond its arguments.
type cmdOpts struct {
	stdin   io.Reader
	dir     string        // working directory
	env     []string      // added to the environment
	timeout time.Duration // 60 s when zero
}

// runWith runs a client (bin) against d; stdout, stderr, exit code.
func (d *daemon) runWith(o cmdOpts, bin string, args ...string) (string, string, int) {
	if o.timeout == 0 {
		o.timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = o.dir
	cmd.Env = append(append(os.Environ(), "DOCKER_HOST="+d.host, "DOCKER_CONFIG="+filepath.Join(d.root, "dockercfg")), o.env...)
	var so, se bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &so, &se, o.stdin
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("%s %v: %v", bin, args, err)
	}
	return so.String(), se.String(), code
}

// apiExec runs an exec through the moby Go client, attached to its stdout
// and stderr, and returns them with the exec's inspect once it is done.
func (d *daemon) apiExec(ctx context.Context, ctr string, opts client.ExecCreateOptions) (so, se *bytes.Buffer, ins client.ExecInspectResult) {
	d.t.Helper()
	opts.AttachStdout, opts.AttachStderr = true, true
	ex, err := d.cli.ExecCreate(ctx, ctr, opts)
	if err != nil {
		d.t.Fatal(err)
	}
	at, err := d.cli.ExecAttach(ctx, ex.ID, client.ExecAttachOptions{})
	if err != nil {
		d.t.Fatal(err)
	}
	so, se = &bytes.Buffer{}, &bytes.Buffer{}
	stdcopy.StdCopy(so, se, at.Reader)
	at.Close()
	if ins, err = d.cli.ExecInspect(ctx, ex.ID, client.ExecInspectOptions{}); err != nil {
		d.t.Fatal(err)
	}
	return so, se, ins
}

// must runs skiff and fails the test unless it exits 0.
func (d *daemon) must(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.skiff(args...)
	if code != 0 {
		d.t.Fatalf("skiff %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// mustIn is must with stdin.
func (d *daemon) mustIn(stdin io.Reader, args ...string) string {
	d.t.Helper()
	out, errOut, code := d.skiffIn(stdin, args...)
	if code != 0 {
		d.t.Fatalf("skiff %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// importBusybox imports the busybox tarball as busybox:latest.
func (d *daemon) importBusybox() {
	d.t.Helper()
	d.must("import", busyboxTar, "busybox")
}
