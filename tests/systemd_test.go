package tests

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// The systemd test image: Debian bookworm with systemd, built by
// debootstrap (hack/deps.sh installs it) and cached as a tarball between
// runs. A fresh machine builds it once (about 35 s to 5 min, by mirror speed).
const (
	systemdSuite    = "bookworm"
	systemdPackages = "systemd,systemd-sysv,dbus"
	systemdMirror   = "http://deb.debian.org/debian"
)

var (
	systemdTarOnce sync.Once
	systemdTarPath string
	systemdTarErr  error
)

// systemdTar returns the path of the cached root file system tarball,
// building it first if needed. The cache directory is named after what
// goes into the build (suite, packages, debootstrap's version), and is
// built in a temporary directory renamed into place, so a killed build
// never leaves a half cache behind.
func systemdTar(t *testing.T) string {
	t.Helper()
	systemdTarOnce.Do(func() { systemdTarPath, systemdTarErr = buildSystemdTar() })
	if systemdTarErr != nil {
		t.Fatalf("systemd test image: %v", systemdTarErr)
	}
	return systemdTarPath
}

// prebuildSystemdImage starts getting the image in the background when the
// tests selected include the systemd ones, so that a cold build (35 s to
// several minutes, by mirror speed) overlaps with the other tests.
func prebuildSystemdImage() {
	flag.Parse()
	if f := flag.Lookup("test.run"); f != nil && f.Value.String() != "" && !strings.Contains(f.Value.String(), "Systemd") {
		return
	}
	go systemdTarOnce.Do(func() { systemdTarPath, systemdTarErr = buildSystemdTar() })
}

func buildSystemdTar() (string, error) {
	ver, err := exec.Command("debootstrap", "--version").Output()
	if err != nil {
		return "", fmt.Errorf("debootstrap is required (hack/deps.sh installs it): %w", err)
	}
	sum := sha256.Sum256([]byte(strings.Join([]string{systemdSuite, "minbase", systemdPackages, strings.TrimSpace(string(ver))}, "\n")))
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	cache := filepath.Join(home, ".cache", "skiff-test")
	dir := filepath.Join(cache, "systemd-"+systemdSuite+"-"+hex.EncodeToString(sum[:6]))
	tarPath := filepath.Join(dir, "rootfs.tar")
	if _, err := os.Stat(tarPath); err == nil {
		return tarPath, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	// Builds killed long ago (their mounts went with their namespace).
	stale, _ := filepath.Glob(filepath.Join(cache, ".build-*"))
	for _, d := range stale {
		if st, err := os.Stat(d); err == nil && time.Since(st.ModTime()) > time.Hour {
			os.RemoveAll(d)
		}
	}
	tmp, err := os.MkdirTemp(cache, ".build-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	root := filepath.Join(tmp, "root")
	start := time.Now()
	// In a mount namespace of its own: debootstrap mounts /proc (and more)
	// in the target, and a killed build must not leave them on the host,
	// where removing the directory would reach into them.
	// It dies with the test binary (Pdeathsig follows the thread that
	// started it: keep it).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("unshare", "--mount", "--propagation", "private",
		"debootstrap", "--variant=minbase", "--include="+systemdPackages,
		systemdSuite, root, systemdMirror)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("debootstrap: %v\n%s", err, tail(string(out), 2000))
	}
	if out, err := exec.Command("tar", "--numeric-owner", "-C", root, "-cf", filepath.Join(tmp, "rootfs.tar"), ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("tar: %v\n%s", err, out)
	}
	// Only the tarball is kept.
	if err := os.RemoveAll(root); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(tarPath); serr == nil {
			return tarPath, nil // another run finished first
		}
		return "", err
	}
	fmt.Printf("built the systemd test image in %v: %s\n", time.Since(start).Round(time.Second), tarPath)
	return tarPath, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// importSystemd imports the systemd image as "sd", with systemd's halt
// signal as its STOPSIGNAL and init as its command, as a Dockerfile for a
// systemd image would have them.
func importSystemd(t *testing.T, d *daemon) {
	t.Helper()
	d.must("import", "--change", "STOPSIGNAL SIGRTMIN+3", "--change", `CMD ["/usr/sbin/init"]`, systemdTar(t), "sd")
	if got := strings.TrimSpace(d.must("image", "inspect", "--format", "{{.Config.StopSignal}}", "sd")); got != "SIGRTMIN+3" {
		t.Fatalf("image stop signal %q", got)
	}
}

// waitBooted waits until systemd in container name reports running or
// degraded, and returns the state (with the failed units when degraded).
func waitBooted(t *testing.T, d *daemon, name string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _, _ := d.docker("exec", name, "systemctl", "is-system-running")
		state := strings.TrimSpace(out)
		switch state {
		case "running":
			return
		case "degraded":
			failed, _, _ := d.docker("exec", name, "systemctl", "--failed", "--no-pager")
			t.Logf("%s booted degraded:\n%s", name, failed)
			return
		}
		if time.Now().After(deadline) {
			jobs, _, _ := d.docker("exec", name, "systemctl", "list-jobs", "--no-pager")
			st, _, _ := d.skiff("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
			t.Fatalf("%s did not boot: state %q (container %s)\njobs:\n%s", name, state, st, jobs)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// stopCleanly stops container name with stop (the docker or skiff CLI)
// and checks that systemd halted through the stop signal: well within the
// 10 s timeout, not killed. A privileged systemd halts with reboot(2),
// which in a pid namespace ends its init with SIGINT (exit 130, as under
// Docker); without CAP_SYS_BOOT it exits 0.
func stopCleanly(t *testing.T, d *daemon, stop func(...string) (string, string, int), name string, wantExit int) {
	t.Helper()
	start := time.Now()
	if out, errOut, code := stop("stop", name); code != 0 {
		t.Fatalf("stop %s: %d %s %s", name, code, out, errOut)
	}
	if took := time.Since(start); took > 7*time.Second {
		t.Errorf("stop %s took %v: systemd did not halt on its stop signal", name, took)
	}
	st := strings.TrimSpace(d.must("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}} {{.State.OOMKilled}}", name))
	if want := fmt.Sprintf("exited %d false", wantExit); st != want {
		t.Errorf("%s after stop: %q, want %q", name, st, want)
	}
}

// cgroupDirsGone checks that no hierarchy keeps a directory of the
// container (systemd makes many sub-cgroups in it).
func cgroupDirsGone(t *testing.T, d *daemon, id string) {
	t.Helper()
	// The v2 view's cgroup2 is the host's /sys/fs/cgroup/unified.
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", d.cgParent, id))
	if len(left) > 0 {
		t.Errorf("cgroups left after the container exited: %v", left)
	}
}

func containerID(t *testing.T, d *daemon, name string) string {
	t.Helper()
	return strings.TrimSpace(d.must("inspect", "--format", "{{.Id}}", name))
}

// TestSystemdCgroupV1 boots systemd on the host's v1 (hybrid) layout,
// privileged and not, and checks /sys/fs/cgroup and --cgroupns with busybox.
func TestSystemdCgroupV1(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	importSystemd(t, d)

	// Both boot at once: the test waits for the slower of the two.
	d.mustDocker("run", "-d", "--name", "priv", "--privileged", "sd", "/usr/sbin/init")
	d.must("run", "-d", "--name", "unpriv", "--tmpfs", "/run", "--tmpfs", "/run/lock", "sd")

	checkCgroupnsV1(t, d)

	waitBooted(t, d, "priv")
	waitBooted(t, d, "unpriv")
	for _, c := range []struct{ name, path string }{{"priv", "name=systemd"}, {"unpriv", "name=systemd"}} {
		id := containerID(t, d, c.name)
		// systemd placed itself below the container's own name=systemd
		// cgroup (host cgroup namespace: the host's path).
		out, _, _ := d.docker("exec", c.name, "cat", "/proc/1/cgroup")
		if !strings.Contains(out, ":"+c.path+":"+d.cgParent+"/"+id+"/") || !strings.Contains(out, "/init.scope\n") {
			t.Errorf("%s: /proc/1/cgroup:\n%s", c.name, out)
		}
		scopes, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/systemd", d.cgParent, id, "*", "*", "init.scope"))
		if len(scopes) == 0 {
			t.Errorf("%s: no init.scope in the container's name=systemd cgroup on the host", c.name)
		}
	}
	// Unprivileged: the controllers stay read-only, name=systemd is the
	// container's to manage.
	if _, errOut, code := d.docker("exec", "unpriv", "sh", "-c", "echo 1 > /sys/fs/cgroup/memory/memory.limit_in_bytes"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("memory.limit_in_bytes writable in an unprivileged container: %d %s", code, errOut)
	}
	if out, errOut, code := d.docker("exec", "unpriv", "sh", "-c", "mkdir /sys/fs/cgroup/systemd/x && rmdir /sys/fs/cgroup/systemd/x && ls /sys/fs/cgroup/systemd/release_agent"); code == 0 || !strings.Contains(errOut, "No such file") {
		t.Errorf("name=systemd in an unprivileged container: %d %s %s", code, out, errOut)
	}
	ids := []string{containerID(t, d, "priv"), containerID(t, d, "unpriv")}
	stopCleanly(t, d, d.docker, "priv", 130)
	stopCleanly(t, d, d.skiff, "unpriv", 0)
	for _, id := range ids {
		cgroupDirsGone(t, d, id)
	}
	d.must("rm", "priv", "unpriv")
}

// checkCgroupnsV1: the mount Docker gives on a v1 host, and both modes.
func checkCgroupnsV1(t *testing.T, d *daemon) {
	t.Helper()
	script := `cat /proc/self/cgroup; echo ---; grep ' /sys/fs/cgroup' /proc/self/mountinfo; echo ---; ls /sys/fs/cgroup`
	for _, c := range []struct {
		name     string
		args     []string
		mode     string
		ownPaths bool // /proc/self/cgroup shows the host's paths
		rw       bool // the controller hierarchies are writable
	}{
		{"default", nil, "host", true, false},
		{"host", []string{"--cgroupns", "host"}, "host", true, false},
		{"private", []string{"--cgroupns=private"}, "private", false, false},
		{"privileged", []string{"--privileged"}, "host", true, true},
		{"privileged private", []string{"--privileged", "--cgroupns", "private"}, "private", false, true},
	} {
		func() { // d.must fails the test itself: no subtests
			name := "ns-" + strings.ReplaceAll(c.name, " ", "-")
			args := append(append([]string{"run", "--name", name}, c.args...), "busybox", "sh", "-c", script)
			// skiff's own CLI for the private mode, the docker CLI for the rest.
			out := ""
			if c.name == "private" {
				out = d.must(args...)
			} else {
				out = d.mustDocker(args...)
			}
			id := containerID(t, d, name)
			defer d.must("rm", name)
			if got := strings.TrimSpace(d.must("inspect", "--format", "{{.HostConfig.CgroupnsMode}}", name)); got != c.mode {
				t.Errorf("%s: CgroupnsMode %q, want %q", c.name, got, c.mode)
			}
			parts := strings.Split(out, "---\n")
			if len(parts) != 3 {
				t.Fatalf("%s: output:\n%s", c.name, out)
			}
			own := d.cgParent + "/" + id
			for _, l := range strings.Split(strings.TrimSpace(parts[0]), "\n") {
				f := strings.SplitN(l, ":", 3)
				if len(f) != 3 || (f[1] != "memory" && f[1] != "name=systemd" && f[1] != "pids") {
					continue
				}
				want := "/"
				if c.ownPaths {
					want = own
				}
				if f[2] != want {
					t.Errorf("%s: /proc/self/cgroup %s: %q, want %q", c.name, f[1], f[2], want)
				}
			}
			mounts := map[string]string{} // mount point → "ro|rw fstype"
			for _, l := range strings.Split(strings.TrimSpace(parts[1]), "\n") {
				pre, post, _ := strings.Cut(l, " - ")
				pf, qf := strings.Fields(pre), strings.Fields(post)
				if len(pf) < 6 || len(qf) < 1 {
					continue
				}
				mounts[pf[4]] = strings.Split(pf[5], ",")[0] + " " + qf[0]
				// Each hierarchy shows the container's own directory
				// (the root of its cgroup namespace when private).
				if root := map[bool]string{true: own, false: "/"}[c.ownPaths]; qf[0] != "tmpfs" && pf[3] != root {
					t.Errorf("%s: %s shows %s of its hierarchy, want %s", c.name, pf[4], pf[3], root)
				}
			}
			ctrl := "ro cgroup"
			if c.rw {
				ctrl = "rw cgroup"
			}
			want := map[string]string{
				"/sys/fs/cgroup/memory":  ctrl,
				"/sys/fs/cgroup/pids":    ctrl,
				"/sys/fs/cgroup/systemd": "rw cgroup",
				"/sys/fs/cgroup/unified": "rw cgroup2",
			}
			want["/sys/fs/cgroup"] = strings.Fields(ctrl)[0] + " tmpfs"
			for mp, w := range want {
				if mounts[mp] != w {
					t.Errorf("%s: %s: %q, want %q (mounts %v)", c.name, mp, mounts[mp], w, mounts)
				}
			}
		}()
	}
	checkCgroupnsRefused(t, d)
}

// checkCgroupnsRefused: a bad mode is refused by both CLIs and the API.
func checkCgroupnsRefused(t *testing.T, d *daemon) {
	t.Helper()
	for _, run := range []func(...string) (string, string, int){d.docker, d.skiff} {
		if _, errOut, code := run("run", "--rm", "--cgroupns", "bogus", "busybox", "true"); code != 125 || !strings.Contains(errOut, "--cgroupns: invalid CGROUP mode") {
			t.Errorf("--cgroupns bogus: %d %s", code, errOut)
		}
	}
	_, err := d.cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
		HostConfig: &container.HostConfig{CgroupnsMode: "bogus"},
	})
	if err == nil || !strings.Contains(err.Error(), "invalid cgroup namespace mode: bogus") {
		t.Errorf("API create with CgroupnsMode bogus: %v", err)
	}
}

// TestSystemdCgroupV2 checks the pure cgroup v2 view: cgroup2 at
// /sys/fs/cgroup showing the container's own cgroup in both modes, and
// systemd booting on it, privileged and with writable-cgroups (the mount is
// read-only otherwise, as under Docker).
func TestSystemdCgroupV2(t *testing.T) {
	d := startDaemonWith(t, true)
	d.importBusybox()
	importSystemd(t, d)
	d.mustDocker("run", "-d", "--name", "priv", "--privileged", "sd")
	// Unprivileged, cgroup2 is read-only unless asked for, as with dockerd 28.
	d.must("run", "-d", "--name", "unpriv", "--security-opt", "writable-cgroups=true", "--tmpfs", "/run", "--tmpfs", "/run/lock", "sd")

	script := `cat /proc/self/cgroup | grep '^0::'; grep ' /sys/fs/cgroup ' /proc/self/mountinfo; test -f /sys/fs/cgroup/cgroup.procs && echo own`
	for _, c := range []struct {
		name string
		args []string
		mode string
		rw   bool
	}{
		{"default", nil, "private", false},
		{"host", []string{"--cgroupns", "host"}, "host", false},
		{"private", []string{"--cgroupns", "private"}, "private", false},
		{"privileged", []string{"--privileged"}, "private", true},
		{"writable", []string{"--security-opt", "writable-cgroups=true"}, "private", true},
	} {
		func() { // d.must fails the test itself: no subtests
			name := "ns-" + c.name
			out := d.mustDocker(append(append([]string{"run", "--name", name}, c.args...), "busybox", "sh", "-c", script)...)
			id := containerID(t, d, name)
			defer d.must("rm", name)
			if got := strings.TrimSpace(d.must("inspect", "--format", "{{.HostConfig.CgroupnsMode}}", name)); got != c.mode {
				t.Errorf("%s: CgroupnsMode %q, want %q", c.name, got, c.mode)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			if len(lines) != 3 || lines[2] != "own" {
				t.Fatalf("%s: output:\n%s", c.name, out)
			}
			own, root := d.cgParent+"/"+id, "/"
			wantCg := "0::/"
			if c.mode == "host" {
				wantCg, root = "0::"+own, own
			}
			if lines[0] != wantCg {
				t.Errorf("%s: /proc/self/cgroup %q, want %q", c.name, lines[0], wantCg)
			}
			f := strings.Fields(lines[1])
			opt := "ro"
			if c.rw {
				opt = "rw"
			}
			if len(f) < 9 || f[3] != root || !strings.HasPrefix(f[5], opt+",") || !strings.Contains(lines[1], " - cgroup2 ") {
				t.Errorf("%s: /sys/fs/cgroup mount %q, want cgroup2 of %s, %s", c.name, lines[1], root, opt)
			}
		}()
	}
	checkCgroupnsRefused(t, d)

	for _, name := range []string{"priv", "unpriv"} {
		waitBooted(t, d, name)
		if out, _, _ := d.docker("exec", name, "cat", "/proc/1/cgroup"); !strings.Contains(out, "0::/init.scope\n") {
			t.Errorf("%s: /proc/1/cgroup:\n%s", name, out)
		}
	}
	// Once the container's cgroup has controllers enabled for its children
	// (systemd does so where the host gives it controllers; done here from
	// the host with what this v2 view offers), the kernel lets no process
	// start in it: an exec starts in init's cgroup instead, as with runc.
	// (The v2 view's cgroup2 is the host's /sys/fs/cgroup/unified.)
	cgDir := filepath.Join("/sys/fs/cgroup/unified", d.cgParent, containerID(t, d, "priv"))
	ctrls, err := os.ReadFile(filepath.Join(cgDir, "cgroup.controllers"))
	if err != nil || len(strings.Fields(string(ctrls))) == 0 {
		t.Errorf("no controller in the container's cgroup to delegate (%q, %v): the exec into a delegated cgroup is not checked", ctrls, err)
	} else if err := os.WriteFile(filepath.Join(cgDir, "cgroup.subtree_control"), []byte("+"+strings.Fields(string(ctrls))[0]), 0); err != nil {
		t.Errorf("delegate %s: %v", strings.Fields(string(ctrls))[0], err)
	}
	if out, errOut, code := d.docker("exec", "priv", "cat", "/proc/self/cgroup"); !strings.HasSuffix(out, "\n0::/init.scope\n") {
		t.Errorf("exec in a delegated cgroup: %d %q %s, want 0::/init.scope", code, out, errOut)
	}
	ids := []string{containerID(t, d, "priv"), containerID(t, d, "unpriv")}
	stopCleanly(t, d, d.docker, "priv", 130)
	stopCleanly(t, d, d.skiff, "unpriv", 0)
	for _, id := range ids {
		cgroupDirsGone(t, d, id)
	}
	d.must("rm", "priv", "unpriv")
}

// mustDocker runs the docker CLI and fails the test unless it exits 0.
func (d *daemon) mustDocker(args ...string) string {
	d.t.Helper()
	out, errOut, code := d.docker(args...)
	if code != 0 {
		d.t.Fatalf("docker %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}
