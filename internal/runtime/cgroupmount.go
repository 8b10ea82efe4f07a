package runtime

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// mountCgroup shows the container its own cgroup at m.Destination
// (/sys/fs/cgroup), as runc does for Docker.
//
// On cgroup v2 that is a cgroup2 mount, which the cgroup namespace roots at
// the container's cgroup, or, without a namespace of its own, a bind of the
// container's directory.
//
// On v1 (and hybrid) hosts it is a tmpfs holding, for every hierarchy, a bind
// of the container's directory in it, named as on the host: the controllers
// (with cpu and cpuacct links to a combined "cpu,cpuacct"), name=systemd as
// "systemd", and the hybrid cgroup2 as "unified". systemd as PID 1 needs the
// last two. A bind of the container's own directory never shows a
// hierarchy's root, so its release_agent stays out of reach.
//
// A read-only mount (Docker's default for containers that are not
// privileged) keeps the tmpfs and the controller hierarchies read-only, so
// the container cannot raise its own limits; the container's directories in
// the hierarchies without controllers (cfg.CgroupRW) stay writable, because
// systemd must make its units' cgroups there and they limit nothing. Under
// Docker an unprivileged systemd stops at "Failed to create /init.scope
// control group: Read-only file system".
func mountCgroup(root int, m specs.Mount, o mountOpts, cfg *initConfig) error {
	if len(cfg.CgroupDirs) == 0 {
		return nil // no cgroup: nothing to show
	}
	flags := o.flags &^ (unix.MS_BIND | unix.MS_REC | unix.MS_REMOUNT)
	fd, err := mkdirAllInRoot(root, m.Destination, 0o755)
	if err != nil {
		return fmt.Errorf("mount cgroup: %w", err)
	}
	defer unix.Close(fd)
	if cfg.CgroupUnified {
		if cfg.NewCgroupNS {
			if err := unix.Mount("cgroup2", fdPath(fd), "cgroup2", flags, ""); err != nil {
				return fmt.Errorf("mount cgroup2 on %s: %w", m.Destination, err)
			}
			return nil
		}
		return bindCgroupDir(root, cfg.CgroupDirs[""], m.Destination, fd, flags)
	}
	if err := unix.Mount("tmpfs", fdPath(fd), "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return fmt.Errorf("mount tmpfs on %s: %w", m.Destination, err)
	}
	tfd, err := openInRoot(root, m.Destination, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(tfd)
	names := make([]string, 0, len(cfg.CgroupDirs))
	for n := range cfg.CgroupDirs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sub := filepath.Join(m.Destination, n)
		sfd, err := mkdirAllInRoot(root, sub, 0o755)
		if err != nil {
			return fmt.Errorf("mount cgroup: %w", err)
		}
		subFlags := flags
		if slices.Contains(cfg.CgroupRW, n) {
			subFlags &^= unix.MS_RDONLY
		}
		err = bindCgroupDir(root, cfg.CgroupDirs[n], sub, sfd, subFlags)
		unix.Close(sfd)
		if err != nil {
			return err
		}
		// "cpu,cpuacct" is also reachable as cpu and cpuacct.
		if strings.Contains(n, ",") {
			for _, c := range strings.Split(n, ",") {
				if err := unix.Symlinkat(n, tfd, c); err != nil && err != unix.EEXIST {
					return fmt.Errorf("symlink cgroup %s: %w", c, err)
				}
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		if err := remountBind(tfd, flags); err != nil {
			return fmt.Errorf("remount %s read-only: %w", m.Destination, err)
		}
	}
	return nil
}

// bindCgroupDir binds host directory src on the directory fd (dest inside
// root) and applies flags (nosuid, read-only, ...).
func bindCgroupDir(root int, src, dest string, fd int, flags uintptr) error {
	if err := unix.Mount(src, fdPath(fd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", src, dest, err)
	}
	if flags == 0 {
		return nil
	}
	nfd, err := openInRoot(root, dest, unix.O_PATH)
	if err != nil {
		return err
	}
	defer unix.Close(nfd)
	if err := remountBind(nfd, flags); err != nil {
		return fmt.Errorf("remount %s: %w", dest, err)
	}
	return nil
}
