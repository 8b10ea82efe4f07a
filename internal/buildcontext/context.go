package buildcontext

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/ulikunitz/xz"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Context is a build context: a directory every read of which is confined
// to it, and its .dockerignore. Its methods are safe for concurrent use.
type Context struct {
	root   string
	rootfd int  // O_PATH descriptor of root: every lookup starts here
	tmp    bool // root is ours (FromTar): Close removes it
	cache  *HashCache
	ig     *ignore // nil: no .dockerignore

	closeOnce sync.Once
	closeErr  error
}

// FromDir uses dir on the daemon's host as it is (the skiff CLI's local
// fast path: no tar, no copy). Close does not remove it. cache may be nil
// (contents hashed again by every Checksum of a new Context).
func FromDir(dir string, cache *HashCache) (*Context, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, errdefs.Invalid("build context %s: %v", dir, err)
	}
	fi, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, errdefs.NotFound("build context %s: no such directory", dir)
	}
	if err != nil {
		return nil, errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("build context: %w", err))
	}
	if !fi.IsDir() {
		return nil, errdefs.Invalid("build context %s is not a directory", dir)
	}
	if cache == nil {
		cache = newMemoryCache(false)
	}
	return newContext(dir, false, cache)
}

// FromTar unpacks a context tar (plain, gzip, bzip2, xz or zstd) into a new
// directory under tmpRoot, confined (archive.Apply); Close removes it.
//
// Its files are new inodes every time, so the persistent cache could never
// hit for them: contents are hashed on demand and remembered for this
// Context only (cache is not used).
func FromTar(ctx context.Context, r io.Reader, tmpRoot string, cache *HashCache) (*Context, error) {
	if err := os.MkdirAll(tmpRoot, 0o700); err != nil {
		return nil, errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("create build context directory: %w", err))
	}
	dir, err := os.MkdirTemp(tmpRoot, "context-")
	if err != nil {
		return nil, errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("create build context directory: %w", err))
	}
	br := bufio.NewReaderSize(r, 1<<20)
	var src io.Reader = br
	// archive.Apply knows gzip, zstd and bzip2; xz is Docker's fourth.
	if head, _ := br.Peek(6); archive.DetectCompression(head) == archive.Xz {
		xr, err := xz.NewReader(br)
		if err != nil {
			os.RemoveAll(dir)
			return nil, errdefs.Invalid("read build context: bad xz stream: %v", err)
		}
		src = xr
	}
	// Whiteout names in a context are ordinary files.
	if _, err := archive.Apply(ctx, dir, src, archive.WithWhiteouts(archive.WhiteoutLiteral)); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("unpack build context: %w", err)
	}
	c, err := newContext(dir, true, newMemoryCache(true))
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func newContext(dir string, tmp bool, cache *HashCache) (*Context, error) {
	fd, err := openRoot(dir)
	if err != nil {
		return nil, pathErr("open build context", dir, err)
	}
	c := &Context{root: dir, rootfd: fd, tmp: tmp, cache: cache}
	data, err := c.ReadFile(".dockerignore")
	switch {
	case errdefs.IsNotFound(err):
	case err != nil:
		unix.Close(fd)
		return nil, err
	default:
		if c.ig, err = newIgnore(data); err != nil {
			unix.Close(fd)
			return nil, err
		}
	}
	return c, nil
}

// Root is the context's directory on the host.
func (c *Context) Root() string { return c.root }

// Close releases the context, and removes its directory when FromTar made
// it.
func (c *Context) Close() error {
	c.closeOnce.Do(func() {
		unix.Close(c.rootfd)
		if c.tmp {
			if err := os.RemoveAll(c.root); err != nil {
				c.closeErr = errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("remove build context: %w", err))
			}
		}
	})
	return c.closeErr
}

// ReadFile reads a regular file of the context (Dockerfile, .dockerignore),
// resolved inside the root, even when .dockerignore excludes it (Docker
// sends both anyway); NotFound when missing.
func (c *Context) ReadFile(name string) ([]byte, error) {
	rel := cleanRel(name)
	fd, err := openInRoot(c.rootfd, rel, unix.O_RDONLY|unix.O_NONBLOCK)
	if err != nil {
		return nil, pathErr("open", name, err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, pathErr("stat", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errdefs.Invalid("%s in the build context is not a regular file", name)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size) + 1)
	if _, err := buf.ReadFrom(archive.FDReader(fd)); err != nil {
		return nil, pathErr("read", name, err)
	}
	return buf.Bytes(), nil
}

// Excluded reports whether rel (slash-separated, relative to the root) is
// excluded by the context's .dockerignore.
func (c *Context) Excluded(rel string) bool {
	if c.ig == nil {
		return false
	}
	// Walks pass clean paths: clean only what needs it (path.Clean of a
	// clean path does not allocate).
	if path.Clean(rel) != rel || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, "..") {
		rel = cleanRel(rel)
	}
	return c.ig.excluded(rel)
}

// Sources expands COPY/ADD source patterns (Docker's wildcards: `*`, `?`,
// `[...]` per path element, `\` escapes), relative to the root. A path that
// climbs out of the root is Invalid ("forbidden path outside the build
// context: ../x ()"); a path that is not there, or is excluded, is
// NotFound ("file not found in build context or excluded by
// .dockerignore: stat x: file does not exist"). Symlinks on the way are
// resolved inside the root. It returns cleaned relative paths ("." for the
// root) in the order of the patterns, each wildcard's matches sorted.
func (c *Context) Sources(patterns []string) ([]string, error) {
	out, err := expand(c.rootfd, patterns, c.ig)
	if errdefs.IsNotFound(err) && !errors.Is(err, errNoSources) {
		return nil, errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("file not found in build context or excluded by .dockerignore: %w", err))
	}
	return out, err
}

// ExpandSources is Sources for a tree that is not a build context (the
// root filesystem of an image, for COPY --from): nothing is excluded, and
// a missing path is NotFound "stat x: file does not exist".
func ExpandSources(root string, patterns []string) ([]string, error) {
	fd, err := openRoot(root)
	if err != nil {
		return nil, pathErr("open", root, err)
	}
	defer unix.Close(fd)
	return expand(fd, patterns, nil)
}

func expand(root int, patterns []string, ig *ignore) ([]string, error) {
	var out []string
	for _, orig := range patterns {
		p := orig
		// Docker drops one leading "/" and a leading "./".
		if len(p) > 1 && p[0] == '/' {
			p = p[1:]
		}
		p = strings.TrimPrefix(p, "./")
		if c := path.Clean(p); c == ".." || strings.HasPrefix(c, "../") {
			return nil, errdefs.Invalid("forbidden path outside the build context: %s ()", p)
		}
		if !containsWildcards(p) {
			rel := cleanRel(p)
			if err := visible(root, rel, p, ig); err != nil {
				return nil, err
			}
			if rel == "" {
				rel = "."
			}
			out = append(out, rel)
			continue
		}
		matches, err := glob(root, "", strings.Split(p, "/"), ig, nil)
		if err != nil {
			return nil, err
		}
		for _, m := range matches {
			if err := visible(root, m, m, ig); err != nil {
				return nil, err
			}
		}
		out = append(out, matches...)
	}
	if len(out) == 0 {
		return nil, errdefs.Wrap(errdefs.KindNotFound, errNoSources)
	}
	return out, nil
}

// containsWildcards is Docker's test for a source pattern.
func containsWildcards(name string) bool {
	for i := 0; i < len(name); i++ {
		switch name[i] {
		case '\\':
			i++
		case '*', '?', '[':
			return true
		}
	}
	return false
}

// visible checks that rel exists in the context as Docker's client would
// have sent it: resolved inside the root, not excluded, through no excluded
// symlink. name is what an error names.
func visible(root int, rel, name string, ig *ignore) error {
	notFound := errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("stat %s: %w", name, os.ErrNotExist))
	r, err := resolve(root, rel, true, false)
	if err == unix.ENOENT || err == unix.ENOTDIR {
		return notFound
	}
	if err != nil {
		return pathErr("resolve", name, err)
	}
	if ig == nil {
		return nil
	}
	for _, l := range r.links {
		if ig.excluded(l) {
			return notFound
		}
	}
	if !ig.excluded(r.real) {
		return nil
	}
	var st unix.Stat_t
	if err := lstatInRoot(root, r.real, &st); err != nil {
		return pathErr("stat", name, err)
	}
	// An excluded directory is there when something below it is not
	// excluded (a "!" exception).
	if st.Mode&unix.S_IFMT == unix.S_IFDIR && hasIncluded(root, r.real, ig) {
		return nil
	}
	return notFound
}

var (
	errFound     = errors.New("found")
	errNoSources = errors.New("no source files were specified")
)

// hasIncluded reports whether something below the excluded directory rel
// is not excluded.
func hasIncluded(root int, rel string, ig *ignore) bool {
	if ig.pruned(rel) {
		return false
	}
	w := &walker{ctx: context.Background(), exclude: ig.excluded, prune: ig.pruned}
	w.visit = func(n *node) error {
		if n.out == "" {
			return nil
		}
		return errFound
	}
	return w.walkSource(root, rel) == errFound
}

// glob matches the path elements elems below the directory dir (a real
// path), as Docker matches a wildcard source against every path of the
// context: element by element, symlinks to directories not entered.
func glob(root int, dir string, elems []string, ig *ignore, out []string) ([]string, error) {
	elem, last := elems[0], len(elems) == 1
	if elem == "" || elem == "." || elem == ".." {
		return out, nil // no path of a walk has such an element
	}
	var names []string
	if !strings.ContainsAny(elem, `*?[\`) {
		names = []string{elem}
	} else {
		if _, err := path.Match(elem, ""); err != nil {
			return nil, errdefs.Invalid("bad source pattern %q: %v", strings.Join(elems, "/"), err)
		}
		fd, err := openInRoot(root, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		if err != nil {
			return nil, pathErr("open", dir, err)
		}
		bp := direntPool.Get().(*[]byte)
		ents, err := readDir(fd, *bp)
		direntPool.Put(bp)
		unix.Close(fd)
		if err != nil {
			return nil, pathErr("read directory", dir, err)
		}
		for _, e := range ents {
			if ok, _ := path.Match(elem, e.name); ok {
				names = append(names, e.name)
			}
		}
	}
	for _, name := range names {
		rel := joinRel(dir, name)
		var st unix.Stat_t
		if err := lstatInRoot(root, rel, &st); err != nil {
			if err == unix.ENOENT || err == unix.ENOTDIR {
				continue
			}
			return nil, pathErr("stat", rel, err)
		}
		isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
		if last {
			if ig.excluded(rel) && !(isDir && hasIncluded(root, rel, ig)) {
				continue
			}
			out = append(out, rel)
			continue
		}
		if !isDir || ig.pruned(rel) {
			continue
		}
		var err error
		if out, err = glob(root, rel, elems[1:], ig, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// ignore is a parsed .dockerignore. Matching follows Docker's client: a
// path is excluded when the patterns exclude it or a parent directory
// (patternmatcher.MatchesUsingParentResults, parents' results remembered),
// and an excluded directory is skipped whole unless an exception pattern
// starts with its path.
type ignore struct {
	mu   sync.Mutex // patternmatcher compiles lazily: not safe for concurrent use
	pm   *patternmatcher.PatternMatcher
	dirs map[string]*dirMatch
}

type dirMatch struct {
	info     patternmatcher.MatchInfo
	excluded bool
	pruned   bool // excluded with nothing below it that can come back
}

func newIgnore(data []byte) (*ignore, error) {
	patterns, err := ignorefile.ReadAll(bytes.NewReader(data))
	if err != nil {
		return nil, errdefs.Invalid("read .dockerignore: %v", err)
	}
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, errdefs.Invalid("parse .dockerignore: %v", err)
	}
	return &ignore{pm: pm, dirs: map[string]*dirMatch{}}, nil
}

// excluded reports whether the real path rel ("" = root) is excluded.
func (ig *ignore) excluded(rel string) bool {
	if ig == nil || rel == "" || rel == "." {
		return false
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	return ig.match(rel).excluded
}

// pruned reports whether the directory rel and everything below it is
// excluded.
func (ig *ignore) pruned(rel string) bool {
	if ig == nil || rel == "" || rel == "." {
		return false
	}
	ig.mu.Lock()
	defer ig.mu.Unlock()
	return ig.dir(rel).pruned
}

// dir is match for a directory, remembered for its children.
func (ig *ignore) dir(rel string) *dirMatch {
	if m, ok := ig.dirs[rel]; ok {
		return m
	}
	m := ig.match(rel)
	ig.dirs[rel] = m
	return m
}

func (ig *ignore) match(rel string) *dirMatch {
	var parent *dirMatch
	if d, _ := splitRel(rel); d != "" {
		parent = ig.dir(d)
		if parent.pruned {
			return parent
		}
	} else {
		parent = &dirMatch{}
	}
	excluded, info, err := ig.pm.MatchesUsingParentResults(rel, parent.info)
	if err != nil {
		excluded = false // patterns were checked by New
	}
	m := &dirMatch{info: info, excluded: excluded}
	if excluded {
		m.pruned = true
		if ig.pm.Exclusions() {
			prefix := rel + "/"
			for _, p := range ig.pm.Patterns() {
				if p.Exclusion() && strings.HasPrefix(p.String()+"/", prefix) {
					m.pruned = false
					break
				}
			}
		}
	}
	return m
}
