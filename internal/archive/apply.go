// Package archive turns layer tars into directories and back: Apply unpacks
// an OCI/Docker layer into an overlay layer directory (whiteouts become
// overlay whiteouts), Diff turns an overlay upper directory into a layer tar,
// Tar exports a directory tree.
//
// Apply trusts nothing in the archive. Every entry is created relative to a
// directory file descriptor that was resolved with openat2(RESOLVE_IN_ROOT),
// so ".." and symlinks (absolute or relative, already on disk or created by
// the archive itself) resolve as if the target directory were "/", and the
// final component is never followed (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL).
// Absolute names are taken relative to the root; a name whose ".."
// components climb above the root is refused.
package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Whiteout file names of the OCI image layer format.
const (
	WhiteoutPrefix     = ".wh."
	WhiteoutMetaPrefix = ".wh..wh."
	WhiteoutOpaqueDir  = ".wh..wh..opq"
)

// overlay's xattrs. Archives may not set any trusted.overlay.* xattr: they
// steer the overlay filesystem (opaque, redirect, metacopy, origin).
const (
	overlayXattrPrefix = "trusted.overlay."
	overlayOpaque      = "trusted.overlay.opaque"
	overlayWhiteout    = "trusted.overlay.whiteout"
	paxXattrPrefix     = "SCHILY.xattr."
)

// WhiteoutMode says what Apply does with whiteout entries.
type WhiteoutMode int

const (
	// WhiteoutOverlay turns .wh.NAME into an overlay whiteout (a 0/0 char
	// device NAME) and .wh..wh..opq into trusted.overlay.opaque=y on its
	// directory: for applying a layer into its own overlay layer dir.
	WhiteoutOverlay WhiteoutMode = iota
	// WhiteoutDelete removes NAME (and, for an opaque marker, whatever the
	// directory held before this archive): for applying onto a flat tree.
	WhiteoutDelete
	// WhiteoutLiteral keeps .wh. entries as ordinary files.
	WhiteoutLiteral
)

type applyOptions struct {
	whiteouts WhiteoutMode
	tee       io.Writer
	owner     *[2]int // WithOwner: uid, gid for every entry
}

// ApplyOpt changes how Apply works.
type ApplyOpt func(*applyOptions)

// WithWhiteouts selects the whiteout handling (default WhiteoutOverlay).
func WithWhiteouts(m WhiteoutMode) ApplyOpt {
	return func(o *applyOptions) { o.whiteouts = m }
}

// WithUncompressedTee sends every byte of the uncompressed archive to w as
// Apply reads it (a hash, for a layer's diff id).
func WithUncompressedTee(w io.Writer) ApplyOpt {
	return func(o *applyOptions) { o.tee = w }
}

// copyBufSize is the buffer for file contents: big buffers mean few
// syscalls for big files.
const copyBufSize = 1 << 20

var bufPool = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// Apply unpacks the layer tar r (plain, gzip, zstd or bzip2: detected) into
// root, and returns the sum of the sizes of the regular files it wrote (what
// Docker reports as a layer's size). It reads r to its end, so a caller
// hashing r sees every byte. Entries are not fsynced: the caller decides
// when the layer must be durable.
func Apply(ctx context.Context, root string, r io.Reader, opts ...ApplyOpt) (int64, error) {
	o := applyOptions{}
	for _, opt := range opts {
		opt(&o)
	}
	rc, _, err := DecompressStream(r)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	// Read (decompress, and whatever the caller does with the raw stream,
	// like hashing and storing it) on another core while this one writes
	// files. Worth it even for a plain tar.
	var src io.Reader
	if _, external := rc.(*procReader); external && o.tee != nil {
		// Inflating happens in another process: the read side has time
		// to hash what comes out while this side writes files.
		ra := newReadahead(io.TeeReader(rc, o.tee))
		defer ra.Close()
		src = ra
	} else {
		ra := newReadahead(rc)
		defer ra.Close()
		src = ra
		if o.tee != nil {
			// Inflating here is the slower side: hash the output on
			// this one.
			src = io.TeeReader(src, o.tee)
		}
	}

	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", root, err)
	}
	a := &applier{ctx: ctx, rootfd: rootfd, opts: o, euid: os.Geteuid(), egid: os.Getegid(), umask: processUmask()}
	bp := bufPool.Get().(*[]byte)
	a.buf = *bp
	defer func() {
		bufPool.Put(bp)
		a.closeCache()
		unix.Close(rootfd)
	}()
	if o.whiteouts == WhiteoutDelete {
		a.created = map[string]bool{}
	}
	var st unix.Stat_t
	if err := unix.Fstat(rootfd, &st); err != nil {
		return 0, fmt.Errorf("stat %s: %w", root, err)
	}
	a.rootSetgid = st.Mode&unix.S_ISGID != 0

	tr := tar.NewReader(src)
	for {
		if err := ctx.Err(); err != nil {
			return a.size, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.size, errdefs.Invalid("read layer archive: %v", err)
		}
		if a.dirty {
			a.closeCache()
			a.dirty = false
		}
		if o.owner != nil {
			hdr.Uid, hdr.Gid = o.owner[0], o.owner[1]
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.size, err
		}
	}
	if err := a.setDirTimes(); err != nil {
		return a.size, err
	}
	// Read what follows the end-of-archive marker (padding, the rest of a
	// compressed stream and its checksum).
	if _, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{src}, a.buf); err != nil {
		return a.size, fmt.Errorf("read layer archive: %w", err)
	}
	return a.size, nil
}

var (
	umaskOnce sync.Once
	umaskVal  uint32
)

// processUmask reads the umask without changing it (umask(2) can only set
// it, racing with every other goroutine that creates files).
func processUmask() uint32 {
	umaskOnce.Do(func() {
		umaskVal = 0o777 // unknown: always chmod
		b, err := os.ReadFile("/proc/self/status")
		if err != nil {
			return
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Umask:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
					umaskVal = uint32(n)
				}
			}
		}
	})
	return umaskVal
}

const dirCacheSize = 8

type cachedDir struct {
	path   string
	fd     int
	setgid bool
	used   uint64
}

type dirTime struct {
	dir, name string
	ts        [2]unix.Timespec
}

type applier struct {
	ctx        context.Context
	rootfd     int
	rootSetgid bool
	opts       applyOptions
	buf        []byte
	euid, egid int
	umask      uint32
	size       int64

	// A few open directories, most recently used first to go: archives
	// list a directory's entries together, so most lookups hit.
	cache [dirCacheSize]cachedDir
	tick  uint64
	// dirty is set when something was removed: cached directories may no
	// longer be what their path names. The cache is dropped before the
	// next entry (not at once: the current entry still uses its parent).
	dirty bool

	dirTimes []dirTime
	created  map[string]bool // WhiteoutDelete: paths this archive made
}

func (a *applier) closeCache() {
	for i := range a.cache {
		if a.cache[i].used != 0 {
			unix.Close(a.cache[i].fd)
			a.cache[i] = cachedDir{}
		}
	}
}

// CleanName turns an archive path into a path relative to the root ("" for
// the root itself). Absolute paths are taken relative to the root; ".."
// components that would climb above it are an error (Invalid).
func CleanName(name string) (string, error) {
	if name == "" {
		return "", errdefs.Invalid("archive entry with an empty name")
	}
	if strings.IndexByte(name, 0) >= 0 {
		return "", errdefs.Invalid("archive entry %q: name contains a NUL byte", name)
	}
	if strings.HasPrefix(name, "/") {
		// Rooted: ".." cannot climb above "/", so it cannot leave the root.
		return strings.TrimPrefix(path.Clean(name), "/"), nil
	}
	c := path.Clean(name)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", errdefs.Invalid("archive entry %q: path escapes the target directory", name)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}

func splitName(p string) (dir, base string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

const resolveFlags = unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS

func (a *applier) openat2(p string, flags uint64) (int, error) {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: resolveFlags}
	for {
		fd, err := unix.Openat2(a.rootfd, p, &how)
		// EAGAIN: a rename raced with the lookup; the kernel asks for a retry.
		if err == unix.EAGAIN || err == unix.EINTR {
			continue
		}
		return fd, err
	}
}

// openDir returns an fd for the directory p (relative to the root, resolved
// inside it), creating missing directories when create is set. The fd
// belongs to the cache: callers do not close it.
func (a *applier) openDir(p string, create bool) (int, bool, error) {
	if p == "" {
		return a.rootfd, a.rootSetgid, nil
	}
	a.tick++
	victim := 0
	for i := range a.cache {
		c := &a.cache[i]
		if c.used != 0 && c.path == p {
			c.used = a.tick
			return c.fd, c.setgid, nil
		}
		if c.used < a.cache[victim].used {
			victim = i
		}
	}
	fd, err := a.openat2(p, unix.O_RDONLY|unix.O_DIRECTORY)
	if err == unix.ENOENT && create {
		if err = a.mkdirAll(p); err == nil {
			fd, err = a.openat2(p, unix.O_RDONLY|unix.O_DIRECTORY)
		}
	}
	if err != nil {
		return -1, false, fmt.Errorf("open directory %q in the layer: %w", p, err)
	}
	return a.remember(victim, p, fd)
}

func (a *applier) remember(victim int, p string, fd int) (int, bool, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, false, fmt.Errorf("stat directory %q in the layer: %w", p, err)
	}
	c := &a.cache[victim]
	if c.used != 0 {
		unix.Close(c.fd)
	}
	*c = cachedDir{path: p, fd: fd, setgid: st.Mode&unix.S_ISGID != 0, used: a.tick}
	return fd, c.setgid, nil
}

// mkdirAll creates the missing directories of p (0755, owned by the caller),
// each inside the already resolved parent.
func (a *applier) mkdirAll(p string) error {
	parent := a.rootfd
	defer func() {
		if parent != a.rootfd {
			unix.Close(parent)
		}
	}()
	for i := 0; i <= len(p); i++ {
		if i < len(p) && p[i] != '/' {
			continue
		}
		sub := p[:i]
		fd, err := a.openat2(sub, unix.O_RDONLY|unix.O_DIRECTORY)
		if err == unix.ENOENT {
			_, base := splitName(sub)
			if err = unix.Mkdirat(parent, base, 0o755); err != nil {
				if err == unix.EEXIST {
					// Only a symlink can exist and resolve to nothing.
					return errdefs.Invalid("create %q: it is a symlink to a directory that does not exist", sub)
				}
				return fmt.Errorf("create %q: %w", sub, err)
			}
			if a.created != nil {
				a.created[sub] = true
			}
			fd, err = a.openat2(sub, unix.O_RDONLY|unix.O_DIRECTORY)
		}
		if err != nil {
			return fmt.Errorf("open %q: %w", sub, err)
		}
		if parent != a.rootfd {
			unix.Close(parent)
		}
		parent = fd
	}
	return nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	name, err := CleanName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return a.rootEntry(hdr)
	}
	dir, base := splitName(name)
	if a.opts.whiteouts != WhiteoutLiteral && strings.HasPrefix(base, WhiteoutPrefix) {
		return a.whiteout(hdr, dir, base)
	}
	pfd, psetgid, err := a.openDir(dir, true)
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	if a.created != nil {
		a.created[name] = true
	}
	for attempt := 0; ; attempt++ {
		err = a.create(pfd, psetgid, dir, base, hdr, r)
		if err != unix.EEXIST || attempt > 0 {
			break
		}
		// Something is in the way. Keep a directory when the entry is a
		// directory too (its metadata is applied again); replace anything
		// else.
		var st unix.Stat_t
		if err = unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			break
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if isDir && hdr.Typeflag == tar.TypeDir {
			err = a.dirMeta(pfd, psetgid, dir, base, hdr)
			break
		}
		if err = a.removeAt(pfd, base, isDir); err != nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	return nil
}

func (a *applier) rootEntry(hdr *tar.Header) error {
	if hdr.Typeflag != tar.TypeDir {
		return errdefs.Invalid("archive entry %q: the root must be a directory", hdr.Name)
	}
	if err := a.meta(a.rootfd, -1, "", a.rootSetgid, hdr, true); err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	a.dirTimes = append(a.dirTimes, dirTime{dir: "", name: ".", ts: times(hdr)})
	return nil
}

func (a *applier) whiteout(hdr *tar.Header, dir, base string) error {
	pfd, _, err := a.openDir(dir, true)
	if err != nil {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	if base == WhiteoutOpaqueDir {
		switch a.opts.whiteouts {
		case WhiteoutOverlay:
			err = unix.Fsetxattr(pfd, overlayOpaque, []byte("y"), 0)
		case WhiteoutDelete:
			err = a.clearDir(pfd, dir)
		}
		if err != nil {
			return fmt.Errorf("archive entry %q: make %q opaque: %w", hdr.Name, dir, err)
		}
		return nil
	}
	if strings.HasPrefix(base, WhiteoutMetaPrefix) {
		return nil // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): meaningless here
	}
	target := base[len(WhiteoutPrefix):]
	if target == "" || target == "." || target == ".." {
		return errdefs.Invalid("archive entry %q: bad whiteout name", hdr.Name)
	}
	err = a.removeAt(pfd, target, false)
	if err != nil && err != unix.ENOENT {
		return fmt.Errorf("archive entry %q: %w", hdr.Name, err)
	}
	if a.opts.whiteouts == WhiteoutOverlay {
		if err := unix.Mknodat(pfd, target, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("archive entry %q: create whiteout: %w", hdr.Name, err)
		}
		if hdr.Uid != a.euid || hdr.Gid != a.egid {
			unix.Fchownat(pfd, target, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	return nil
}

// clearDir removes what the directory held before this archive (opaque
// marker in WhiteoutDelete mode).
func (a *applier) clearDir(dfd int, dir string) error {
	names, err := readNames(dfd)
	if err != nil {
		return err
	}
	for _, n := range names {
		p := n
		if dir != "" {
			p = dir + "/" + n
		}
		if a.created[p] {
			continue
		}
		if err := a.removeAt(dfd, n, false); err != nil && err != unix.ENOENT {
			return err
		}
	}
	return nil
}

func readNames(dfd int) ([]string, error) {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "dir")
	defer f.Close()
	return f.Readdirnames(-1)
}

// removeAt removes name from the directory dfd, recursively if it is a
// directory; it never follows symlinks.
func (a *applier) removeAt(dfd int, name string, isDir bool) error {
	a.dirty = true
	if !isDir {
		err := unix.Unlinkat(dfd, name, 0)
		if err != unix.EISDIR {
			return err
		}
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	f := os.NewFile(uintptr(fd), name)
	names, err := f.Readdirnames(-1)
	if err == nil {
		for _, n := range names {
			if err = a.removeAt(fd, n, false); err != nil && err != unix.ENOENT {
				break
			}
			err = nil
		}
	}
	f.Close()
	if err != nil {
		return err
	}
	return unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR)
}

func times(hdr *tar.Header) [2]unix.Timespec {
	mt := hdr.ModTime
	at := hdr.AccessTime
	if at.IsZero() {
		at = mt
	}
	return [2]unix.Timespec{timespec(at), timespec(mt)}
}

func timespec(t time.Time) unix.Timespec {
	return unix.Timespec{Sec: t.Unix(), Nsec: int64(t.Nanosecond())}
}

// create makes one entry named base in pfd. It returns unix.EEXIST, bare,
// when something already has that name.
func (a *applier) create(pfd int, psetgid bool, dir, base string, hdr *tar.Header, r io.Reader) error {
	perm := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeCont:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm&0o777)
		if err != nil {
			return err
		}
		err = a.copyFile(fd, r, hdr.Size, isSparse(hdr))
		if err == nil {
			err = a.meta(fd, pfd, base, psetgid, hdr, false)
		}
		unix.Close(fd)
		if err != nil {
			return err
		}
		a.size += hdr.Size
		return a.setTimes(pfd, base, hdr)

	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, perm&0o777); err != nil {
			return err
		}
		return a.dirMeta(pfd, psetgid, dir, base, hdr)

	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
		if err := a.meta(-1, pfd, base, psetgid, hdr, false); err != nil {
			return err
		}
		return a.setTimes(pfd, base, hdr)

	case tar.TypeLink:
		target, err := CleanName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hardlink target: %w", err)
		}
		if target == "" {
			return errdefs.Invalid("hardlink to the root directory")
		}
		tdir, tbase := splitName(target)
		tfd, _, err := a.openDir(tdir, false)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return errdefs.Invalid("hardlink target %q is not in the layer", hdr.Linkname)
		}
		if err != nil {
			return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
		}
		if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
			if err == unix.ENOENT {
				return errdefs.Invalid("hardlink target %q is not in the layer", hdr.Linkname)
			}
			return err
		}
		return nil

	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := perm & 0o777
		switch hdr.Typeflag {
		case tar.TypeChar:
			mode |= unix.S_IFCHR
		case tar.TypeBlock:
			mode |= unix.S_IFBLK
		default:
			mode |= unix.S_IFIFO
		}
		if err := unix.Mknodat(pfd, base, mode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return err
		}
		if err := a.meta(-1, pfd, base, psetgid, hdr, false); err != nil {
			return err
		}
		return a.setTimes(pfd, base, hdr)

	case tar.TypeXGlobalHeader:
		return nil
	}
	return errdefs.Invalid("unsupported tar entry type %q", hdr.Typeflag)
}

// dirMeta applies a directory entry's metadata. The directory's times are
// set at the end, once nothing more is created in it.
func (a *applier) dirMeta(pfd int, psetgid bool, dir, base string, hdr *tar.Header) error {
	fd, err := unix.Openat(pfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	if err := a.meta(fd, -1, "", psetgid, hdr, true); err != nil {
		unix.Close(fd)
		return err
	}
	a.dirTimes = append(a.dirTimes, dirTime{dir: dir, name: base, ts: times(hdr)})
	// The next entries are most likely inside this directory: keep its fd.
	p := base
	if dir != "" {
		p = dir + "/" + base
	}
	a.tick++
	victim := 0
	for i := range a.cache {
		if a.cache[i].used != 0 && a.cache[i].path == p {
			victim = i // a stale fd for the same path (replaced dir)
			break
		}
		if a.cache[i].used < a.cache[victim].used {
			victim = i
		}
	}
	_, _, err = a.remember(victim, p, fd)
	return err
}

// meta sets owner, mode and xattrs: through fd when there is one, else
// through (pfd, base) without following a symlink. alwaysChmod is for
// directories, whose mode mkdir may have changed (setgid inheritance).
func (a *applier) meta(fd, pfd int, base string, psetgid bool, hdr *tar.Header, alwaysChmod bool) error {
	perm := uint32(hdr.Mode) & 0o7777
	symlink := hdr.Typeflag == tar.TypeSymlink
	chowned := false
	if hdr.Uid != a.euid || hdr.Gid != a.egid || psetgid {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, hdr.Uid, hdr.Gid)
		} else {
			err = unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("chown: %w", err)
		}
		chowned = true
	}
	// The mode given to open/mkdir/mknod lost the umask bits and the
	// special bits; chown cleared setuid/setgid.
	if !symlink && (alwaysChmod || perm&a.umask != 0 || perm&0o7000 != 0 || chowned && perm&0o6000 != 0) {
		var err error
		if fd >= 0 {
			err = unix.Fchmod(fd, perm)
		} else {
			err = unix.Fchmodat(pfd, base, perm, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattrPrefix)
		if !ok || strings.HasPrefix(name, overlayXattrPrefix) || name == "" {
			continue
		}
		var err error
		if fd >= 0 {
			err = unix.Fsetxattr(fd, name, []byte(v), 0)
		} else {
			err = unix.Lsetxattr("/proc/self/fd/"+strconv.Itoa(pfd)+"/"+base, name, []byte(v), 0)
		}
		switch err {
		case nil, unix.ENOTSUP, unix.EPERM, unix.EACCES, unix.EINVAL, unix.ERANGE, unix.E2BIG:
			// Not every filesystem or namespace can hold every xattr
			// (user.* on symlinks, security.* without privilege): skip.
		default:
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

func (a *applier) setTimes(pfd int, base string, hdr *tar.Header) error {
	ts := times(hdr)
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func (a *applier) setDirTimes() error {
	a.closeCache()
	for i := len(a.dirTimes) - 1; i >= 0; i-- {
		d := &a.dirTimes[i]
		pfd, _, err := a.openDir(d.dir, false)
		if err == nil {
			err = unix.UtimesNanoAt(pfd, d.name, d.ts[:], unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR) {
			// Removed or replaced later in the archive: nothing to do.
			return fmt.Errorf("set times of %q: %w", path.Join(d.dir, d.name), err)
		}
	}
	return nil
}

// copyFile writes the next size bytes of r to fd. For a sparse entry (whose
// holes archive/tar hands out as zeros) it sizes the file first, so a size
// the filesystem cannot hold fails at once, and seeks over zero chunks so
// the holes stay holes.
func (a *applier) copyFile(fd int, r io.Reader, size int64, sparse bool) error {
	total := size
	if sparse {
		if err := unix.Ftruncate(fd, size); err != nil {
			return fmt.Errorf("size sparse file: %w", err)
		}
	}
	for size > 0 {
		n := int64(len(a.buf))
		if size < n {
			n = size
		}
		m, err := io.ReadFull(r, a.buf[:n])
		chunk := a.buf[:m]
		if sparse && allZero(chunk) {
			if _, serr := unix.Seek(fd, int64(m), io.SeekCurrent); serr != nil {
				return fmt.Errorf("seek: %w", serr)
			}
			if cerr := a.ctx.Err(); cerr != nil {
				return cerr
			}
		} else if werr := writeAll(fd, chunk); werr != nil {
			return fmt.Errorf("write: %w", werr)
		}
		if err != nil {
			return errdefs.Invalid("read layer archive: %v", err)
		}
		size -= n
	}
	if total >= writebackMin {
		// Start writing a big file out now (no wait): the caller's final
		// syncfs then finds little left to do.
		unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	return nil
}

// writebackMin is the file size from which copyFile starts writeback.
const writebackMin = 256 << 10

// zeros is compared against (bytes.Equal is vectorized); never written.
var zeros = make([]byte, copyBufSize)

func allZero(b []byte) bool { return bytes.Equal(b, zeros[:len(b)]) }

func isSparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}
