package tests

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// hostNode is how busybox's stat -c '%F %t:%T %a %u:%g' shows the host's
// node at path.
func hostNode(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	kind := "character special file"
	if st.Mode&unix.S_IFMT == unix.S_IFBLK {
		kind = "block special file"
	}
	return fmt.Sprintf("%s %x:%x %o %d:%d", kind, unix.Major(st.Rdev), unix.Minor(st.Rdev), st.Mode&0o7777, st.Uid, st.Gid)
}

// --device, --device-cgroup-rule and --privileged, on the host's cgroup v1
// (devices.allow) and on a pure cgroup v2 (the eBPF device program),
// through skiff's CLI, the docker CLI and the raw API. Loop devices serve
// as the devices a container may not open by default.
func TestDevices(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			t.Parallel()
			d := startDaemonWith(t, v2)
			d.importBusybox()
			clis := map[string]func(...string) (string, string, int){"skiff": d.skiff, "docker": d.docker}
			for _, tc := range []struct {
				name   string
				args   []string
				script string
				want   string
			}{
				{"node", []string{"--device", "/dev/loop0:/dev/xloop"},
					"stat -c '%F %t:%T %a %u:%g' /dev/xloop; exec 3</dev/xloop 4>/dev/xloop && echo rw", hostNode(t, "/dev/loop0") + "\nrw\n"},
				{"same path, default perms", []string{"--device", "/dev/loop1"},
					"exec 3<>/dev/loop1 && echo rw", "rw\n"},
				{"read only", []string{"--device", "/dev/loop0:/dev/xloop:r"},
					"exec 3</dev/xloop && echo r; (exec 4>/dev/xloop) 2>/dev/null || echo no-w", "r\nno-w\n"},
				{"not allowed", nil,
					"mknod /tmp/l b 7 0 && echo mknod; (exec 3</tmp/l) 2>&1 | grep -o 'not permitted'", "mknod\nnot permitted\n"},
				{"cgroup rule", []string{"--device-cgroup-rule", "b 7:* r"},
					"mknod /tmp/l b 7 2 && exec 3</tmp/l && echo r; (exec 4>/tmp/l) 2>/dev/null || echo no-w", "r\nno-w\n"},
				{"directory", []string{"--device", "/dev/net:/dev/xnet"},
					"stat -c '%F %t:%T %a %u:%g' /dev/xnet/tun", hostNode(t, "/dev/net/tun") + "\n"},
				{"privileged, mapped elsewhere", []string{"--privileged", "--device", "/dev/loop2:/dev/xloop:r"},
					"stat -c '%F %t:%T' /dev/xloop; exec 3<>/dev/xloop && echo rw", "block special file 7:2\nrw\n"},
				{"privileged", []string{"--privileged"},
					"exec 3</dev/loop0 4>/dev/loop1 && stat -c '%F %t:%T %a %u:%g' /dev/tty1 && readlink /dev/ptmx", hostNode(t, "/dev/tty1") + "\npts/ptmx\n"},
			} {
				for _, name := range []string{"skiff", "docker"} {
					args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", tc.script)
					out, errOut, code := clis[name](args...)
					if code != 0 || out != tc.want {
						t.Errorf("%s: %s %v: exit %d %q %s, want %q", tc.name, name, tc.args, code, out, errOut, tc.want)
					}
				}
			}
			// A missing host device fails the start with Docker's words. (Both
			// CLIs exit 127, not 125: docker's turns a start error that says
			// "no such file or directory" into 127, against dockerd too.)
			for name, cli := range clis {
				_, errOut, code := cli("run", "--rm", "--device", "/dev/skiff-nope:/dev/x", "busybox", "true")
				if code != 127 || !strings.Contains(errOut, `error gathering device information while adding custom device "/dev/skiff-nope": no such file or directory`) {
					t.Errorf("%s: missing device: exit %d %q", name, code, errOut)
				}
			}
			// The raw API, as compose sends it: no container path (the host's)
			// and no permissions (rwm).
			if out := apiRun(t, d, &container.HostConfig{Resources: container.Resources{
				Devices:           []container.DeviceMapping{{PathOnHost: "/dev/loop3"}},
				DeviceCgroupRules: []string{"b 7:4 m", "b 7:4 r"},
			}}, "exec 3<>/dev/loop3 && mknod /tmp/l4 b 7 4 && exec 4</tmp/l4 && echo ok; (exec 5>/tmp/l4) 2>/dev/null || echo no-w"); out != "ok\nno-w\n" {
				t.Errorf("API devices: %q", out)
			}
			// A bad rule through the API; the CLIs check it themselves.
			_, err := d.cli.ContainerCreate(context.Background(), client.ContainerCreateOptions{
				Config:     &container.Config{Image: "busybox", Cmd: []string{"true"}},
				HostConfig: &container.HostConfig{Resources: container.Resources{DeviceCgroupRules: []string{"c 1:3"}}},
			})
			if err == nil || !strings.Contains(err.Error(), "invalid device cgroup rule format: 'c 1:3'") {
				t.Errorf("API bad rule: %v", err)
			}
			for name, cli := range clis {
				if _, errOut, code := cli("run", "--rm", "--device-cgroup-rule", "c 1:3", "busybox", "true"); code != 125 || !strings.Contains(errOut, "invalid device cgroup format 'c 1:3'") {
					t.Errorf("%s: bad rule: exit %d %q", name, code, errOut)
				}
				if _, errOut, code := cli("run", "--rm", "--device", "/dev/loop0:/dev/x:rx", "busybox", "true"); code != 125 || !strings.Contains(errOut, "bad mode specified: rx") {
					t.Errorf("%s: bad mode: exit %d %q", name, code, errOut)
				}
				// No GPU driver: refused as by a dockerd without one.
				if _, errOut, code := cli("run", "--rm", "--gpus", "all", "busybox", "true"); code != 125 || !strings.Contains(errOut, `could not select device driver "" with capabilities: [[gpu]]`) {
					t.Errorf("%s: --gpus all: exit %d %q", name, code, errOut)
				}
			}
			// update leaves the device rules as they are.
			id := strings.TrimSpace(d.must("run", "-d", "--device", "/dev/loop0:/dev/xloop:r", "busybox", "sleep", "60"))
			if !v2 {
				b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/devices", d.cgParent, id, "devices.list"))
				if !strings.Contains(string(b), "b 7:0 r\n") || strings.Contains(string(b), "a *:* rwm") {
					t.Errorf("devices.list:\n%s", b)
				}
			}
			d.must("update", "--restart", "on-failure", id)
			check := "exec 3</dev/xloop && echo r; (exec 4>/dev/xloop) 2>/dev/null || echo no-w; mknod /tmp/u b 7 1; (exec 5</tmp/u) 2>/dev/null || echo no-loop1"
			if out := d.must("exec", id, "sh", "-c", check); out != "r\nno-w\nno-loop1\n" {
				t.Errorf("after update: %q", out)
			}
		})
	}
}

// apiRun runs sh -c script in busybox through the Go client and returns
// its output.
func apiRun(t *testing.T, d *daemon, hc *container.HostConfig, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cr, err := d.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: "busybox", Cmd: []string{"sh", "-c", script}},
		HostConfig: hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer d.cli.ContainerRemove(context.Background(), cr.ID, client.ContainerRemoveOptions{Force: true})
	wait := d.cli.ContainerWait(ctx, cr.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := d.cli.ContainerStart(ctx, cr.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wait.Result:
	case err := <-wait.Error:
		t.Fatal(err)
	}
	rc, err := d.cli.ContainerLogs(ctx, cr.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var so, se bytes.Buffer
	stdcopy.StdCopy(&so, &se, rc)
	return so.String() + se.String()
}
