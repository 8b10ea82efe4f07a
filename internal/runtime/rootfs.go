package runtime

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/mount"
)

// setupRootfs runs in init's new mount namespace, before pivot_root: it
// mounts the root file system and the spec's mounts inside it, creates /dev,
// and pivots into it.
func setupRootfs(cfg *initConfig) error {
	prop, err := propagationFlags(cfg.Propagation)
	if err != nil {
		return err
	}
	// Our copy of the host's mount tree must not send events back to the
	// host: every mount below stays in this namespace.
	if err := unix.Mount("", "/", "", prop, ""); err != nil {
		return fmt.Errorf("set propagation of /: %w", err)
	}
	if prop&unix.MS_SHARED != 0 {
		// pivot_root refuses a new root whose parent mount is shared.
		if err := makeParentPrivate(cfg.Rootfs); err != nil {
			return err
		}
	}
	if len(cfg.RootMounts) > 0 {
		var ms []mount.Mount
		if err := json.Unmarshal(cfg.RootMounts, &ms); err != nil {
			return errdefs.Invalid("rootfs mounts: %v", err)
		}
		if err := mount.All(ms, cfg.Rootfs); err != nil {
			return fmt.Errorf("mount rootfs: %w", err)
		}
	} else if err := unix.Mount(cfg.Rootfs, cfg.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mount rootfs %s: %w", cfg.Rootfs, err)
	}
	root, err := unix.Open(cfg.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open rootfs: %w", err)
	}
	defer unix.Close(root)
	for _, m := range cfg.Mounts {
		if err := mountEntry(root, m, cfg); err != nil {
			return err
		}
	}
	if err := createDevices(root, cfg.Devices); err != nil {
		return err
	}
	if cfg.Console {
		if err := bindConsole(root); err != nil {
			return err
		}
	}
	return pivotRoot(cfg.Rootfs)
}

// makeParentPrivate makes the mount holding dir's parent private.
func makeParentPrivate(dir string) error {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer f.Close()
	parent, best := filepath.Dir(dir), "/"
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := fields[4]
		if (parent == mp || strings.HasPrefix(parent, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

func mountEntry(root int, m specs.Mount, cfg *initConfig) error {
	o, err := parseMountOpts(m.Options)
	if err != nil {
		return err
	}
	switch {
	case m.Type == "bind" || o.flags&unix.MS_BIND != 0:
		return bindMount(root, m, o)
	case m.Type == "cgroup" || m.Type == "cgroup2":
		return mountCgroup(root, m, o, cfg)
	}
	fd, err := mkdirAllInRoot(root, m.Destination, 0o755)
	if err != nil {
		return fmt.Errorf("mount %s: %w", m.Destination, err)
	}
	err = unix.Mount(m.Source, fdPath(fd), m.Type, o.flags, joinData(o.data))
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("mount %s on %s: %w", m.Type, m.Destination, err)
	}
	return setPropagation(root, m.Destination, o)
}

func bindMount(root int, m specs.Mount, o mountOpts) error {
	st, err := os.Stat(m.Source)
	if err != nil {
		return errdefs.Invalid("bind mount %s: %v", m.Destination, err)
	}
	var fd int
	if st.IsDir() {
		fd, err = mkdirAllInRoot(root, m.Destination, 0o755)
	} else {
		fd, err = createFileInRoot(root, m.Destination, 0o644)
	}
	if err != nil {
		return fmt.Errorf("bind mount %s: %w", m.Destination, err)
	}
	err = unix.Mount(m.Source, fdPath(fd), "", unix.MS_BIND|(o.flags&unix.MS_REC), "")
	unix.Close(fd)
	if err != nil {
		return fmt.Errorf("bind mount %s on %s: %w", m.Source, m.Destination, err)
	}
	// A bind mount ignores every flag but MS_BIND|MS_REC; the others need a
	// remount, which must also keep the flags the source mount already had.
	if extra := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT); extra != 0 || o.recursiveRO {
		fd, err := openInRoot(root, m.Destination, unix.O_PATH)
		if err != nil {
			return fmt.Errorf("reopen %s: %w", m.Destination, err)
		}
		defer unix.Close(fd)
		if err := remountBind(fd, extra); err != nil {
			return fmt.Errorf("remount %s: %w", m.Destination, err)
		}
		if o.recursiveRO {
			attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
			if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
				return fmt.Errorf("make %s recursively read-only: %w", m.Destination, err)
			}
		}
	}
	return setPropagation(root, m.Destination, o)
}

// remountBind changes the per-mount flags of the mount at fd, keeping the
// ones it has.
func remountBind(fd int, flags uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(fd, &sfs); err != nil {
		return err
	}
	keep := statfsToMountFlags(uint64(sfs.Flags))
	return unix.Mount("", fdPath(fd), "", unix.MS_BIND|unix.MS_REMOUNT|keep|flags, "")
}

func setPropagation(root int, dest string, o mountOpts) error {
	if o.propagation == 0 {
		return nil
	}
	fd, err := openInRoot(root, dest, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("reopen %s: %w", dest, err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("", fdPath(fd), "", o.propagation, ""); err != nil {
		return fmt.Errorf("set propagation of %s: %w", dest, err)
	}
	return nil
}

// defaultDevices are the nodes every container gets, as with runc.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

var devLinks = [][2]string{
	{"/proc/self/fd", "fd"},
	{"/proc/self/fd/0", "stdin"},
	{"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"},
	{"pts/ptmx", "ptmx"},
	{"/proc/kcore", "core"},
}

func createDevices(root int, extra []specs.LinuxDevice) error {
	devs := make([]specs.LinuxDevice, 0, len(defaultDevices)+len(extra))
	for _, d := range defaultDevices {
		overridden := false
		for _, e := range extra {
			overridden = overridden || filepath.Clean(e.Path) == d.Path
		}
		if !overridden {
			devs = append(devs, d)
		}
	}
	devs = append(devs, extra...)
	for _, d := range devs {
		if filepath.Clean(d.Path) == "/dev/ptmx" {
			// The host's ptmx would open the host's devpts: the container
			// gets the link to its own (devLinks), as runc does.
			continue
		}
		if err := createDevice(root, d); err != nil {
			return fmt.Errorf("create device %s: %w", d.Path, err)
		}
	}
	dev, err := mkdirAllInRoot(root, "/dev", 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(dev)
	for _, l := range devLinks {
		if err := unix.Symlinkat(l[0], dev, l[1]); err != nil && err != unix.EEXIST {
			return fmt.Errorf("symlink /dev/%s: %w", l[1], err)
		}
	}
	return nil
}

func createDevice(root int, d specs.LinuxDevice) error {
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return errdefs.Invalid("unknown device type %q", d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(d.FileMode.Perm())
	}
	dir, base := filepath.Split(filepath.Clean("/" + d.Path))
	pfd, err := mkdirAllInRoot(root, dir, 0o755)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	err = unix.Mknodat(pfd, base, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	switch {
	case err == unix.EEXIST:
		return nil // the image (or an earlier mount) provides it
	case err == unix.EPERM:
		// No CAP_MKNOD (or a nodev mount): show the host's node at the same
		// path instead, if it is this very device (the spec does not say
		// where a node mapped elsewhere came from).
		var st unix.Stat_t
		if serr := unix.Stat(d.Path, &st); serr != nil || st.Mode&unix.S_IFMT != typ || st.Rdev != unix.Mkdev(uint32(d.Major), uint32(d.Minor)) {
			return err
		}
		fd, err := createFileInRoot(root, d.Path, 0o644)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		if err := unix.Mount(d.Path, fdPath(fd), "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind host device: %w", err)
		}
		return nil
	case err != nil:
		return err
	}
	if d.UID != nil || d.GID != nil {
		uid, gid := -1, -1
		if d.UID != nil {
			uid = int(*d.UID)
		}
		if d.GID != nil {
			gid = int(*d.GID)
		}
		if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return err
		}
	}
	return nil
}

// bindConsole shows the terminal init got on stdin as /dev/console.
func bindConsole(root int) error {
	fd, err := createFileInRoot(root, "/dev/console", 0o600)
	if err != nil {
		return fmt.Errorf("create /dev/console: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Mount("/proc/self/fd/0", fdPath(fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind /dev/console: %w", err)
	}
	return nil
}

// pivotRoot makes rootfs the root with pivot_root(".", "."): the old root
// ends up stacked on the new one and is detached, so no directory for it is
// needed inside the image.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(oldroot)
	if err := unix.Chdir(rootfs); err != nil {
		return fmt.Errorf("chdir to rootfs: %w", err)
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// "." must be the old root, not the new one under it: the kernel
	// promises nothing about the cwd after pivot_root, and making the new
	// root's mounts slaves would cut rshared bind mounts off the host.
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to the old root: %w", err)
	}
	// Make sure the unmount of the old root cannot propagate anywhere.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root slave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detach old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// finishRootfs runs after pivot_root: sysctls (while /proc/sys is writable),
// masked and read-only paths, then the read-only root.
func finishRootfs(cfg *initConfig) error {
	keys := make([]string, 0, len(cfg.Sysctl))
	for k := range cfg.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p, err := sysctlPath(NormalizeSysctl(k))
		if err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC|unix.O_NOFOLLOW, 0)
		if err == nil {
			_, err = f.WriteString(cfg.Sysctl[k])
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			return errdefs.Invalid("sysctl %s=%s: %v", k, cfg.Sysctl[k], err)
		}
	}
	for _, p := range cfg.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	for _, p := range cfg.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	if cfg.ReadonlyRoot {
		if err := remountPath("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("make rootfs read-only: %w", err)
		}
	}
	return nil
}

// maskPath hides p: a directory under an empty read-only tmpfs, a file
// under /dev/null.
func maskPath(p string) error {
	st, err := os.Stat(p)
	if isNotExist(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	if st.IsDir() {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "")
	} else {
		err = unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	}
	if err != nil {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("bind %s: %w", p, err)
	}
	if err := remountPath(p, unix.MS_RDONLY); err != nil {
		return fmt.Errorf("make %s read-only: %w", p, err)
	}
	return nil
}

func remountPath(p string, flags uintptr) error {
	var sfs unix.Statfs_t
	if err := unix.Statfs(p, &sfs); err != nil {
		return err
	}
	return unix.Mount("", p, "", unix.MS_BIND|unix.MS_REMOUNT|statfsToMountFlags(uint64(sfs.Flags))|flags, "")
}
