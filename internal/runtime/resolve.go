package runtime

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Paths inside the container's root file system are resolved with openat2's
// RESOLVE_IN_ROOT, so a symlink in an image ("/etc/resolv.conf -> /host")
// resolves as if the rootfs were "/" and never reaches the host. Mounts are
// then made on /proc/self/fd/N of the resolved O_PATH descriptor, so nothing
// can swap the path between the check and the mount.

// openInRoot opens path relative to the directory fd root as if root were "/".
func openInRoot(root int, path string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	rel := strings.TrimLeft(path, "/")
	if rel == "" {
		rel = "."
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, rel, &how)
		// EAGAIN: a concurrent rename made the kernel give up; try again.
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 16 {
			continue
		}
		return fd, err
	}
}

// mkdirAllInRoot makes directory path (and its parents) inside root and
// returns an O_PATH descriptor on it. A symlink on the way whose target does
// not exist yet ("/var/run -> /run" in a fresh image) is followed, inside
// root, and its target created.
func mkdirAllInRoot(root int, path string, mode uint32) (int, error) {
	fd, err := openInRoot(root, path, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil || err != unix.ENOENT {
		return fd, err
	}
	comps := splitPath(path)
	links := 0
	parent, err := unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	for i := 0; i < len(comps); i++ {
		sub := "/" + strings.Join(comps[:i+1], "/")
		fd, err := openInRoot(root, sub, unix.O_PATH|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			// parent is the resolved previous component, so mkdirat cannot
			// be redirected by a symlink in the path.
			err = unix.Mkdirat(parent, comps[i], mode)
			if err == unix.EEXIST {
				// A dangling symlink: continue the walk from its target.
				target, rerr := readlinkat(parent, comps[i])
				if rerr != nil {
					unix.Close(parent)
					return -1, fmt.Errorf("mkdir %s: %w", sub, err)
				}
				if links++; links > 40 {
					unix.Close(parent)
					return -1, fmt.Errorf("mkdir %s: %w", path, unix.ELOOP)
				}
				if !filepath.IsAbs(target) {
					target = filepath.Join("/", strings.Join(comps[:i], "/"), target)
				}
				comps = append(splitPath(target), comps[i+1:]...)
				unix.Close(parent)
				if parent, err = unix.FcntlInt(uintptr(root), unix.F_DUPFD_CLOEXEC, 0); err != nil {
					return -1, err
				}
				i = -1
				continue
			}
			if err != nil {
				unix.Close(parent)
				return -1, fmt.Errorf("mkdir %s: %w", sub, err)
			}
			fd, err = openInRoot(root, sub, unix.O_PATH|unix.O_DIRECTORY)
		}
		unix.Close(parent)
		if err != nil {
			return -1, fmt.Errorf("open %s: %w", sub, err)
		}
		parent = fd
	}
	return parent, nil
}

func readlinkat(dirfd int, name string) (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(dirfd, name, buf)
	if err != nil {
		return "", err
	}
	return string(buf[:n]), nil
}

// createFileInRoot makes sure a file exists at path inside root (creating
// its parent directories) and returns an O_PATH descriptor on it. A dangling
// symlink at path (Ubuntu's /etc/resolv.conf -> ../run/systemd/...) is
// followed inside root and its target created, as Docker does.
func createFileInRoot(root int, path string, mode uint32) (int, error) {
	for links := 0; ; links++ {
		fd, err := openInRoot(root, path, unix.O_PATH)
		if err == nil || err != unix.ENOENT {
			return fd, err
		}
		dir, base := filepath.Split(filepath.Clean("/" + path))
		pfd, err := mkdirAllInRoot(root, dir, 0o755)
		if err != nil {
			return -1, err
		}
		nfd, err := unix.Openat(pfd, base, unix.O_CREAT|unix.O_EXCL|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, mode)
		if err == nil {
			unix.Close(nfd)
			unix.Close(pfd)
			return openInRoot(root, path, unix.O_PATH)
		}
		target, lerr := readlinkat(pfd, base)
		unix.Close(pfd)
		if err != unix.EEXIST || lerr != nil {
			return -1, fmt.Errorf("create %s: %w", path, err)
		}
		if links >= 40 {
			return -1, fmt.Errorf("create %s: %w", path, unix.ELOOP)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(dir, target)
		}
		path = target
	}
}

func splitPath(p string) []string {
	var out []string
	for _, c := range strings.Split(filepath.Clean("/"+p), "/") {
		if c != "" {
			out = append(out, c)
		}
	}
	return out
}

// fdPath names an open descriptor for syscalls that take paths (mount).
func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

func isNotExist(err error) bool { return errors.Is(err, unix.ENOENT) }
