package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Diff writes the overlay upper directory upper as an OCI layer tar: overlay
// whiteouts (0/0 char devices, or files marked trusted.overlay.whiteout)
// become .wh.NAME entries, opaque directories get a .wh..wh..opq entry, and
// overlay's own xattrs are left out. The output is deterministic for a given
// tree (sorted names, mtimes in whole seconds, no atime/ctime, no user or
// group names), so the same change gives the same layer digest.
func Diff(ctx context.Context, upper string, w io.Writer) error {
	return writeTar(ctx, upper, w, true)
}

// Tar writes the tree under root as a tar (for export and copy): every entry
// as it is, without whiteout conversion.
func Tar(ctx context.Context, root string, w io.Writer) error {
	return writeTar(ctx, root, w, false)
}

type tarWriter struct {
	ctx   context.Context
	tw    *tar.Writer
	diff  bool
	buf   []byte
	links map[[2]uint64]string // (dev, inode) -> first name, for hardlinks
	xbuf  []byte
}

func writeTar(ctx context.Context, root string, w io.Writer, diff bool) error {
	// Walk with directory fds and O_NOFOLLOW at every step, so a tree that
	// changes under us (a running container) cannot point the walk outside.
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", root, err)
	}
	bw := bufio.NewWriterSize(w, copyBufSize)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	t := &tarWriter{ctx: ctx, tw: tar.NewWriter(bw), diff: diff, buf: *bp, links: map[[2]uint64]string{}, xbuf: make([]byte, 4096)}
	err = t.dir(fd, "")
	unix.Close(fd)
	if err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return nil
}

// dir writes the entries of the directory dfd, whose archive name is prefix
// ("" or "a/b/").
func (t *tarWriter) dir(dfd int, prefix string) error {
	names, err := readNames(dfd)
	if err != nil {
		return fmt.Errorf("read directory %q: %w", prefix, err)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := t.ctx.Err(); err != nil {
			return err
		}
		if err := t.entry(dfd, prefix, name); err != nil {
			return err
		}
	}
	return nil
}

func (t *tarWriter) entry(dfd int, prefix, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // removed while we walked
		}
		return fmt.Errorf("stat %q: %w", prefix+name, err)
	}
	hdr := &tar.Header{
		Name:    prefix + name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, 0),
		Format:  tar.FormatPAX,
	}
	var fd = -1
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
	}()
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		if st.Nlink > 1 {
			key := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := t.links[key]; ok {
				hdr.Typeflag = tar.TypeLink
				hdr.Linkname = first
				hdr.Mode = int64(st.Mode & 0o7777)
				return t.write(hdr)
			}
			t.links[key] = hdr.Name
		}
		var err error
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", hdr.Name, err)
		}
		// The size of what we opened, not of what we stat'ed by name.
		if err := unix.Fstat(fd, &st); err != nil {
			return fmt.Errorf("stat %q: %w", hdr.Name, err)
		}
		hdr.Size = st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
		var err error
		fd, err = unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %q: %w", hdr.Name, err)
		}
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := Readlinkat(dfd, name)
		if err != nil {
			return fmt.Errorf("readlink %q: %w", hdr.Name, err)
		}
		hdr.Linkname = target
	case unix.S_IFCHR:
		if t.diff && st.Rdev == 0 {
			return t.write(whiteoutHeader(hdr, prefix, name))
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets cannot be archived
	}

	xattrs, err := t.xattrs(fd, dfd, name)
	if err != nil {
		return fmt.Errorf("read xattrs of %q: %w", hdr.Name, err)
	}
	opaque := false
	if t.diff {
		if _, ok := xattrs[overlayWhiteout]; ok && hdr.Typeflag == tar.TypeReg && hdr.Size == 0 {
			return t.write(whiteoutHeader(hdr, prefix, name))
		}
		opaque = hdr.Typeflag == tar.TypeDir && xattrs[overlayOpaque] == "y"
	}
	for k, v := range xattrs {
		if strings.HasPrefix(k, overlayXattrPrefix) {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords[paxXattrPrefix+k] = v
	}
	if err := t.write(hdr); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		n, err := io.CopyBuffer(struct{ io.Writer }{t.tw}, io.LimitReader(FDReader(fd), hdr.Size), t.buf)
		if err != nil {
			return fmt.Errorf("read %q: %w", hdr.Name, err)
		}
		if n != hdr.Size {
			return fmt.Errorf("read %q: file shrank while archiving it", hdr.Name)
		}
	case tar.TypeDir:
		if opaque {
			wo := &tar.Header{
				Typeflag: tar.TypeReg,
				Name:     hdr.Name + WhiteoutOpaqueDir,
				Mode:     hdr.Mode & 0o777,
				Uid:      hdr.Uid,
				Gid:      hdr.Gid,
				ModTime:  hdr.ModTime,
				Format:   tar.FormatPAX,
			}
			if err := t.write(wo); err != nil {
				return err
			}
		}
		return t.dir(fd, hdr.Name)
	}
	return nil
}

// FDReader reads a raw fd. (os.NewFile would attach a finalizer that closes
// the fd again, possibly after its number was reused.)
type FDReader int

func (f FDReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(int(f), b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if n == 0 && len(b) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

func whiteoutHeader(hdr *tar.Header, prefix, name string) *tar.Header {
	return &tar.Header{
		Typeflag: tar.TypeReg,
		Name:     prefix + WhiteoutPrefix + name,
		Mode:     0o600,
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		ModTime:  hdr.ModTime,
		Format:   tar.FormatPAX,
	}
}

func (t *tarWriter) write(hdr *tar.Header) error {
	if err := t.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write tar header for %q: %w", hdr.Name, err)
	}
	return nil
}

// Readlinkat reads the target of the symlink name in directory dfd,
// whatever its length.
func Readlinkat(dfd int, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dfd, name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// xattrs lists the extended attributes of the entry: through fd when it is
// open, else through its /proc/self/fd path without following a symlink.
func (t *tarWriter) xattrs(fd, dfd int, name string) (map[string]string, error) {
	p := "/proc/self/fd/" + strconv.Itoa(dfd) + "/" + name
	list := func(b []byte) (int, error) {
		if fd >= 0 {
			return unix.Flistxattr(fd, b)
		}
		return unix.Llistxattr(p, b)
	}
	get := func(attr string, b []byte) (int, error) {
		if fd >= 0 {
			return unix.Fgetxattr(fd, attr, b)
		}
		return unix.Lgetxattr(p, attr, b)
	}
	n, err := list(t.xbuf)
	for err == unix.ERANGE {
		t.xbuf = make([]byte, 2*len(t.xbuf))
		n, err = list(t.xbuf)
	}
	if err == unix.ENOTSUP || n == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	names := strings.Split(strings.TrimRight(string(t.xbuf[:n]), "\x00"), "\x00")
	out := make(map[string]string, len(names))
	for _, attr := range names {
		if attr == "" {
			continue
		}
		vbuf := make([]byte, 256)
		m, err := get(attr, vbuf)
		for err == unix.ERANGE {
			vbuf = make([]byte, 2*len(vbuf))
			m, err = get(attr, vbuf)
		}
		if err == unix.ENODATA {
			continue // removed between list and get
		}
		if err != nil {
			return nil, fmt.Errorf("get %s: %w", attr, err)
		}
		out[attr] = string(vbuf[:m])
	}
	return out, nil
}
