package buildcontext

import (
	"context"
	"fmt"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// node is one entry a walk visits.
type node struct {
	dfd  int    // open directory holding it; valid during the visit only
	name string // its name in dfd
	rel  string // its real path relative to the root descriptor ("" = root)
	out  string // its path relative to the walked source ("" = the source)
	st   unix.Stat_t
}

func (n *node) typ() uint32 { return n.st.Mode & unix.S_IFMT }

// walker visits a source tree in name order, through directory
// descriptors and O_NOFOLLOW at every step, so a tree that changes under
// it cannot lead it elsewhere and symlinks are never followed.
type walker struct {
	ctx context.Context
	// exclude reports whether a real path is left out (.dockerignore); nil
	// leaves nothing out. An excluded directory is still looked into (a
	// "!" exception may bring back something below it) unless prune says
	// nothing can come back; it is visited only when something below it is.
	exclude func(rel string) bool
	prune   func(rel string) bool
	visit   func(n *node) error

	dbuf    []byte
	pending []*node // excluded directories above the current one
	visited int     // how many of pending were visited
}

var direntPool = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// walkSource visits the source at the real path rel of root (already
// resolved: its last component is not followed) with out "", then, for a
// directory, everything below it.
func (w *walker) walkSource(root int, rel string) error {
	bp := direntPool.Get().(*[]byte)
	defer direntPool.Put(bp)
	w.dbuf = *bp

	dir, base := splitRel(rel)
	if base == "" {
		base = "."
	}
	dfd, err := openInRoot(root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return pathErr("open", dir, err)
	}
	defer unix.Close(dfd)
	n := &node{dfd: dfd, name: base, rel: rel}
	if err := unix.Fstatat(dfd, base, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return pathErr("stat", rel, err)
	}
	if err := w.visit(n); err != nil {
		return err
	}
	if n.typ() != unix.S_IFDIR {
		return nil
	}
	return w.descend(n)
}

// descend walks the directory n.
func (w *walker) descend(n *node) error {
	fd, err := unix.Openat(n.dfd, n.name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return pathErr("open", n.rel, err)
	}
	defer unix.Close(fd)
	return w.dir(fd, n.rel, n.out)
}

func (w *walker) dir(fd int, rel, out string) error {
	if err := w.ctx.Err(); err != nil {
		return err
	}
	ents, err := readDir(fd, w.dbuf)
	if err != nil {
		return pathErr("read directory", rel, err)
	}
	for _, e := range ents {
		n := &node{dfd: fd, name: e.name, rel: joinRel(rel, e.name), out: joinRel(out, e.name)}
		excluded := w.exclude != nil && w.exclude(n.rel)
		if excluded && e.typ != unix.DT_DIR && e.typ != unix.DT_UNKNOWN {
			continue // an excluded non-directory: not even a stat
		}
		if err := unix.Fstatat(fd, e.name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue // removed while we walked
			}
			return pathErr("stat", n.rel, err)
		}
		isDir := n.typ() == unix.S_IFDIR
		if excluded {
			if !isDir || (w.prune != nil && w.prune(n.rel)) {
				continue
			}
			w.pending = append(w.pending, n)
			err := w.descend(n)
			w.pending = w.pending[:len(w.pending)-1]
			w.visited = min(w.visited, len(w.pending))
			if err != nil {
				return err
			}
			continue
		}
		// Something is copied: the excluded directories above it must
		// be there too.
		for ; w.visited < len(w.pending); w.visited++ {
			if err := w.visit(w.pending[w.visited]); err != nil {
				return err
			}
		}
		if err := w.visit(n); err != nil {
			return err
		}
		if isDir {
			if err := w.descend(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// pathErr describes a failed file system call on rel (a path relative to
// the root) with the errdefs kind that fits.
func pathErr(op, rel string, err error) error {
	if rel == "" {
		rel = "."
	}
	switch err {
	case unix.ENOENT, unix.ENOTDIR:
		return errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("%s %s: %w", op, rel, err))
	case unix.ELOOP:
		return errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("%s %s: too many levels of symbolic links", op, rel))
	case context.Canceled, context.DeadlineExceeded:
		return err
	}
	return errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("%s %s: %w", op, rel, err))
}
