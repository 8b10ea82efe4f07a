package buildcontext

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// scanTree is walker.walkSource on every core, for Checksum: on a big
// context the walk is one stat per file, and stats of different
// directories run in parallel. visit is called concurrently and returns
// the value kept for a node (keep false: none); the values come back in
// the order walkSource would visit the nodes, excluded directories
// included only when something below them is.
//
// Directories are opened by their real path from root with
// RESOLVE_NO_SYMLINKS: walk paths contain no symlinks, so one swapped in
// meanwhile makes the open fail instead of leading elsewhere.
func scanTree[T any](ctx context.Context, root int, rel string, exclude, prune func(string) bool, visit func(n *node) (T, bool, error)) ([]T, error) {
	s := &scanner[T]{ctx: ctx, root: root, exclude: exclude, prune: prune, visit: visit,
		sem: make(chan struct{}, runtime.GOMAXPROCS(0))}

	dir, base := splitRel(rel)
	if base == "" {
		base = "."
	}
	dfd, err := openInRoot(root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return nil, pathErr("open", dir, err)
	}
	n := &node{dfd: dfd, name: base, rel: rel}
	err = unix.Fstatat(dfd, base, &n.st, unix.AT_SYMLINK_NOFOLLOW)
	unix.Close(dfd)
	if err != nil {
		return nil, pathErr("stat", rel, err)
	}
	n.dfd = -1
	v, keep, err := visit(n)
	if err != nil {
		return nil, err
	}
	top := &scanDir[T]{rel: rel}
	top.items = []scanItem[T]{{val: v, keep: keep}}
	if n.typ() == unix.S_IFDIR {
		top.items[0].child = s.spawn(rel, "")
	}
	s.wg.Wait()
	if s.err != nil {
		return nil, s.err
	}
	var out []T
	out, _ = flatten(top, out)
	return out, nil
}

type scanner[T any] struct {
	ctx     context.Context
	root    int
	exclude func(string) bool
	prune   func(string) bool
	visit   func(n *node) (T, bool, error)
	sem     chan struct{} // one token per core
	wg      sync.WaitGroup

	errOnce sync.Once
	err     error
	failed  atomic.Bool
}

// scanDir is what one directory holds, in name order.
type scanDir[T any] struct {
	rel, out string
	items    []scanItem[T]
}

type scanItem[T any] struct {
	val   T
	keep  bool
	cond  bool        // an excluded directory: kept only if its subtree has something
	child *scanDir[T] // a directory's contents
}

func (s *scanner[T]) fail(err error) {
	s.errOnce.Do(func() { s.err = err })
	s.failed.Store(true)
}

// spawn lists the directory rel (out relative to the source) in a new
// goroutine, once a core is free.
func (s *scanner[T]) spawn(rel, out string) *scanDir[T] {
	d := &scanDir[T]{rel: rel, out: out}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.sem <- struct{}{}
		defer func() { <-s.sem }()
		if s.failed.Load() {
			return
		}
		if err := s.ctx.Err(); err != nil {
			s.fail(err)
			return
		}
		if err := s.list(d); err != nil {
			s.fail(err)
		}
	}()
	return d
}

var noSymlinks = unix.OpenHow{
	Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
	Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_SYMLINKS,
}

func (s *scanner[T]) list(d *scanDir[T]) error {
	p := d.rel
	if p == "" {
		p = "."
	}
	how := noSymlinks
	var fd int
	var err error
	for i := 0; ; i++ {
		fd, err = unix.Openat2(s.root, p, &how)
		if (err == unix.EAGAIN || err == unix.EINTR) && i < 32 {
			continue
		}
		break
	}
	if err == unix.ENOENT {
		return nil // removed while we walked
	}
	if err != nil {
		return pathErr("open", d.rel, err)
	}
	defer unix.Close(fd)
	bp := direntPool.Get().(*[]byte)
	ents, err := readDir(fd, *bp)
	direntPool.Put(bp)
	if err != nil {
		return pathErr("read directory", d.rel, err)
	}
	d.items = make([]scanItem[T], 0, len(ents))
	for _, e := range ents {
		n := node{dfd: fd, name: e.name, rel: joinRel(d.rel, e.name), out: joinRel(d.out, e.name)}
		excluded := s.exclude != nil && s.exclude(n.rel)
		if excluded && e.typ != unix.DT_DIR && e.typ != unix.DT_UNKNOWN {
			continue
		}
		if err := unix.Fstatat(fd, e.name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if err == unix.ENOENT {
				continue
			}
			return pathErr("stat", n.rel, err)
		}
		isDir := n.typ() == unix.S_IFDIR
		if excluded && (!isDir || (s.prune != nil && s.prune(n.rel))) {
			continue
		}
		v, keep, err := s.visit(&n)
		if err != nil {
			return err
		}
		it := scanItem[T]{val: v, keep: keep, cond: excluded}
		if isDir {
			it.child = s.spawn(n.rel, n.out)
		}
		d.items = append(d.items, it)
	}
	return nil
}

// flatten appends the values of d's tree to out in walk order, and reports
// whether it appended any.
func flatten[T any](d *scanDir[T], out []T) ([]T, bool) {
	start := len(out)
	for _, it := range d.items {
		if it.cond {
			sub, any := flatten(it.child, nil)
			if any {
				if it.keep {
					out = append(out, it.val)
				}
				out = append(out, sub...)
			}
			continue
		}
		if it.keep {
			out = append(out, it.val)
		}
		if it.child != nil {
			out, _ = flatten(it.child, out)
		}
	}
	return out, len(out) > start
}
