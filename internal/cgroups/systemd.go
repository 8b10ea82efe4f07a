package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// SystemdHierarchy makes sure a cgroup v1 host has the name=systemd
// hierarchy, which systemd as PID 1 in a container needs (it mounts it at
// /sys/fs/cgroup/systemd and fails without it). A host booted by systemd
// has it; a v1 host booted otherwise (OpenRC, cgroupfs-mount) may not. Then
// it mounts one at <root>/systemd, as cgroupfs-mount does
// (`mount -t cgroup -o none,name=systemd systemd /sys/fs/cgroup/systemd`):
// a hierarchy with no controller, which limits nothing. It stays mounted
// after the daemon stops, like the host's other cgroup mounts. It returns
// the mount point it made, "" when nothing was needed (v2 host, or the
// hierarchy is there). Call it before the first cgroup manager is made.
func SystemdHierarchy(root string) (string, error) {
	unified, err := IsUnified()
	if err != nil || unified {
		return "", err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	has, err := hasNamedHierarchy(f, "name=systemd")
	f.Close()
	if err != nil || has {
		return "", err
	}
	dir := filepath.Join(root, "systemd")
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("cgroups: create %s for the name=systemd hierarchy: %w", dir, err)
	}
	if err := unix.Mount("systemd", dir, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "none,name=systemd"); err != nil {
		return "", fmt.Errorf("cgroups: mount the name=systemd hierarchy on %s: %w", dir, err)
	}
	return dir, nil
}

// hasNamedHierarchy reports whether mountinfo lists a cgroup v1 mount with
// the option name (like "name=systemd").
func hasNamedHierarchy(mountinfo io.Reader, name string) (bool, error) {
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		_, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		qf := strings.Fields(post)
		if len(qf) < 3 || qf[0] != "cgroup" {
			continue
		}
		for _, o := range strings.Split(qf[2], ",") {
			if o == name {
				return true, nil
			}
		}
	}
	if err := sc.Err(); err != nil {
		return false, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	return false, nil
}
