package buildcontext

import (
	"encoding/binary"
	"io"
	"path"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
)

// Every lookup from a root descriptor resolves ".." and symlinks as if the
// root were "/" (openat2 RESOLVE_IN_ROOT), so neither a context nor an
// image's root filesystem can lead a read outside itself.
const resolveInRoot = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

// openRoot opens dir as the O_PATH descriptor every lookup starts from.
func openRoot(dir string) (int, error) {
	return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openInRoot opens rel (slash-separated, relative; "" or "." is the root
// itself) inside root.
func openInRoot(root int, rel string, flags int) (int, error) {
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC), Resolve: resolveInRoot}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(root, rel, &how)
		// EAGAIN: a rename raced with the lookup; the kernel asks for a retry.
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 32 {
			continue
		}
		return fd, err
	}
}

// lstatInRoot describes rel inside root without following its last
// component.
func lstatInRoot(root int, rel string, st *unix.Stat_t) error {
	dir, base := splitRel(rel)
	if base == "" {
		return unix.Fstat(root, st)
	}
	dfd, err := openInRoot(root, dir, unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	return unix.Fstatat(dfd, base, st, unix.AT_SYMLINK_NOFOLLOW)
}

// splitRel splits a cleaned relative path into its directory ("" at the
// top) and last component ("" for the root).
func splitRel(rel string) (dir, base string) {
	if rel == "" || rel == "." {
		return "", ""
	}
	i := strings.LastIndexByte(rel, '/')
	if i < 0 {
		return "", rel
	}
	return rel[:i], rel[i+1:]
}

// joinRel joins a relative directory ("" at the top) and a name.
func joinRel(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	if name == "" {
		return dir
	}
	return dir + "/" + name
}

// cleanRel cleans p as a path below a root: the result has no leading "/"
// and is "" for the root. ".." cannot climb above the root.
func cleanRel(p string) string {
	c := path.Clean("/" + p)
	return c[1:]
}

// resolved is the outcome of resolving a path inside a root.
type resolved struct {
	real    string   // the path with every symlink resolved, relative ("" = root)
	links   []string // the symlinks the resolution went through (real paths)
	missing bool     // a component did not exist; real ends with the unresolved rest
}

// resolve resolves every symlink of rel inside root (the last component
// only with followLast), as the kernel would with root as "/". A missing
// component ends the resolution: with allowMissing the rest is appended as
// it is, else the result is ENOENT.
func resolve(root int, rel string, followLast, allowMissing bool) (resolved, error) {
	var r resolved
	comps := splitComps(rel, nil)
	out := ""
	for hops := 0; len(comps) > 0; {
		c := comps[0]
		comps = comps[1:]
		if c == ".." {
			out, _ = splitRel(out)
			continue
		}
		next := joinRel(out, c)
		var st unix.Stat_t
		err := lstatInRoot(root, next, &st)
		if err == unix.ENOENT && allowMissing {
			r.real = cleanRel(path.Join(append([]string{next}, comps...)...))
			r.missing = true
			return r, nil
		}
		if err != nil {
			return r, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK || (len(comps) == 0 && !followLast) {
			out = next
			continue
		}
		if hops++; hops > 40 {
			return r, unix.ELOOP
		}
		dfd, err := openInRoot(root, out, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			return r, err
		}
		target, err := archive.Readlinkat(dfd, c)
		unix.Close(dfd)
		if err != nil {
			return r, err
		}
		r.links = append(r.links, next)
		if strings.HasPrefix(target, "/") {
			out = ""
		}
		comps = splitComps(target, comps)
	}
	r.real = out
	return r, nil
}

// splitComps returns the components of p (without "" and ".") followed by
// rest.
func splitComps(p string, rest []string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return append(out, rest...)
}

// dirent is one name of a directory and its type from getdents (DT_*;
// DT_UNKNOWN when the filesystem does not say).
type dirent struct {
	name string
	typ  uint8
}

// readDir lists the directory fd (opened O_RDONLY|O_DIRECTORY), sorted by
// name, without "." and "..". Types come from getdents, so entries the
// caller skips cost no stat.
func readDir(fd int, buf []byte) ([]dirent, error) {
	var out []dirent
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			break
		}
		for off := 0; off < n; {
			// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
			reclen := int(binary.NativeEndian.Uint16(buf[off+16:]))
			typ := buf[off+18]
			nameb := buf[off+19 : off+reclen]
			if i := slices.Index(nameb, 0); i >= 0 {
				nameb = nameb[:i]
			}
			off += reclen
			if len(nameb) == 1 && nameb[0] == '.' || len(nameb) == 2 && nameb[0] == '.' && nameb[1] == '.' {
				continue
			}
			out = append(out, dirent{name: string(nameb), typ: typ})
		}
	}
	slices.SortFunc(out, func(a, b dirent) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// readFull reads exactly len(b) bytes from fd; a file that ends sooner is
// io.ErrUnexpectedEOF.
func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Read(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		b = b[n:]
	}
	return nil
}

// modeBits keeps the permission, setuid, setgid and sticky bits of st_mode
// (tar's mode field has the same octal layout).
func modeBits(m uint32) int64 { return int64(m & 0o7777) }
