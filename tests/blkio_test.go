package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func majMin(t *testing.T, path string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
}

// The per-device block I/O flags reach the container's cgroup (v1
// blkio.throttle.*, v2 io.max), or, where the host's cgroups cannot apply
// them (v1 weights without CFQ/BFQ, v2 without the io controller), are
// discarded with Docker's warnings; bad devices are refused with Docker's
// words.
func TestBlkioDeviceThrottles(t *testing.T) {
	for _, v2 := range []bool{false, true} {
		t.Run(map[bool]string{false: "v1", true: "v2"}[v2], func(t *testing.T) {
			t.Parallel()
			d := startDaemonWith(t, v2)
			d.importBusybox()
			vda, loop0 := majMin(t, "/dev/vda"), majMin(t, "/dev/loop0")
			clis := map[string]func(...string) (string, string, int){"skiff": d.skiff, "docker": d.docker}
			// v1 throttles need the blkio hierarchy's throttle files; v2
			// the io controller, which this hybrid host keeps on v1.
			throttles := !v2
			if v2 {
				ctrls, _ := os.ReadFile("/sys/fs/cgroup/unified/cgroup.controllers")
				throttles = strings.Contains(string(ctrls), "io")
			}
			for name, cli := range clis {
				out, errOut, code := cli("run", "-d", "--device-read-bps", "/dev/vda:1mb", "--device-write-bps", "/dev/vda:2mb",
					"--device-read-iops", "/dev/vda:100", "--device-write-iops", "/dev/loop0:50",
					"--blkio-weight-device", "/dev/vda:300", "busybox", "sleep", "60")
				if code != 0 {
					t.Fatalf("%s run: exit %d %s", name, code, errOut)
				}
				id := strings.TrimSpace(out)
				var dir string
				if v2 {
					dir = filepath.Join("/sys/fs/cgroup/unified", d.cgParent, id)
				} else {
					dir = filepath.Join("/sys/fs/cgroup/blkio", d.cgParent, id)
				}
				read := func(f string) string { b, _ := os.ReadFile(filepath.Join(dir, f)); return string(b) }
				support := throttles
				if support && !v2 {
					for f, want := range map[string]string{
						"blkio.throttle.read_bps_device":   vda + " 1048576\n",
						"blkio.throttle.write_bps_device":  vda + " 2097152\n",
						"blkio.throttle.read_iops_device":  vda + " 100\n",
						"blkio.throttle.write_iops_device": loop0 + " 50\n",
					} {
						if got := read(f); got != want {
							t.Errorf("%s: %s = %q, want %q", name, f, got, want)
						}
					}
				}
				if support && v2 {
					io := read("io.max")
					for _, want := range []string{vda + " rbps=1048576 wbps=2097152 riops=100 ", loop0 + " rbps=max wbps=max riops=max wiops=50"} {
						if !strings.Contains(io, want) {
							t.Errorf("%s: io.max %q lacks %q", name, io, want)
						}
					}
				}
				if !support && !strings.Contains(errOut, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded.") {
					t.Errorf("%s: no warning for the discarded read limit: %q", name, errOut)
				}
				weight := v2 && support
				if !v2 {
					_, err := os.Stat(filepath.Join("/sys/fs/cgroup/blkio", "blkio.weight_device"))
					_, err2 := os.Stat(filepath.Join("/sys/fs/cgroup/blkio", "blkio.bfq.weight_device"))
					weight = err == nil || err2 == nil
				}
				if !weight {
					// Docker's behaviour without CFQ/BFQ: a warning, and the weight dropped.
					if !strings.Contains(errOut, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.") {
						t.Errorf("%s: no weight_device warning: %q", name, errOut)
					}
					if out := d.must("inspect", "-f", "{{json .HostConfig.BlkioWeightDevice}}", id); out != "[]\n" {
						t.Errorf("%s: BlkioWeightDevice kept: %s", name, out)
					}
				}
				d.must("rm", "-f", id)
			}
			// --blkio-weight, at run and update: where the host cannot apply
			// it, Docker's warning and nothing else.
			hasWeight := throttles && v2
			if !v2 {
				_, err := os.Stat("/sys/fs/cgroup/blkio/blkio.weight")
				_, err2 := os.Stat("/sys/fs/cgroup/blkio/blkio.bfq.weight")
				hasWeight = err == nil || err2 == nil
			}
			const weightWarning = "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded."
			for name, cli := range clis {
				out, errOut, code := cli("run", "-d", "--blkio-weight", "300", "busybox", "sleep", "60")
				if code != 0 || strings.Contains(errOut, weightWarning) == hasWeight {
					t.Errorf("%s run --blkio-weight: exit %d %q", name, code, errOut)
				}
				id := strings.TrimSpace(out)
				// update prints its warnings on stdout, after the names.
				out, errOut, code = cli("update", "--blkio-weight", "400", id)
				if code != 0 || strings.Contains(out, weightWarning) == hasWeight {
					t.Errorf("%s update --blkio-weight: exit %d %q %q", name, code, out, errOut)
				}
				if out := d.must("inspect", "-f", "{{.HostConfig.BlkioWeight}}", id); !hasWeight && out != "0\n" {
					t.Errorf("%s: BlkioWeight %q kept", name, out)
				}
				d.must("rm", "-f", id)
			}
			for name, cli := range clis {
				for _, tc := range []struct {
					flag, val, want string
					code            int
				}{
					// 127: the CLIs' reading of "no such file or directory" in
					// a start error, as against dockerd.
					{"--device-read-bps", "/dev/skiff-nope:1mb", "stat /dev/skiff-nope: no such file or directory", 127},
					{"--device-write-iops", "vda:5", "bad format for device path: vda:5", 125},
					{"--device-read-bps", "/dev/vda:fast", "invalid rate for device: /dev/vda:fast.", 125},
					{"--blkio-weight-device", "/dev/vda:5", "invalid weight for device: /dev/vda:5", 125},
				} {
					if !throttles && tc.code == 127 {
						continue // discarded at create, before the path is looked at, as Docker does
					}
					if _, errOut, code := cli("run", "--rm", tc.flag, tc.val, "busybox", "true"); code != tc.code || !strings.Contains(errOut, tc.want) {
						t.Errorf("%s %s %s: exit %d %q, want %d and %q", name, tc.flag, tc.val, code, errOut, tc.code, tc.want)
					}
				}
			}
		})
	}
}
