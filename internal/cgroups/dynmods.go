package cgroups

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// FavorDynMods makes moving processes between cgroups cheap on a host where
// skiff has to (any cgroup v1 layout). Each move into a v1 hierarchy takes
// the kernel's global threadgroup lock for writing, and the first move after
// a quiet moment waits for an RCU grace period first: 6 to 15 ms on a 2-core
// VM, paid by every container start and every exec. The cgroup mount option
// favordynmods (kernel 6.0+) keeps that lock in the mode where writers do not
// wait, at a small cost to fork and exit; it is global, so one remount of
// one cgroup mount covers every hierarchy.
//
// On a cgroup v2 host nothing is done: skiff starts containers and execs
// straight into their cgroup (CLONE_INTO_CGROUP), which never takes that
// lock for writing. It returns the mount point it changed, "" when it
// changed nothing (v2 host, or the option is already on).
func FavorDynMods() (string, error) {
	unified, err := IsUnified()
	if err != nil || unified {
		return "", err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	defer f.Close()
	rm, err := dynmodsRemount(f)
	if err != nil || rm.target == "" {
		return "", err
	}
	if err := unix.Mount("", rm.target, "", rm.flags, rm.data); err != nil {
		return "", fmt.Errorf("cgroups: remount %s with favordynmods: %w", rm.target, err)
	}
	return rm.target, nil
}

// remount is one mount(2) call: MS_REMOUNT with the mount's own flags and
// its superblock options, favordynmods added.
type remount struct {
	target string
	flags  uintptr
	data   string
}

// dynmodsRemount picks the cgroup mount to remount from mountinfo: the
// cgroup2 mount of a hybrid host if there is one (its options are few and
// carry no controller list), else the first v1 controller hierarchy. A zero
// remount means some cgroup mount already has the option.
func dynmodsRemount(mountinfo io.Reader) (remount, error) {
	var v2, v1 *remount
	sc := bufio.NewScanner(mountinfo)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 6 || len(qf) < 3 || (qf[0] != "cgroup" && qf[0] != "cgroup2") {
			continue
		}
		super := strings.Split(qf[2], ",")
		var data []string
		for _, o := range super {
			switch o {
			case "favordynmods":
				return remount{}, nil
			case "rw", "ro": // superblock read-only state travels in the flags
			default:
				data = append(data, o)
			}
		}
		rm := remount{target: unescapeMountinfo(pf[4]), flags: unix.MS_REMOUNT | mountFlags(pf[5]), data: strings.Join(append(data, "favordynmods"), ",")}
		switch {
		case qf[0] == "cgroup2" && v2 == nil:
			v2 = &rm
		case qf[0] == "cgroup" && v1 == nil && hasController(super):
			v1 = &rm
		}
	}
	if err := sc.Err(); err != nil {
		return remount{}, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	switch {
	case v2 != nil:
		return *v2, nil
	case v1 != nil:
		return *v1, nil
	}
	return remount{}, nil
}

func hasController(opts []string) bool {
	for _, o := range opts {
		if knownV1Controllers[o] {
			return true
		}
	}
	return false
}

// perMountFlags are the per-mount options mountinfo shows, as mount flags.
var perMountFlags = map[string]uintptr{
	"ro": unix.MS_RDONLY, "nosuid": unix.MS_NOSUID, "nodev": unix.MS_NODEV, "noexec": unix.MS_NOEXEC,
	"noatime": unix.MS_NOATIME, "nodiratime": unix.MS_NODIRATIME, "relatime": unix.MS_RELATIME,
	"strictatime": unix.MS_STRICTATIME,
}

// mountFlags turns a mount's per-mount options into the flags a remount
// must repeat: a remount sets them anew, and leaving one out would clear it.
func mountFlags(opts string) uintptr {
	var f uintptr
	for _, o := range strings.Split(opts, ",") {
		f |= perMountFlags[o]
	}
	return f
}
