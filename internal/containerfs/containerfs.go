// Package containerfs gives the engine safe access to a container's files
// without ever mounting anything on the host.
//
// A running container's root is reached through /proc/PID/root: the
// descriptor belongs to the container's mount namespace, so lookups from it
// see the container's own mounts (volumes, binds, tmpfs). A stopped
// container's root is its snapshot's mounts, mounted with mount.Detached
// (fsmount or open_tree: a mount in no namespace's tree), which goes away
// when the descriptor is closed.
//
// Every path is resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS)
// from the root descriptor, so ".." and symlinks (even ones swapped while a
// copy runs) resolve as if the root were "/", and never reach host files.
package containerfs

import (
	"fmt"
	"os"
	"path"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenPidRoot opens the root directory of process pid (in its own mount
// namespace) as an O_PATH descriptor.
func OpenPidRoot(pid int) (int, error) {
	fd, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open root of pid %d: %w", pid, err)
	}
	return fd, nil
}

// OpenDir opens a host directory as a root descriptor.
func OpenDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("open %s: %w", dir, err)
	}
	return fd, nil
}

// OpenInRoot opens p relative to root as if root were "/".
func OpenInRoot(root int, p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimLeft(path.Clean("/"+p), "/")
	if rel == "" {
		rel = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, rel, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 16 {
			continue
		}
		return fd, err
	}
}

// Split resolves the directory holding p inside root and returns an O_PATH
// descriptor on it and p's last component (not followed). For "/" it is the
// root's parent-less case: the root itself and ".".
func Split(root int, p string) (dirfd int, base string, err error) {
	p = path.Clean("/" + p)
	if p == "/" {
		fd, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
		return fd, ".", err
	}
	dir, base := path.Split(p)
	fd, err := OpenInRoot(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	return fd, base, err
}

// Resolve returns p with every symlink resolved inside root, as an absolute
// path in the container (what docker cp reports as a link's target). A
// missing component ends the resolution: the rest is appended as is.
func Resolve(root int, p string) (string, error) {
	comps := splitPath(p)
	out := "/"
	for links := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		next := path.Join(out, c)
		fd, err := OpenInRoot(root, next, unix.O_PATH|unix.O_NOFOLLOW)
		if err == unix.ENOENT {
			return path.Join(append([]string{next}, comps...)...), nil
		}
		if err != nil {
			return "", err
		}
		var st unix.Stat_t
		err = unix.Fstat(fd, &st)
		var target string
		if err == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			target, err = readlinkFd(fd)
		}
		unix.Close(fd)
		if err != nil {
			return "", err
		}
		if target == "" {
			out = next
			continue
		}
		if links++; links > 40 {
			return "", unix.ELOOP
		}
		if path.IsAbs(target) {
			out = "/"
		}
		comps = append(splitPath(target), comps...)
	}
	return out, nil
}

func readlinkFd(fd int) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(fd, "", buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// FdPath names an open descriptor for APIs that take paths.
func FdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// Stat is what docker cp needs to know about a path.
type Stat struct {
	Name       string
	Size       int64
	Mode       os.FileMode
	Mtime      int64 // unix nanoseconds
	LinkTarget string
}

// Lstat describes p inside root without following its last component; a
// symlink's LinkTarget is its fully resolved path inside root.
func Lstat(root int, p string) (*Stat, error) {
	dfd, base, err := Split(root, p)
	if err != nil {
		return nil, err
	}
	defer unix.Close(dfd)
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, err
	}
	s := &Stat{Name: path.Base(path.Clean("/" + p)), Size: st.Size, Mode: fileMode(st.Mode), Mtime: st.Mtim.Nano()}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		if s.LinkTarget, err = Resolve(root, p); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// fileMode converts st_mode to Go's os.FileMode bits (what Docker sends).
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFBLK:
		mode |= os.ModeDevice
	case unix.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case unix.S_IFDIR:
		mode |= os.ModeDir
	case unix.S_IFIFO:
		mode |= os.ModeNamedPipe
	case unix.S_IFLNK:
		mode |= os.ModeSymlink
	case unix.S_IFSOCK:
		mode |= os.ModeSocket
	}
	if m&unix.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&unix.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}
