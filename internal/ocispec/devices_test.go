package ocispec

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestDeviceCgroupRules(t *testing.T) {
	for _, tc := range []struct {
		rule, want, err string
	}{
		{"c 1:3 rwm", "c 1:3 rwm", ""},
		{"b *:* m", "b -1:-1 m", ""},
		{"a 7:* r", "a 7:-1 r", ""},
		{"c 1:3", "", "invalid device cgroup rule format: 'c 1:3'"},
		{"x 1:3 rwm", "", "invalid device cgroup rule format: 'x 1:3 rwm'"},
		{"c 1:3 rwx", "", "invalid device cgroup rule format: 'c 1:3 rwx'"},
		{"c 99999999999999999999:3 rwm", "", "invalid major value in device cgroup rule format: 'c 99999999999999999999:3 rwm'"},
	} {
		r, err := DeviceCgroupRules([]string{tc.rule})
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.rule, err, tc.err)
			}
			continue
		}
		if err != nil || len(r) != 1 || !r[0].Allow {
			t.Fatalf("%q: %+v %v", tc.rule, r, err)
		}
		got := r[0].Type + " " + itoa(*r[0].Major) + ":" + itoa(*r[0].Minor) + " " + r[0].Access
		if got != tc.want {
			t.Errorf("%q: %s, want %s", tc.rule, got, tc.want)
		}
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// --device with a directory adds every device under it, placed under the
// container path; a missing path or a file that is no device is refused
// with Docker's words.
func TestDevicesFromPath(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	if err := unix.Mknod(filepath.Join(dir, "a"), unix.S_IFCHR|0o620, int(unix.Mkdev(1, 3))); err != nil {
		t.Fatal(err)
	}
	unix.Mknod(filepath.Join(dir, "sub", "b"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 1)))
	os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644)
	os.Chown(filepath.Join(dir, "a"), 0, 5)
	os.Chmod(filepath.Join(dir, "a"), 0o620)
	devs, rules, err := DevicesFromPath(dir, "/dev/x", "rw")
	if err != nil || len(devs) != 2 || len(rules) != 2 {
		t.Fatalf("%+v %+v %v", devs, rules, err)
	}
	if d := devs[0]; d.Path != "/dev/x/a" || d.Type != "c" || d.Major != 1 || d.Minor != 3 || d.FileMode.Perm() != 0o620 || *d.GID != 5 {
		t.Errorf("device a: %+v", d)
	}
	if d := devs[1]; d.Path != "/dev/x/sub/b" || d.Type != "b" || d.Major != 7 {
		t.Errorf("device b: %+v", d)
	}
	if r := rules[1]; !r.Allow || r.Type != "b" || *r.Major != 7 || *r.Minor != 1 || r.Access != "rw" {
		t.Errorf("rule b: %+v", r)
	}
	_, _, err = DevicesFromPath("/dev/skiff-nope", "/dev/nope", "rwm")
	if err == nil || err.Error() != `error gathering device information while adding custom device "/dev/skiff-nope": no such file or directory` {
		t.Errorf("missing device: %v", err)
	}
	_, _, err = DevicesFromPath(filepath.Join(dir, "plain"), "/dev/p", "rwm")
	if err == nil || !strings.HasSuffix(err.Error(), ": not a device node") {
		t.Errorf("plain file: %v", err)
	}
}

// --privileged: every host device, an allow-all rule, rules ignored.
func TestPrivilegedDevices(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Resources: &specs.LinuxResources{Devices: defaultDevices(true)}}}
	hc := &container.HostConfig{Privileged: true}
	hc.DeviceCgroupRules = []string{"c 1:3 r"}
	if err := withDevices(s, hc); err != nil {
		t.Fatal(err)
	}
	if r := s.Linux.Resources.Devices; len(r) != 1 || !r[0].Allow || r[0].Type != "" || r[0].Access != "rwm" {
		t.Errorf("rules %+v", r)
	}
	seen := map[string]bool{}
	for _, d := range s.Linux.Devices {
		seen[d.Path] = true
		if strings.HasPrefix(d.Path, "/dev/pts/") || d.Path == "/dev/console" {
			t.Errorf("privileged gets %s", d.Path)
		}
	}
	if !seen["/dev/null"] || !seen["/dev/zero"] {
		t.Errorf("host devices missing: %v", seen)
	}
}
