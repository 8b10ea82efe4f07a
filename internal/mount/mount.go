// Package mount describes a file system mount the way containerd's
// snapshotters return it ([]Mount: type, source, options), and performs it:
// on a directory (the runtime, inside the container's own mount namespace)
// or detached (Detached: fsmount or open_tree, a mount that is in no
// namespace's tree, for the engine, so that no mount ever appears on the
// host).
//
// Overlay is the one place that spells overlay's lowerdir/upperdir/workdir
// options; nothing reads them back. Whoever needs a snapshot's directories
// asks the snapshotter (snapshot.Snapshotter.Dirs).
//
// skiff-shim links this package: it imports only the standard library and
// golang.org/x/sys.
package mount

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount, in the shape of containerd's mount.Mount.
type Mount struct {
	// Type is the file system type: "overlay", or "bind" for a bind mount.
	Type string `json:"type"`
	// Source is what is mounted: a directory for "bind", the file system's
	// name ("overlay") otherwise.
	Source string `json:"source"`
	// Target is where the mount goes below the directory the mounts are
	// applied to; "" for that directory itself.
	Target string `json:"target,omitempty"`
	// Options are mount(8)'s: flags (ro, rbind, nosuid...) and the file
	// system's own options (lowerdir=..., volatile).
	Options []string `json:"options,omitempty"`
}

// Overlay is the overlay mount of the layer directories lowers (the top one
// first) under the writable directory upper, with overlay's work directory
// work. With upper "" the mount is read-only (and lowers needs two entries
// on kernels before 4.13). extra are further overlay options ("volatile").
func Overlay(lowers []string, upper, work string, extra ...string) Mount {
	opts := []string{"lowerdir=" + strings.Join(lowers, ":")}
	if upper != "" {
		opts = append(opts, "upperdir="+upper, "workdir="+work)
	}
	return Mount{Type: "overlay", Source: "overlay", Options: append(opts, extra...)}
}

// Bind is a recursive bind mount of dir, read-only with ro.
func Bind(dir string, ro bool) Mount {
	opts := []string{"rbind"}
	if ro {
		opts = []string{"ro", "rbind"}
	}
	return Mount{Type: "bind", Source: dir, Options: opts}
}

// flag maps the options that are mount flags rather than file system data
// (a switch, not a map: skiff-shim, resident per container, links this
// package and would build a map at every start).
func flag(o string) (uintptr, bool) {
	switch o {
	case "ro":
		return unix.MS_RDONLY, true
	case "bind":
		return unix.MS_BIND, true
	case "rbind":
		return unix.MS_BIND | unix.MS_REC, true
	case "nosuid":
		return unix.MS_NOSUID, true
	case "nodev":
		return unix.MS_NODEV, true
	case "noexec":
		return unix.MS_NOEXEC, true
	case "noatime":
		return unix.MS_NOATIME, true
	}
	return 0, false
}

// split separates m's options into mount flags and file system data.
func (m Mount) split() (uintptr, []string) {
	var fl uintptr
	var data []string
	for _, o := range m.Options {
		if f, ok := flag(o); ok {
			fl |= f
		} else if o != "rw" && o != "" {
			data = append(data, o)
		}
	}
	if m.Type == "bind" {
		fl |= unix.MS_BIND
	}
	return fl, data
}

// maxData is what mount(2) takes as data: one page, less a margin for the
// terminating NUL. Longer data (an overlay of ~120 layers) goes through
// fsconfig, one option at a time.
const maxData = 4000

// All mounts ms, in order, on root (each at its Target below root).
func All(ms []Mount, root string) error {
	for _, m := range ms {
		target := root
		if m.Target != "" {
			target = filepath.Join(root, filepath.Clean("/"+m.Target))
		}
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	return nil
}

// Mount mounts m on the directory target.
func (m Mount) Mount(target string) error {
	err := m.mount(target)
	if errors.Is(err, unix.EINVAL) && m.Type == "overlay" && slices.Contains(m.Options, "volatile") {
		// Kernels before 5.10 do not know overlay's volatile: it only
		// saves a sync, so mount without it.
		m.Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "volatile" })
		err = m.mount(target)
	}
	return err
}

func (m Mount) mount(target string) error {
	fl, data := m.split()
	if fl&unix.MS_BIND != 0 {
		if err := unix.Mount(m.Source, target, "", fl&(unix.MS_BIND|unix.MS_REC), ""); err != nil {
			return fmt.Errorf("bind mount %s on %s: %w", m.Source, target, err)
		}
		// A bind mount ignores the other flags until it is remounted.
		if extra := fl &^ (unix.MS_BIND | unix.MS_REC); extra != 0 {
			if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|extra, ""); err != nil {
				return fmt.Errorf("remount %s: %w", target, err)
			}
		}
		return nil
	}
	if d := strings.Join(data, ","); len(d) < maxData {
		if err := unix.Mount(m.Source, target, m.Type, fl, d); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
		return nil
	}
	fd, err := m.fsmount()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move %s mount to %s: %w", m.Type, target, err)
	}
	return nil
}

// Detached mounts ms (a single mount) where no mount namespace sees it and
// returns a descriptor on its root, for openat-style access (or, as a path,
// /proc/self/fd/N). Closing the descriptor unmounts it.
func Detached(ms []Mount) (int, error) {
	if len(ms) != 1 || ms[0].Target != "" {
		return -1, fmt.Errorf("detached mount: want one mount at the root, have %d", len(ms))
	}
	m := ms[0]
	fl, _ := m.split()
	if fl&unix.MS_BIND == 0 {
		return m.fsmount()
	}
	tflags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if fl&unix.MS_REC != 0 {
		tflags |= unix.AT_RECURSIVE
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, m.Source, tflags)
	if err != nil {
		return -1, fmt.Errorf("clone mount of %s: %w", m.Source, err)
	}
	if attr := mountAttr(fl); attr != 0 {
		set := unix.MountAttr{Attr_set: attr}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|(tflags&unix.AT_RECURSIVE), &set); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("set attributes of the clone of %s: %w", m.Source, err)
		}
	}
	return fd, nil
}

// fsmount creates m with the new mount API and returns the detached mount.
func (m Mount) fsmount() (int, error) {
	fl, data := m.split()
	fsfd, err := unix.Fsopen(m.Type, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen %s: %w", m.Type, err)
	}
	defer unix.Close(fsfd)
	if m.Source != "" {
		if err := unix.FsconfigSetString(fsfd, "source", m.Source); err != nil {
			return -1, fmt.Errorf("%s source %s: %w", m.Type, m.Source, err)
		}
	}
	for _, o := range data {
		k, v, hasValue := strings.Cut(o, "=")
		switch {
		case !hasValue:
			err = unix.FsconfigSetFlag(fsfd, k)
		case len(v) > maxString && strings.Contains(v, ":"):
			// fsconfig takes strings of at most 256 bytes: a long
			// list goes one element at a time, with the key's
			// appending form (overlay's lowerdir+, Linux 6.8).
			for _, e := range strings.Split(v, ":") {
				if err = unix.FsconfigSetString(fsfd, k+"+", e); err != nil {
					break
				}
			}
		default:
			err = unix.FsconfigSetString(fsfd, k, v)
		}
		if err != nil {
			return -1, fmt.Errorf("%s option %.200s: %w", m.Type, o, err)
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("create %s: %w", m.Type, err)
	}
	fd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, int(mountAttr(fl)))
	if err != nil {
		return -1, fmt.Errorf("fsmount %s: %w", m.Type, err)
	}
	return fd, nil
}

// maxString is the longest string fsconfig(2) accepts as a value.
const maxString = 255

// mountAttr maps mount flags to the new API's MOUNT_ATTR_* bits.
func mountAttr(fl uintptr) uint64 {
	var a uint64
	for _, p := range []struct {
		ms   uintptr
		attr uint64
	}{
		{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY},
		{unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID},
		{unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC},
		{unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME},
	} {
		if fl&p.ms != 0 {
			a |= p.attr
		}
	}
	return a
}
