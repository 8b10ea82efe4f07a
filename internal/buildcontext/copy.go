package buildcontext

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// CopyOptions describes one COPY/ADD.
type CopyOptions struct {
	Dest      string       // absolute destination in the image (WORKDIR applied)
	DestIsDir bool         // dest ends in "/" or several sources, or an existing directory in the image
	UID, GID  int          // owner of what is copied (--chown resolved; 0:0 default)
	Chmod     *os.FileMode // --chmod: mode of the files and directories copied
	Extract   bool         // ADD: local tar archives (gzip, bzip2, xz, zstd, plain) are unpacked at Dest
	// ExcludeFn reports whether a path (relative to srcRoot) is left out:
	// a Context's Excluded. nil: nothing excluded.
	ExcludeFn func(rel string) bool
	// DestRoot is the root filesystem of the image the layer goes on
	// ("" = none: scratch). Dest is resolved in it (symlinks followed
	// inside it, as Docker does), an existing directory Dest is copied
	// into, and the directories above what is copied that exist there
	// are written with their metadata, so the layer does not change them.
	DestRoot string
	// KeepOwners writes what is copied with the owners it has in srcRoot
	// instead of UID:GID (COPY --from without --chown, as Docker).
	KeepOwners bool
}

// WriteLayer writes to w the layer tar that copies srcs (relative to
// srcRoot, which is a context root or an image's root filesystem) to
// opts.Dest with Docker's rules:
//
//   - a directory copies its contents (not itself) into Dest; Dest, when
//     missing, is made 0755 (or Chmod) and owned by UID:GID;
//   - a file goes to Dest/<its name> with DestIsDir, else to Dest; missing
//     directories above it are made 0755, owned by UID:GID;
//   - with Extract a file that is a tar archive (detected by its content) is
//     unpacked at Dest instead: owners from the archive, missing directories
//     0755 root, ".." that climbs out of Dest refused;
//   - everything copied belongs to UID:GID, has Chmod when given, keeps its
//     mtime; symlinks are copied as links and never followed (a source
//     path itself is resolved inside srcRoot, like Docker does); hardlinks
//     become separate files;
//   - missing directories above Dest are made 0755, root.
//
// Every read is confined to srcRoot (openat2 RESOLVE_IN_ROOT, then
// directory descriptors and O_NOFOLLOW). Names in the tar are relative
// ("usr/local/go/bin/go").
func WriteLayer(ctx context.Context, w io.Writer, srcRoot string, srcs []string, opts CopyOptions) error {
	lw, err := newLayerWriter(ctx, w, opts)
	if err != nil {
		return err
	}
	defer lw.release()
	if len(srcs) > 1 && !lw.destIsDir {
		return errdefs.Invalid("When using COPY with more than one source file, the destination must be a directory and end with a /")
	}
	root, err := openRoot(srcRoot)
	if err != nil {
		return pathErr("open", srcRoot, err)
	}
	defer unix.Close(root)
	for _, src := range srcs {
		if err := lw.copySource(root, src); err != nil {
			return err
		}
	}
	return lw.finish()
}

// WriteFileLayer writes a layer with one regular file (ADD of a URL) of
// content r (exactly size bytes) at opts.Dest, the file's full path, with
// mode 0600 like Docker (or Chmod), owned by UID:GID. Missing directories
// above it are made 0755, owned by UID:GID.
func WriteFileLayer(w io.Writer, r io.Reader, size int64, mtime time.Time, opts CopyOptions) error {
	if size < 0 {
		return errdefs.Invalid("file of unknown size")
	}
	lw, err := newLayerWriter(context.Background(), w, opts)
	if err != nil {
		return err
	}
	defer lw.release()
	if lw.dest == "" {
		return errdefs.Invalid("cannot write a file at /")
	}
	owner := [2]int{opts.UID, opts.GID}
	if err := lw.parents(lw.dest, owner); err != nil {
		return err
	}
	hdr := lw.header(lw.dest, tar.TypeReg, 0o600, mtime.Unix())
	hdr.Size = size
	lw.chmod(hdr)
	if err := lw.write(hdr); err != nil {
		return err
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{lw.tw}, io.LimitReader(r, size), lw.buf)
	if err != nil {
		return fmt.Errorf("write %s into the layer: %w", opts.Dest, err)
	}
	if n != size {
		return errdefs.Invalid("write %s into the layer: got %d bytes, want %d", opts.Dest, n, size)
	}
	return lw.finish()
}

// layerWriter writes one COPY/ADD layer.
type layerWriter struct {
	ctx       context.Context
	opts      CopyOptions
	bw        *bufio.Writer
	tw        *tar.Writer
	destRoot  int    // -1: no image below
	dest      string // resolved Dest, relative ("" = "/")
	destIsDir bool
	dirs      map[string]bool // directories already in the layer
	now       int64           // unix seconds for directories this layer makes
	buf       []byte
	bufp      *[]byte
	hdr       tar.Header
	srcOwner  *unix.Stat_t // KeepOwners: the entry being written
	xbuf      []byte
}

// layerBufSize: the tar goes out in big writes, file contents come in big
// reads.
const layerBufSize = 1 << 20

var layerBufPool = sync.Pool{New: func() any { b := make([]byte, layerBufSize); return &b }}

func newLayerWriter(ctx context.Context, w io.Writer, opts CopyOptions) (*layerWriter, error) {
	if !path.IsAbs(opts.Dest) {
		return nil, errdefs.Invalid("copy destination %q is not an absolute path", opts.Dest)
	}
	lw := &layerWriter{
		ctx:       ctx,
		opts:      opts,
		destRoot:  -1,
		dest:      cleanRel(opts.Dest),
		destIsDir: opts.DestIsDir,
		dirs:      map[string]bool{},
		now:       time.Now().Unix(),
	}
	if opts.DestRoot != "" {
		fd, err := openRoot(opts.DestRoot)
		if err != nil {
			return nil, pathErr("open image root", opts.DestRoot, err)
		}
		lw.destRoot = fd
		r, err := resolve(fd, lw.dest, true, true)
		if err != nil {
			unix.Close(fd)
			return nil, pathErr("resolve destination", opts.Dest, err)
		}
		lw.dest = r.real
		var st unix.Stat_t
		if !r.missing && lstatInRoot(fd, r.real, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			lw.destIsDir = true
		}
	}
	lw.bufp = layerBufPool.Get().(*[]byte)
	lw.buf = *lw.bufp
	lw.bw = bufio.NewWriterSize(w, layerBufSize)
	lw.tw = tar.NewWriter(lw.bw)
	return lw, nil
}

func (lw *layerWriter) release() {
	if lw.destRoot >= 0 {
		unix.Close(lw.destRoot)
		lw.destRoot = -1
	}
	if lw.bufp != nil {
		layerBufPool.Put(lw.bufp)
		lw.bufp = nil
	}
}

func (lw *layerWriter) finish() error {
	if err := lw.tw.Close(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	if err := lw.bw.Flush(); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

// header returns the reused header, reset, for name (relative).
func (lw *layerWriter) header(name string, typ byte, mode int64, mtime int64) *tar.Header {
	lw.hdr = tar.Header{
		Typeflag: typ,
		Name:     name,
		Mode:     mode,
		Uid:      lw.opts.UID,
		Gid:      lw.opts.GID,
		ModTime:  time.Unix(mtime, 0),
		Format:   tar.FormatPAX,
	}
	if lw.srcOwner != nil {
		lw.hdr.Uid, lw.hdr.Gid = int(lw.srcOwner.Uid), int(lw.srcOwner.Gid)
	}
	if typ == tar.TypeDir {
		lw.hdr.Name += "/"
	}
	return &lw.hdr
}

// chmod applies --chmod to a file or directory header.
func (lw *layerWriter) chmod(hdr *tar.Header) {
	if lw.opts.Chmod == nil {
		return
	}
	m := *lw.opts.Chmod
	mode := int64(m.Perm())
	if m&os.ModeSetuid != 0 {
		mode |= unix.S_ISUID
	}
	if m&os.ModeSetgid != 0 {
		mode |= unix.S_ISGID
	}
	if m&os.ModeSticky != 0 {
		mode |= unix.S_ISVTX
	}
	hdr.Mode = mode
}

func (lw *layerWriter) write(hdr *tar.Header) error {
	if err := lw.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write layer entry %s: %w", hdr.Name, err)
	}
	if hdr.Typeflag == tar.TypeDir {
		lw.dirs[strings.TrimSuffix(hdr.Name, "/")] = true
	}
	return nil
}

// dir writes the directory d: with its metadata when the image has it,
// else new with mode and owner.
func (lw *layerWriter) dir(d string, mode int64, owner [2]int) error {
	var st unix.Stat_t
	if lw.destRoot >= 0 && lstatInRoot(lw.destRoot, d, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
		hdr := lw.header(d, tar.TypeDir, modeBits(st.Mode), st.Mtim.Sec)
		hdr.Uid, hdr.Gid = int(st.Uid), int(st.Gid)
		return lw.write(hdr)
	}
	hdr := lw.header(d, tar.TypeDir, mode, lw.now)
	hdr.Uid, hdr.Gid = owner[0], owner[1]
	return lw.write(hdr)
}

// parents writes the directories above rel that are not in the layer yet;
// the ones the image lacks are made 0755 with owner.
func (lw *layerWriter) parents(rel string, owner [2]int) error {
	d, _ := splitRel(rel)
	if d == "" || lw.dirs[d] {
		return nil
	}
	if err := lw.parents(d, owner); err != nil {
		return err
	}
	return lw.dir(d, 0o755, owner)
}

// imageHasNonDir reports whether the image has rel as something other than
// a directory.
func (lw *layerWriter) imageHasNonDir(rel string) bool {
	var st unix.Stat_t
	return lw.destRoot >= 0 && rel != "" && lstatInRoot(lw.destRoot, rel, &st) == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR
}

func (lw *layerWriter) copySource(root int, src string) error {
	rel := cleanRel(src)
	notFound := func() error {
		return errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("stat %s: %w", src, os.ErrNotExist))
	}
	r, err := resolve(root, rel, true, false)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return notFound()
	}
	if err != nil {
		return pathErr("resolve", src, err)
	}
	exclude := lw.opts.ExcludeFn
	if exclude != nil {
		for _, l := range r.links {
			if exclude(l) {
				return notFound()
			}
		}
	}
	w := &walker{ctx: lw.ctx, exclude: exclude}
	w.visit = func(n *node) error {
		if n.out != "" {
			return lw.entry(n, joinRel(lw.dest, n.out))
		}
		if n.typ() == unix.S_IFDIR {
			return lw.destDir()
		}
		if exclude != nil && exclude(n.rel) {
			return notFound()
		}
		if n.typ() == unix.S_IFREG && lw.opts.Extract {
			if done, err := lw.tryExtract(n, src); done || err != nil {
				return err
			}
		}
		target := lw.dest
		if lw.destIsDir {
			target = joinRel(lw.dest, path.Base("/"+rel))
		}
		if target == "" {
			return errdefs.Invalid("cannot copy file %s to /", src)
		}
		if err := lw.parents(target, [2]int{lw.opts.UID, lw.opts.GID}); err != nil {
			return err
		}
		return lw.entry(n, target)
	}
	return w.walkSource(root, r.real)
}

// destDir writes Dest as the directory a directory source is copied into.
func (lw *layerWriter) destDir() error {
	if lw.imageHasNonDir(lw.dest) {
		return errdefs.Invalid("cannot copy a directory to %s: it exists and is not a directory", lw.opts.Dest)
	}
	if err := lw.parents(lw.dest, [2]int{0, 0}); err != nil {
		return err
	}
	if lw.dest == "" || lw.dirs[lw.dest] {
		return nil
	}
	mode := int64(0o755)
	if lw.opts.Chmod != nil {
		var h tar.Header
		lw.chmod(&h)
		mode = h.Mode
	}
	return lw.dir(lw.dest, mode, [2]int{lw.opts.UID, lw.opts.GID})
}

// entry writes the walked n as name.
func (lw *layerWriter) entry(n *node, name string) error {
	if lw.opts.KeepOwners {
		lw.srcOwner = &n.st
		defer func() { lw.srcOwner = nil }()
	}
	mtime := n.st.Mtim.Sec
	mode := modeBits(n.st.Mode)
	switch n.typ() {
	case unix.S_IFREG:
		return lw.file(n, name)
	case unix.S_IFDIR:
		hdr := lw.header(name, tar.TypeDir, mode, mtime)
		lw.chmod(hdr)
		return lw.write(hdr)
	case unix.S_IFLNK:
		link, err := archive.Readlinkat(n.dfd, n.name)
		if err != nil {
			return pathErr("readlink", n.rel, err)
		}
		hdr := lw.header(name, tar.TypeSymlink, mode, mtime)
		hdr.Linkname = link
		return lw.write(hdr)
	case unix.S_IFCHR, unix.S_IFBLK:
		typ := byte(tar.TypeChar)
		if n.typ() == unix.S_IFBLK {
			typ = tar.TypeBlock
		}
		hdr := lw.header(name, typ, mode, mtime)
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(n.st.Rdev)), int64(unix.Minor(n.st.Rdev))
		lw.chmod(hdr)
		return lw.write(hdr)
	case unix.S_IFIFO:
		hdr := lw.header(name, tar.TypeFifo, mode, mtime)
		lw.chmod(hdr)
		return lw.write(hdr)
	}
	return nil // sockets cannot be archived
}

// file writes the regular file n as name: one open, reads straight into
// the tar stream.
func (lw *layerWriter) file(n *node, name string) error {
	fd, err := unix.Openat(n.dfd, n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", n.rel, err)
	}
	defer unix.Close(fd)
	hdr := lw.header(name, tar.TypeReg, modeBits(n.st.Mode), n.st.Mtim.Sec)
	hdr.Size = n.st.Size
	lw.chmod(hdr)
	// File capabilities are the one xattr Docker carries into a layer.
	if lw.xbuf == nil {
		lw.xbuf = make([]byte, 256)
	}
	if sz, err := unix.Fgetxattr(fd, "security.capability", lw.xbuf); err == nil && sz > 0 {
		hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": string(lw.xbuf[:sz])}
	}
	if err := lw.write(hdr); err != nil {
		return err
	}
	for remaining := n.st.Size; remaining > 0; {
		chunk := lw.buf[:min(int64(len(lw.buf)), remaining)]
		m, err := unix.Read(fd, chunk)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return pathErr("read", n.rel, err)
		}
		if m == 0 {
			return errdefs.Conflict("read %s: the file shrank while it was copied", n.rel)
		}
		if _, err := lw.tw.Write(chunk[:m]); err != nil {
			return fmt.Errorf("write layer entry %s: %w", name, err)
		}
		remaining -= int64(m)
	}
	return nil
}

// tryExtract unpacks the file n at Dest when it is a tar archive (plain,
// gzip, bzip2, xz or zstd: Docker's test is that a tar header can be read
// from the decompressed content). done is false for any other file.
func (lw *layerWriter) tryExtract(n *node, src string) (done bool, err error) {
	fd, err := unix.Openat(n.dfd, n.name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, pathErr("open", n.rel, err)
	}
	defer unix.Close(fd)
	br := bufio.NewReaderSize(archive.FDReader(fd), layerBufSize)
	var rd io.Reader
	if head, _ := br.Peek(6); archive.DetectCompression(head) == archive.Xz {
		xr, err := xz.NewReader(br)
		if err != nil {
			return false, nil
		}
		rd = xr
	} else {
		rc, _, err := archive.DecompressStream(br)
		if err != nil {
			return false, nil
		}
		defer rc.Close()
		rd = rc
	}
	tr := tar.NewReader(rd)
	first, err := tr.Next()
	if err != nil {
		return false, nil
	}
	if err := lw.extract(tr, first, src); err != nil {
		return true, err
	}
	return true, nil
}

// extract re-roots the entries of an archive under Dest.
func (lw *layerWriter) extract(tr *tar.Reader, hdr *tar.Header, src string) error {
	root := [2]int{0, 0}
	if lw.imageHasNonDir(lw.dest) {
		return errdefs.Invalid("cannot extract %s to %s: it exists and is not a directory", src, lw.opts.Dest)
	}
	if err := lw.parents(lw.dest, root); err != nil {
		return err
	}
	if lw.dest != "" && !lw.dirs[lw.dest] {
		if err := lw.dir(lw.dest, 0o755, root); err != nil {
			return err
		}
	}
	for {
		if err := lw.extractEntry(tr, hdr, src); err != nil {
			return err
		}
		if err := lw.ctx.Err(); err != nil {
			return err
		}
		var err error
		if hdr, err = tr.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return errdefs.Invalid("extract %s: %v", src, err)
		}
	}
}

func (lw *layerWriter) extractEntry(tr *tar.Reader, in *tar.Header, src string) error {
	rel, err := archive.CleanName(in.Name)
	if err != nil {
		return errdefs.Invalid("extract %s: %v", src, err)
	}
	name := joinRel(lw.dest, rel)
	typ := in.Typeflag
	switch typ {
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse: // the reader expands sparse files
		typ = tar.TypeReg
	case tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return nil // global headers, volume labels, ...
	}
	if name == "" || (rel == "" && typ != tar.TypeDir) {
		return nil // the root of the image keeps its own metadata
	}
	if err := lw.parents(name, [2]int{0, 0}); err != nil {
		return err
	}
	hdr := lw.header(name, typ, in.Mode&0o7777, in.ModTime.Unix())
	hdr.Uid, hdr.Gid = in.Uid, in.Gid
	for k, v := range in.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") && !strings.HasPrefix(k, "SCHILY.xattr.trusted.overlay.") {
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[k] = v
		}
	}
	switch typ {
	case tar.TypeReg:
		hdr.Size = in.Size
	case tar.TypeSymlink:
		hdr.Linkname = in.Linkname
	case tar.TypeLink:
		target, err := archive.CleanName(in.Linkname)
		if err != nil || target == "" {
			return errdefs.Invalid("extract %s: hardlink %s to %q outside the archive", src, in.Name, in.Linkname)
		}
		hdr.Linkname = joinRel(lw.dest, target)
	case tar.TypeChar, tar.TypeBlock:
		hdr.Devmajor, hdr.Devminor = in.Devmajor, in.Devminor
	}
	if err := lw.write(hdr); err != nil {
		return err
	}
	if typ == tar.TypeReg {
		n, err := io.CopyBuffer(struct{ io.Writer }{lw.tw}, tr, lw.buf)
		if err != nil {
			if errors.Is(err, tar.ErrWriteTooLong) {
				return errdefs.Invalid("extract %s: entry %s is longer than its header says", src, in.Name)
			}
			return errdefs.Invalid("extract %s: read %s: %v", src, in.Name, err)
		}
		if n != in.Size {
			return errdefs.Invalid("extract %s: entry %s is truncated", src, in.Name)
		}
	}
	return nil
}
