package ocispec

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// errNotADevice: the path exists but is no device node.
var errNotADevice = errors.New("not a device node")

// withDevices adds hc's devices to s, as Docker's WithDevices does: the nodes
// of --device (a directory gives every device below it) with their cgroup
// rules, then --device-cgroup-rule; with --privileged, every device of the
// host's /dev and an allow-all rule instead. A host path that is no device
// fails the start with Docker's words.
func withDevices(s *specs.Spec, hc *container.HostConfig) error {
	var devs []specs.LinuxDevice
	rules := s.Linux.Resources.Devices
	if hc.Privileged {
		host, err := hostDevices("/dev")
		if err != nil {
			return errdefs.System("gather the host's devices: %v", err)
		}
		devs = append(devs, host...)
		for _, m := range hc.Devices {
			// /dev is the host's already; another path gets a copy (the
			// permissions do not matter: everything is allowed).
			if m.PathOnHost == m.PathInContainer || m.PathInContainer == "" {
				continue
			}
			d, _, err := DevicesFromPath(m.PathOnHost, m.PathInContainer, "rwm")
			if err != nil {
				return err
			}
			devs = append(devs, d...)
		}
		rules = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	} else {
		for _, m := range hc.Devices {
			if m.PathInContainer == "" {
				m.PathInContainer = m.PathOnHost
			}
			perms := m.CgroupPermissions
			if perms == "" {
				perms = "rwm"
			}
			d, r, err := DevicesFromPath(m.PathOnHost, m.PathInContainer, perms)
			if err != nil {
				return err
			}
			devs = append(devs, d...)
			rules = append(rules, r...)
		}
		r, err := DeviceCgroupRules(hc.DeviceCgroupRules)
		if err != nil {
			return err
		}
		rules = append(rules, r...)
	}
	s.Linux.Devices = append(s.Linux.Devices, devs...)
	s.Linux.Resources.Devices = rules
	// --gpus: skiff has no device driver (Docker's come from the NVIDIA and
	// CDI plugins), so every request fails the start as on a dockerd
	// without one.
	if len(hc.DeviceRequests) > 0 {
		req := hc.DeviceRequests[0]
		return errdefs.Invalid("could not select device driver %q with capabilities: %v", req.Driver, req.Capabilities)
	}
	return nil
}

// DevicesFromPath is the device nodes (and their cgroup rules with perms)
// that --device HOST:CONTAINER adds: HOST itself (a symlink is followed), or
// every device under the directory HOST, placed under CONTAINER.
func DevicesFromPath(onHost, inContainer, perms string) ([]specs.LinuxDevice, []specs.LinuxDeviceCgroup, error) {
	resolved := onHost
	if st, err := os.Lstat(onHost); err == nil && st.Mode()&os.ModeSymlink != 0 {
		if p, err := filepath.EvalSymlinks(onHost); err == nil {
			resolved = p
		}
	}
	rule := func(d *specs.LinuxDevice) specs.LinuxDeviceCgroup {
		return specs.LinuxDeviceCgroup{Allow: true, Type: d.Type, Major: ptr(d.Major), Minor: ptr(d.Minor), Access: perms}
	}
	d, err := deviceFromPath(resolved)
	if err == nil {
		d.Path = inContainer
		return []specs.LinuxDevice{*d}, []specs.LinuxDeviceCgroup{rule(d)}, nil
	}
	var devs []specs.LinuxDevice
	var rules []specs.LinuxDeviceCgroup
	if errors.Is(err, errNotADevice) {
		if st, serr := os.Stat(resolved); serr == nil && st.IsDir() {
			_ = filepath.WalkDir(resolved, func(p string, _ os.DirEntry, _ error) error {
				cd, err := deviceFromPath(p)
				if err != nil {
					return nil // not a device: skipped, as Docker does
				}
				cd.Path = strings.Replace(p, resolved, inContainer, 1)
				devs = append(devs, *cd)
				rules = append(rules, rule(cd))
				return nil
			})
		}
	}
	if len(devs) > 0 {
		return devs, rules, nil
	}
	return nil, nil, errdefs.System("error gathering device information while adding custom device %q: %s", onHost, err)
}

// deviceFromPath describes the node at path (not followed): type, numbers,
// mode and owner, which the container's copy gets too.
func deviceFromPath(path string) (*specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, err // the bare errno, as Docker prints it
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFBLK:
		typ = "b"
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFIFO:
		typ = "p"
	default:
		return nil, errNotADevice
	}
	mode := os.FileMode(st.Mode &^ unix.S_IFMT)
	uid, gid := st.Uid, st.Gid
	return &specs.LinuxDevice{
		Type: typ, Path: path,
		Major: int64(unix.Major(st.Rdev)), Minor: int64(unix.Minor(st.Rdev)),
		FileMode: &mode, UID: &uid, GID: &gid,
	}, nil
}

// hostDevices lists the devices under dir as a privileged container gets
// them: not the pts, shm, mqueue and fd directories, nor console or fifos.
func hostDevices(dir string) ([]specs.LinuxDevice, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []specs.LinuxDevice
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if e.IsDir() {
			switch e.Name() {
			case "pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev":
				continue
			}
			sub, err := hostDevices(p)
			if err != nil {
				return nil, err
			}
			out = append(out, sub...)
			continue
		}
		if e.Name() == "console" {
			continue
		}
		d, err := deviceFromPath(p)
		if err != nil {
			if errors.Is(err, errNotADevice) || errors.Is(err, unix.ENOENT) {
				continue
			}
			return nil, err
		}
		if d.Type == "p" {
			continue
		}
		out = append(out, *d)
	}
	return out, nil
}

var deviceCgroupRuleRe = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// DeviceCgroupRules parses --device-cgroup-rule values ('c 1:3 rwm', '*'
// for any major or minor) into allow rules, with Docker's error.
func DeviceCgroupRules(rules []string) ([]specs.LinuxDeviceCgroup, error) {
	var out []specs.LinuxDeviceCgroup
	for _, r := range rules {
		m := deviceCgroupRuleRe.FindStringSubmatch(r)
		if m == nil {
			return nil, errdefs.Invalid("invalid device cgroup rule format: '%s'", r)
		}
		num := func(s, what string) (*int64, error) {
			if s == "*" {
				return ptr(int64(-1)), nil
			}
			v, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return nil, errdefs.Invalid("invalid %s value in device cgroup rule format: '%s'", what, r)
			}
			return &v, nil
		}
		major, err := num(m[2], "major")
		if err != nil {
			return nil, err
		}
		minor, err := num(m[3], "minor")
		if err != nil {
			return nil, err
		}
		out = append(out, specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Major: major, Minor: minor, Access: m[4]})
	}
	return out, nil
}

// ValidateDevices refuses at create what would fail every start: device
// mappings with a bad path or permissions, and malformed cgroup rules.
// (Docker finds these at start only; the words are the same.)
func ValidateDevices(hc *container.HostConfig) error {
	for _, m := range hc.Devices {
		if m.PathInContainer != "" && !filepath.IsAbs(m.PathInContainer) {
			return errdefs.Invalid("%s is not an absolute path", m.PathInContainer)
		}
		if p := m.CgroupPermissions; p != "" && !validDeviceMode(p) {
			return errdefs.Invalid("bad mode specified: %s", p)
		}
	}
	_, err := DeviceCgroupRules(hc.DeviceCgroupRules)
	return err
}

// validDeviceMode: a non-empty combination of r, w and m, each once.
func validDeviceMode(mode string) bool {
	if mode == "" || len(mode) > 3 {
		return false
	}
	for i, c := range mode {
		if !strings.ContainsRune("rwm", c) || strings.ContainsRune(mode[i+1:], c) {
			return false
		}
	}
	return true
}
