package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/mount"
)

func ptr[T any](v T) *T { return &v }

func TestRunOutputAndEnvironment(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	nobody := func(s *specs.Spec) { s.Process.User.Username = "nobody" }
	tests := []struct {
		name   string
		args   []string
		modify func(*specs.Spec)
		want   string
	}{
		{name: "echo", args: []string{"echo", "hello"}, want: "hello\n"},
		{name: "pid 1", args: []string{"sh", "-c", "echo $$"}, want: "1\n"},
		{name: "hostname", args: []string{"hostname"}, want: "testhost\n"},
		{name: "proc mounted", args: []string{"cat", "/proc/1/cmdline"}, want: "cat\x00/proc/1/cmdline\x00"},
		{name: "pid namespace", args: []string{"sh", "-c", "set -- /proc/[0-9]*; echo $*"}, want: "/proc/1\n"},
		{name: "masked file", args: []string{"sh", "-c", "wc -c < /proc/keys; wc -c < /proc/timer_list"}, want: "0\n0\n"},
		{name: "masked dir", args: []string{"sh", "-c", "ls -A /sys/firmware | wc -l"}, want: "0\n"},
		{
			name: "readonly path", args: []string{"sh", "-c", "echo x > /proc/sys/kernel/domainname || echo refused"},
			want: "refused\n",
		},
		{name: "user nobody", args: []string{"sh", "-c", "id -u; id -g; echo $HOME"}, modify: nobody, want: "65534\n65534\n/nonexistent\n"},
		{name: "user groups", args: []string{"id", "-G"}, modify: nobody, want: "65534 29\n"},
		{name: "root groups", args: []string{"id", "-G"}, want: "0 10\n"},
		{
			name: "additional groups", args: []string{"id", "-G"},
			modify: func(s *specs.Spec) { s.Annotations = map[string]string{AnnotationGroups: "123\nnogroup\n123"} },
			want:   "0 10 123 65534\n",
		},
		{
			name: "domainname", args: []string{"cat", "/proc/sys/kernel/domainname"},
			modify: func(s *specs.Spec) { s.Domainname = "ex.org" },
			want:   "ex.org\n",
		},
		{
			name: "uid without passwd entry", args: []string{"sh", "-c", "id -u; id -g; echo $HOME"},
			modify: func(s *specs.Spec) { s.Process.User.Username = "4242:daemon" },
			want:   "4242\n1\n/\n",
		},
		{
			name: "home kept", args: []string{"sh", "-c", "echo $HOME"},
			modify: func(s *specs.Spec) { s.Process.Env = append(s.Process.Env, "HOME=/custom") },
			want:   "/custom\n",
		},
		{
			name: "cwd created", args: []string{"pwd"},
			modify: func(s *specs.Spec) { s.Process.Cwd = "/work/dir" },
			want:   "/work/dir\n",
		},
		{
			name: "capabilities of root", args: []string{"sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"},
			want: "CapEff:\t00000000a80425fb\nCapBnd:\t00000000a80425fb\n",
		},
		{
			name: "capabilities of nobody", args: []string{"sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"},
			modify: nobody,
			want:   "CapEff:\t0000000000000000\nCapBnd:\t00000000a80425fb\n",
		},
		{
			name: "no new privileges", args: []string{"grep", "NoNewPrivs", "/proc/self/status"},
			modify: func(s *specs.Spec) { s.Process.NoNewPrivileges = true },
			want:   "NoNewPrivs:\t1\n",
		},
		{name: "devices", args: []string{"sh", "-c", "echo x > /dev/null && head -c 3 /dev/zero | wc -c && readlink /dev/stdout && readlink /dev/ptmx"}, want: "3\n/proc/self/fd/1\npts/ptmx\n"},
		{name: "cgroup mount read-only", args: []string{"sh", "-c", "touch /sys/fs/cgroup/x 2>/dev/null || echo refused; test -e /sys/fs/cgroup/memory/memory.limit_in_bytes && echo memory"}, want: "refused\nmemory\n"},
		{
			name: "readonly rootfs", args: []string{"sh", "-c", "touch /x 2>/dev/null || echo refused; touch /dev/shm/x && echo shm"},
			modify: func(s *specs.Spec) { s.Root.Readonly = true },
			want:   "refused\nshm\n",
		},
		{
			name: "sysctl", args: []string{"cat", "/proc/sys/kernel/msgmax"},
			modify: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"kernel.msgmax": "12345"} },
			want:   "12345\n",
		},
		{
			name: "rlimits", args: []string{"sh", "-c", "ulimit -n; ulimit -Hn"},
			modify: func(s *specs.Spec) {
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1000, Hard: 2000}}
			},
			want: "1000\n2000\n",
		},
		{
			name: "rlimit clamped", args: []string{"sh", "-c", "ulimit -n; ulimit -Hn"},
			modify: func(s *specs.Spec) {
				// Above fs.nr_open: the kernel refuses it even to root.
				s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}}
			},
			want: func() string {
				var r unix.Rlimit
				unix.Getrlimit(unix.RLIMIT_NOFILE, &r)
				h := strconv.FormatUint(r.Max, 10)
				return h + "\n" + h + "\n"
			}(),
		},
		{
			name: "bind mount file", args: []string{"cat", "/etc/hostname"},
			modify: func(s *specs.Spec) {
				f := filepath.Join(filepath.Dir(s.Root.Path), "hostname-"+randSuffix())
				os.WriteFile(f, []byte("bound\n"), 0o644)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/hostname", Type: "bind", Source: f, Options: []string{"rbind", "rprivate"}})
			},
			want: "bound\n",
		},
		{
			name: "bind mount onto a dangling symlink", args: []string{"sh", "-c", "cat /etc/resolv.conf; readlink /etc/resolv.conf"},
			modify: func(s *specs.Spec) {
				os.Symlink("../run/systemd/resolve/stub-resolv.conf", filepath.Join(s.Root.Path, "etc/resolv.conf"))
				f := filepath.Join(filepath.Dir(s.Root.Path), "resolv-"+randSuffix())
				os.WriteFile(f, []byte("nameserver 192.0.2.1\n"), 0o644)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: f, Options: []string{"rbind", "rprivate"}})
			},
			want: "nameserver 192.0.2.1\n../run/systemd/resolve/stub-resolv.conf\n",
		},
		{
			name: "bind mount dir read-only", args: []string{"sh", "-c", "cat /data/f; touch /data/g 2>/dev/null || echo refused"},
			modify: func(s *specs.Spec) {
				d := filepath.Join(filepath.Dir(s.Root.Path), "data-"+randSuffix())
				os.Mkdir(d, 0o755)
				os.WriteFile(filepath.Join(d, "f"), []byte("data\n"), 0o644)
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: d, Options: []string{"rbind", "ro"}})
			},
			want: "data\nrefused\n",
		},
		{
			name: "tmpfs", args: []string{"sh", "-c", "touch /scratch/x && ls /scratch"},
			modify: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "size=1m"}})
			},
			want: "x\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec(t, busyboxRoot(t), tt.args...)
			if tt.modify != nil {
				tt.modify(spec)
			}
			res := runContainer(t, spec)
			if res.startErr != nil {
				t.Fatalf("start: %v", res.startErr)
			}
			if res.stdout != tt.want || res.status.Code != 0 {
				t.Errorf("stdout %q (want %q), stderr %q, status %+v", res.stdout, tt.want, res.stderr, res.status)
			}
		})
	}
}

// A symlink in the image must not lead a mount out of the rootfs.
func TestMountDestinationSymlinkStaysInRoot(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := busyboxRoot(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, root, "ls", "/escape")
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/escape/sub", Type: "tmpfs", Source: "tmpfs"})
	res := runContainer(t, spec)
	if res.startErr != nil || res.stdout != "sub\n" {
		t.Fatalf("start %v, stdout %q, stderr %q", res.startErr, res.stdout, res.stderr)
	}
	if _, err := os.Stat(filepath.Join(outside, "sub")); err == nil {
		t.Fatal("the mount point was created outside the rootfs")
	}
	if _, err := os.Stat(filepath.Join(root, outside, "sub")); err != nil {
		t.Fatalf("the symlink was not resolved inside the rootfs: %v", err)
	}
}

func TestOverlayRootfs(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	lower := busyboxRoot(t)
	base := t.TempDir()
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	spec := testSpec(t, merged, "sh", "-c", "echo written > /new && cat /new && ls /bin/busybox")
	setRootMounts(t, spec, mount.Overlay([]string{lower}, upper, work))
	res := runContainer(t, spec)
	if res.startErr != nil || res.status.Code != 0 {
		t.Fatalf("start %v, status %+v, stderr %q", res.startErr, res.status, res.stderr)
	}
	if res.stdout != "written\n/bin/busybox\n" {
		t.Fatalf("stdout %q", res.stdout)
	}
	if b, err := os.ReadFile(filepath.Join(upper, "new")); err != nil || string(b) != "written\n" {
		t.Fatalf("upper dir: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(lower, "new")); err == nil {
		t.Fatal("write reached the lower dir")
	}
	if entries, _ := os.ReadDir(merged); len(entries) != 0 {
		t.Fatalf("the overlay is visible on the host: %d entries in %s", len(entries), merged)
	}
}

// Options longer than mount(2)'s page go through fsconfig.
func TestOverlayManyLayers(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	base := t.TempDir()
	var lowers []string
	for i := 0; i < 60; i++ {
		d := filepath.Join(base, "layer-with-a-rather-long-directory-name-"+strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "f"+strconv.Itoa(i)), nil, 0o644)
		lowers = append(lowers, d)
	}
	lowers = append(lowers, busyboxRoot(t))
	upper, work, merged := filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{upper, work, merged} {
		os.Mkdir(d, 0o755)
	}
	m := mount.Overlay(lowers, upper, work)
	if data := strings.Join(m.Options, ","); len(data) < 4096 {
		t.Fatalf("test data too short (%d) to need fsconfig", len(data))
	}
	spec := testSpec(t, merged, "sh", "-c", "ls / | grep -c '^f'")
	setRootMounts(t, spec, m)
	res := runContainer(t, spec)
	if res.startErr != nil || res.stdout != "60\n" {
		t.Fatalf("start %v, stdout %q, stderr %q", res.startErr, res.stdout, res.stderr)
	}
}

func setRootMounts(t *testing.T, spec *specs.Spec, ms ...mount.Mount) {
	t.Helper()
	b, err := json.Marshal(ms)
	if err != nil {
		t.Fatal(err)
	}
	spec.Annotations[AnnotationRootfsMounts] = string(b)
}

func TestExitCodes(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		code     int
		kind     errdefs.Kind
		msg      string
		signaled syscall.Signal
		path     string
	}{
		{name: "zero", args: []string{"true"}, code: 0},
		{name: "three", args: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "255", args: []string{"sh", "-c", "exit 255"}, code: 255},
		{name: "not in PATH", args: []string{"nosuchcmd"}, code: 127, kind: errdefs.KindCommandNotFound, msg: `exec: "nosuchcmd": executable file not found in $PATH`},
		{name: "no such file", args: []string{"/nonexistent"}, code: 127, kind: errdefs.KindCommandNotFound, msg: `exec: "/nonexistent": stat /nonexistent: no such file or directory`},
		{name: "not executable", args: []string{"/etc/notexec"}, code: 126, kind: errdefs.KindCannotInvoke, msg: `exec: "/etc/notexec": permission denied`},
		{name: "directory", args: []string{"/etc"}, code: 126, kind: errdefs.KindCannotInvoke, msg: `exec: "/etc": is a directory`},
		// Non-executable files in PATH are skipped, as runc does.
		{name: "not executable in PATH", args: []string{"notexec"}, path: "/etc:/bin", code: 127, kind: errdefs.KindCommandNotFound, msg: `exec: "notexec": executable file not found in $PATH`},
		{name: "found later in PATH", args: []string{"true"}, path: "/etc:/nonexistent:/bin", code: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec(t, busyboxRoot(t), tt.args...)
			if tt.path != "" {
				spec.Process.Env = []string{"PATH=" + tt.path}
			}
			res := runContainer(t, spec)
			if tt.kind == errdefs.KindUnknown {
				if res.startErr != nil {
					t.Fatalf("start: %v", res.startErr)
				}
			} else if errdefs.KindOf(res.startErr) != tt.kind || res.startErr.Error() != tt.msg {
				t.Fatalf("start error %v (kind %v), want %q (kind %v)", res.startErr, errdefs.KindOf(res.startErr), tt.msg, tt.kind)
			}
			if res.status.Code != tt.code || res.status.Signal != tt.signaled {
				t.Fatalf("status %+v, want code %d signal %v", res.status, tt.code, tt.signaled)
			}
		})
	}
}

func TestCreateErrors(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	tests := []struct {
		name   string
		modify func(*specs.Spec)
		kind   errdefs.Kind
		msg    string
	}{
		{
			name:   "unknown user",
			modify: func(s *specs.Spec) { s.Process.User.Username = "xyz" },
			kind:   errdefs.KindInvalid, msg: "unable to find user xyz: no matching entries in passwd file",
		},
		{
			name:   "unknown group",
			modify: func(s *specs.Spec) { s.Process.User.Username = "nobody:nogrp" },
			kind:   errdefs.KindInvalid, msg: "unable to find group nogrp: no matching entries in group file",
		},
		{
			name: "missing bind source",
			modify: func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent-skiff", Options: []string{"rbind"}})
			},
			kind: errdefs.KindInvalid, msg: "bind mount /x: stat /nonexistent-skiff: no such file or directory",
		},
		{
			name:   "unknown rlimit",
			modify: func(s *specs.Spec) { s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}} },
			kind:   errdefs.KindInvalid, msg: `unknown rlimit type "RLIMIT_BOGUS"`,
		},
		{
			name:   "no command",
			modify: func(s *specs.Spec) { s.Process.Args = nil },
			kind:   errdefs.KindInvalid, msg: "no command specified",
		},
		// The runtime's own check: a host sysctl never reaches the host,
		// whatever spec it is given.
		{
			name:   "host sysctl",
			modify: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm.swappiness": "7"} },
			kind:   errdefs.KindInvalid, msg: `sysctl "vm.swappiness" is not in a separate kernel namespace`,
		},
		{
			name:   "sysctl in slash form",
			modify: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"vm/swappiness": "7"} },
			kind:   errdefs.KindInvalid, msg: `sysctl "vm.swappiness" is not in a separate kernel namespace`,
		},
		{
			name:   "sysctl escaping /proc/sys",
			modify: func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net/../../vm/swappiness": "7"} },
			kind:   errdefs.KindInvalid, msg: `invalid sysctl "net/../../vm/swappiness"`,
		},
		{
			name: "net sysctl in the host's network namespace",
			modify: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
				for i := range s.Linux.Namespaces {
					if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
						s.Linux.Namespaces[i].Path = "/proc/self/ns/net"
					}
				}
			},
			kind: errdefs.KindInvalid, msg: `sysctl "net.ipv4.ip_forward" not allowed in host network namespace`,
		},
		{
			name: "ipc sysctl in the host's IPC namespace",
			modify: func(s *specs.Spec) {
				s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
				var ns []specs.LinuxNamespace
				for _, n := range s.Linux.Namespaces {
					if n.Type != specs.IPCNamespace {
						ns = append(ns, n)
					}
				}
				s.Linux.Namespaces = ns
			},
			kind: errdefs.KindInvalid, msg: `sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace`,
		},
		{
			name:   "unknown additional group",
			modify: func(s *specs.Spec) { s.Annotations = map[string]string{AnnotationGroups: "staffx"} },
			kind:   errdefs.KindInvalid, msg: "Unable to find group staffx: no matching entries in group file",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec(t, busyboxRoot(t), "true")
			tt.modify(spec)
			c, err := Create(context.Background(), CreateOpts{Spec: spec, ShimPath: shimPath})
			if err == nil {
				c.Destroy()
				t.Fatal("create succeeded")
			}
			if errdefs.KindOf(err) != tt.kind || err.Error() != tt.msg {
				t.Fatalf("error %q (kind %v), want %q (kind %v)", err, errdefs.KindOf(err), tt.msg, tt.kind)
			}
			cg, _ := cgroups.New(spec.Linux.CgroupsPath, nil)
			for _, d := range cg.Dirs() {
				if _, err := os.Stat(d); err == nil {
					t.Errorf("cgroup %s left behind", d)
				}
			}
		})
	}
}

func TestSignalAndWaitBeforeStart(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "sleep", "30")
	c, _, _ := createContainer(t, spec)
	done := make(chan ExitStatus, 1)
	go func() { st, _ := c.Wait(); done <- st }()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := c.Signal(syscall.SIGTERM); err != nil { // pid 1 ignores SIGTERM without a handler
		t.Fatal(err)
	}
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case st := <-done:
		if st.Code != 137 || st.Signal != syscall.SIGKILL {
			t.Fatalf("status %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("container did not exit")
	}
	if err := c.Signal(syscall.SIGKILL); !errdefs.IsConflict(err) {
		t.Fatalf("signal after exit: %v", err)
	}
	destroy(t, c, spec)
}

// Destroy before Start kills init and removes everything.
func TestDestroyCreated(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "true")
	c, _, _ := createContainer(t, spec)
	pid := c.Pid()
	destroy(t, c, spec)
	st, err := c.Wait()
	if err != nil || st.Signal != syscall.SIGKILL {
		t.Fatalf("wait: %+v %v", st, err)
	}
	if err := c.Start(); err == nil {
		t.Fatal("start after destroy succeeded")
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("init process %d still exists: %v", pid, err)
	}
}

func TestContextCancelKillsInit(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "true")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c, err := Create(ctx, CreateOpts{Spec: spec, ShimPath: shimPath})
	if err == nil {
		c.Destroy()
		t.Fatal("create with a cancelled context succeeded")
	}
}

func TestMemoryLimitOOMKill(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "x=aaaaaaaaaaaaaaaa; while :; do x=$x$x; done")
	limit := int64(16 << 20)
	spec.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit, Swap: &limit}
	res := runContainer(t, spec)
	if res.startErr != nil {
		t.Fatal(res.startErr)
	}
	if res.status.Code != 137 || !res.status.OOMKilled {
		t.Fatalf("status %+v, stderr %q", res.status, res.stderr)
	}
}

// Forks beyond the limit fail; a limit below what init's own Go runtime
// needs in threads still lets the container start, since the limit applies
// from execve, where one task is left.
func TestPidsLimit(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	for _, tc := range []struct {
		name   string
		limit  int64
		script string
		stdout string
	}{
		{"ten sleeps under 5", 5, "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 10 & done; echo spawned", ""}, // sh stops at the failed fork
		{"below init's threads", 1, "echo started; true & wait", "started\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			spec := testSpec(t, busyboxRoot(t), "sh", "-c", tc.script)
			spec.Linux.Resources.Pids = &specs.LinuxPids{Limit: ptr(tc.limit)}
			res := runContainer(t, spec)
			if res.startErr != nil {
				t.Fatal(res.startErr)
			}
			if res.stdout != tc.stdout || !strings.Contains(res.stderr, "can't fork") {
				t.Fatalf("stdout %q stderr %q, want %q and a refused fork", res.stdout, res.stderr, tc.stdout)
			}
		})
	}
}

func TestCPUQuota(t *testing.T) {
	requireRoot(t)
	// Not parallel: it measures CPU time.
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "while :; do :; done")
	spec.Linux.Resources.CPU = &specs.LinuxCPU{Quota: ptr(int64(20000)), Period: ptr(uint64(100000))}
	c, _, _ := createContainer(t, spec)
	defer destroy(t, c, spec)
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // past the first period
	st0, err := c.Cgroup().Stats()
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	time.Sleep(time.Second)
	st1, err := c.Cgroup().Stats()
	if err != nil {
		t.Fatal(err)
	}
	share := float64(st1.CPUUsageNs-st0.CPUUsageNs) / float64(time.Since(t0).Nanoseconds())
	t.Logf("CPU share under a 20%% quota: %.1f%%", share*100)
	if share < 0.10 || share > 0.35 {
		t.Fatalf("CPU share %.1f%%, want about 20%%", share*100)
	}
	c.Signal(syscall.SIGKILL)
	c.Wait()
}

// On cgroup v2 the init process is cloned straight into its cgroup, and
// the cgroup namespace is rooted there. The test mounts its own cgroup2.
func TestCgroupV2CloneIntoCgroup(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	mnt := t.TempDir()
	if err := unix.Mount("none", mnt, "cgroup2", 0, ""); err != nil {
		t.Skipf("cannot mount cgroup2: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	// The test's own cgroup is the manager's root: controllers are enabled
	// from there down, never in the host's root.
	root := filepath.Join(mnt, "skiff-test-"+randSuffix())
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(root) })
	cg, err := cgroups.NewV2(root, "/c", nil)
	if err != nil {
		t.Fatal(err)
	}
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "cat /proc/self/cgroup; ls /sys/fs/cgroup/cgroup.procs")
	spec.Mounts = append(spec.Mounts[:4], spec.Mounts[5:]...) // no v1 cgroup mount: the v2 one
	spec.Mounts = append(spec.Mounts, specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}})
	outR, outW, _ := os.Pipe()
	defer outR.Close()
	c, err := Create(context.Background(), CreateOpts{Spec: spec, ShimPath: shimPath, Stdout: outW, Stderr: outW, Cgroup: cg})
	outW.Close()
	if err != nil {
		t.Fatal(err)
	}
	procs, err := cg.Procs()
	if err != nil || len(procs) != 1 || procs[0] != c.Pid() {
		t.Fatalf("cgroup.procs %v (%v), want [%d]", procs, err, c.Pid())
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	n, _ := readAll(outR, out)
	st, _ := c.Wait()
	destroy(t, c, spec)
	if got := string(out[:n]); st.Code != 0 || !strings.Contains(got, "0::/\n") || !strings.Contains(got, "/sys/fs/cgroup/cgroup.procs") {
		t.Fatalf("status %+v, output %q", st, got)
	}
}

func readAll(f *os.File, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := f.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func TestTerminal(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "tty; test -c /dev/console && echo console; stty size; ls -ln /dev/pts/0 | cut -c1-30")
	spec.Process.User.Username = "nobody"
	c, err := Create(context.Background(), CreateOpts{Spec: spec, ShimPath: shimPath, Terminal: true})
	if err != nil {
		t.Fatal(err)
	}
	con := c.Console()
	if con == nil {
		t.Fatal("no console")
	}
	defer con.Close()
	if err := unix.IoctlSetWinsize(int(con.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 99}); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	out := make([]byte, 4096)
	n, _ := readAll(con, out) // ends with EIO once the container's side is closed
	st, _ := c.Wait()
	destroy(t, c, spec)
	got := strings.ReplaceAll(string(out[:n]), "\r\n", "\n")
	want := "/dev/pts/0\nconsole\n33 99\n"
	if st.Code != 0 || !strings.HasPrefix(got, want) || !strings.Contains(got, "65534") {
		t.Fatalf("status %+v, output %q, want %q and the pty owned by 65534", st, got, want)
	}
}

func TestDeviceCgroup(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	if unified, _ := cgroups.IsUnified(); unified {
		t.Skip("device rules need eBPF on cgroup v2")
	}
	spec := testSpec(t, busyboxRoot(t), "sh", "-c", "echo x > /dev/null && echo null; head -c 1 /dev/zero >/dev/null 2>&1 || echo zero refused")
	spec.Linux.Resources.Devices = []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
	}
	res := runContainer(t, spec)
	if res.startErr != nil || res.stdout != "null\nzero refused\n" {
		t.Fatalf("start %v, stdout %q, stderr %q", res.startErr, res.stdout, res.stderr)
	}
}
