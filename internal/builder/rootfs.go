package builder

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// maxSymlinks bounds symlink resolution like the kernel's ELOOP limit.
const maxSymlinks = 255

// resolveInRoot returns the host path of p (absolute in the image) under
// root, following symlinks as if root were "/": an absolute link target
// starts again at root and ".." never climbs above it. So an image's
// "/etc/passwd -> /usr/etc/passwd" resolves inside the image, never on the
// host. The last component is followed too; a missing component ends the
// walk and the rest is appended as it is.
func resolveInRoot(root, p string) (string, error) {
	todo := strings.Split(strings.TrimPrefix(path.Clean("/"+p), "/"), "/")
	cur := "/"
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		switch name {
		case "", ".":
			continue
		case "..":
			cur = path.Dir(cur)
			continue
		}
		next := path.Join(cur, name)
		host := filepath.Join(root, next)
		fi, err := os.Lstat(host)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrInvalid) || errors.Is(err, os.ErrPermission) {
			return filepath.Join(root, next, filepath.Join(todo...)), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(host)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			cur = "/"
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	return filepath.Join(root, cur), nil
}

// isDirInRoot reports whether p is a directory in the image at root.
func isDirInRoot(root, p string) bool {
	host, err := resolveInRoot(root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.IsDir()
}

// lookupID resolves a user or group name to its id through the image's
// passwd or group file (a number is taken as it is, like Docker).
func lookupID(root, file, name, what string) (int, error) {
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 {
			return 0, fmt.Errorf("invalid %s id %d", what, n)
		}
		return n, nil
	}
	host, err := resolveInRoot(root, file)
	if err != nil {
		return 0, fmt.Errorf("can't resolve %s in the image: %w", file, err)
	}
	f, err := os.Open(host)
	if err != nil {
		// Name the file as the image has it, not its host path.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return 0, fmt.Errorf("open %s: %w", file, pe.Err)
		}
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// name:password:id:... for both files.
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			id, err := strconv.Atoi(fields[2])
			if err != nil {
				return 0, fmt.Errorf("bad %s entry for %s in %s", what, name, file)
			}
			return id, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", file, err)
	}
	return 0, fmt.Errorf("no such %s: %s", what, name)
}

// parseChown resolves --chown=user[:group], names through the passwd and
// group files of the image at root. Without a group, Docker takes the user
// string as the group too.
func parseChown(root, spec string) (uid, gid int, err error) {
	userStr, groupStr, hasGroup := strings.Cut(spec, ":")
	if strings.Contains(groupStr, ":") || userStr == "" || (hasGroup && groupStr == "") {
		return 0, 0, errdefs.Invalid("invalid chown string format: %s", spec)
	}
	if !hasGroup {
		groupStr = userStr
	}
	// Docker's messages: "...host mapping: can't find uid for user x: no
	// such user: x".
	if uid, err = lookupID(root, "/etc/passwd", userStr, "user"); err != nil {
		return 0, 0, errdefs.Invalid("unable to convert uid/gid chown string to host mapping: can't find uid for user %s: %v", userStr, err)
	}
	if gid, err = lookupID(root, "/etc/group", groupStr, "group"); err != nil {
		return 0, 0, errdefs.Invalid("unable to convert uid/gid chown string to host mapping: can't find gid for group %s: %v", groupStr, err)
	}
	return uid, gid, nil
}
