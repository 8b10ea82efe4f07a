package buildcontext

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

// bucketHashes holds the content hashes of context files, so a daemon
// restart does not cost a full re-read of every context:
//
//	buildcontext.hashes.v1
//	  <dev:8 BE><ino:8 BE> -> <mode:4><size:8><mtime ns:8><ctime ns:8><sha256:32> (binary, BE)
//
// An entry is only trusted while the file's inode still has exactly that
// mode, size, mtime and ctime; any write, chmod, rename or replacement
// changes ctime, so a reused inode number cannot hit.
var bucketHashes = []byte("buildcontext.hashes.v1")

const hashValueLen = 4 + 8 + 8 + 8 + 32

// racyWindow: a file changed this close to the moment it was hashed may
// change again within the same timestamp tick without its mtime or ctime
// moving (git's "racily clean" problem); such a hash is used but not
// remembered.
var racyWindow = 20 * time.Millisecond

type fileID struct{ dev, ino uint64 }

type hashEntry struct {
	mode               uint32
	size, mtime, ctime int64
	sum                [32]byte
}

func entryOf(st *unix.Stat_t) hashEntry {
	return hashEntry{mode: st.Mode, size: st.Size, mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
}

func (e *hashEntry) sameFile(o *hashEntry) bool {
	return e.mode == o.mode && e.size == o.size && e.mtime == o.mtime && e.ctime == o.ctime
}

// HashCache maps file metadata (dev, ino, size, mtime, ctime, mode) to a
// content hash, kept in memory and persisted in bbolt, so a rebuild of an
// unchanged context reads no file contents. The bucket is read once, on
// first use; each Checksum writes back the entries it changed in one
// transaction. It is safe for concurrent builds.
type HashCache struct {
	db *meta.DB // nil: memory only
	// trustFresh: files nobody else writes (an unpacked tar context): no
	// racy-clean check.
	trustFresh bool

	mu      sync.RWMutex
	loaded  bool
	entries map[fileID]hashEntry
	dirty   map[fileID]hashEntry

	reads atomic.Int64 // files whose content was read (tests)
}

// Clear forgets every hash, in memory and in bbolt (`builder prune -a`):
// the next build reads its context's files again.
func (hc *HashCache) Clear() error {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.entries, hc.dirty = map[fileID]hashEntry{}, map[fileID]hashEntry{}
	hc.loaded = true
	if hc.db == nil {
		return nil
	}
	err := hc.db.Update(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketHashes) == nil {
			return nil
		}
		return tx.DeleteBucket(bucketHashes)
	})
	if err != nil {
		return fmt.Errorf("clear build context hashes: %w", err)
	}
	return nil
}

// NewHashCache returns the cache persisted in db's bucket
// buildcontext.hashes.v1 (read on first use). A nil db keeps it in memory
// only.
func NewHashCache(db *meta.DB) (*HashCache, error) {
	return &HashCache{db: db, entries: map[fileID]hashEntry{}, dirty: map[fileID]hashEntry{}}, nil
}

func newMemoryCache(trustFresh bool) *HashCache {
	return &HashCache{trustFresh: trustFresh, loaded: true, entries: map[fileID]hashEntry{}, dirty: map[fileID]hashEntry{}}
}

// load reads the bucket into memory once; call with mu held for writing.
func (hc *HashCache) load() error {
	if hc.loaded {
		return nil
	}
	if hc.db != nil {
		err := hc.db.View(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketHashes)
			if b == nil {
				return nil
			}
			return b.ForEach(func(k, v []byte) error {
				if len(k) != 16 || len(v) != hashValueLen {
					return nil // not ours to judge: skip, it will be rewritten
				}
				id := fileID{binary.BigEndian.Uint64(k), binary.BigEndian.Uint64(k[8:])}
				e := hashEntry{
					mode:  binary.BigEndian.Uint32(v),
					size:  int64(binary.BigEndian.Uint64(v[4:])),
					mtime: int64(binary.BigEndian.Uint64(v[12:])),
					ctime: int64(binary.BigEndian.Uint64(v[20:])),
				}
				copy(e.sum[:], v[28:])
				hc.entries[id] = e
				return nil
			})
		})
		if err != nil {
			return errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("read build context hash cache: %w", err))
		}
	}
	hc.loaded = true
	return nil
}

// lookup returns the remembered hash of the file st describes.
func (hc *HashCache) lookup(st *unix.Stat_t) ([32]byte, bool, error) {
	want := entryOf(st)
	hc.mu.RLock()
	if !hc.loaded {
		hc.mu.RUnlock()
		hc.mu.Lock()
		err := hc.load()
		hc.mu.Unlock()
		if err != nil {
			return [32]byte{}, false, err
		}
		hc.mu.RLock()
	}
	e, ok := hc.entries[fileID{st.Dev, st.Ino}]
	hc.mu.RUnlock()
	if !ok || !e.sameFile(&want) {
		return [32]byte{}, false, nil
	}
	return e.sum, true, nil
}

// remember records sum for the file st describes (unless it is racy).
func (hc *HashCache) remember(st *unix.Stat_t, sum [32]byte, hashedAt time.Time) {
	e := entryOf(st)
	e.sum = sum
	if !hc.trustFresh {
		// ctime, not mtime: every write moves ctime to the kernel's now,
		// while mtime can be set to anything (even the future).
		if e.ctime > hashedAt.Add(-racyWindow).UnixNano() {
			return
		}
	}
	id := fileID{st.Dev, st.Ino}
	hc.mu.Lock()
	hc.entries[id] = e
	if hc.db != nil {
		hc.dirty[id] = e
	}
	hc.mu.Unlock()
}

// flush writes the changed entries in one transaction.
func (hc *HashCache) flush() error {
	hc.mu.Lock()
	if len(hc.dirty) == 0 {
		hc.mu.Unlock()
		return nil
	}
	dirty := hc.dirty
	hc.dirty = map[fileID]hashEntry{}
	hc.mu.Unlock()

	ids := make([]fileID, 0, len(dirty))
	for id := range dirty {
		ids = append(ids, id)
	}
	// bbolt fills pages best with keys in order.
	slices.SortFunc(ids, func(a, b fileID) int {
		return cmp.Or(cmp.Compare(a.dev, b.dev), cmp.Compare(a.ino, b.ino))
	})
	err := hc.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketHashes)
		if err != nil {
			return err
		}
		b.FillPercent = 0.9
		for _, id := range ids {
			e := dirty[id]
			var k [16]byte
			binary.BigEndian.PutUint64(k[:], id.dev)
			binary.BigEndian.PutUint64(k[8:], id.ino)
			var v [hashValueLen]byte
			binary.BigEndian.PutUint32(v[:], e.mode)
			binary.BigEndian.PutUint64(v[4:], uint64(e.size))
			binary.BigEndian.PutUint64(v[12:], uint64(e.mtime))
			binary.BigEndian.PutUint64(v[20:], uint64(e.ctime))
			copy(v[28:], e.sum[:])
			if err := b.Put(k[:], v[:]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("write build context hash cache: %w", err))
	}
	return nil
}

// hashFile reads the regular file rel of root and returns its sha256,
// remembering it under the metadata of what was actually read.
func (hc *HashCache) hashFile(root int, rel string, buf []byte, h hash.Hash) ([32]byte, error) {
	var sum [32]byte
	fd, err := openInRoot(root, rel, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK)
	if err != nil {
		return sum, pathErr("open", rel, err)
	}
	defer unix.Close(fd)
	var before, after unix.Stat_t
	if err := unix.Fstat(fd, &before); err != nil {
		return sum, pathErr("stat", rel, err)
	}
	if before.Mode&unix.S_IFMT != unix.S_IFREG {
		return sum, errdefs.Conflict("%s changed while it was hashed", rel)
	}
	start := time.Now()
	hc.reads.Add(1)
	h.Reset()
	for {
		n, err := unix.Read(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return sum, pathErr("read", rel, err)
		}
		if n == 0 {
			break
		}
		h.Write(buf[:n])
	}
	h.Sum(sum[:0])
	if err := unix.Fstat(fd, &after); err != nil {
		return sum, pathErr("stat", rel, err)
	}
	if b, a := entryOf(&before), entryOf(&after); b.sameFile(&a) {
		hc.remember(&after, sum, start)
	}
	return sum, nil
}

// record is one entry of what a COPY copies, as Checksum hashes it.
type record struct {
	kind byte // 's' a source, 'f' file, 'd' directory, 'l' symlink, 'c' char, 'b' block, 'p' fifo
	name string
	mode uint32
	rdev uint64
	link string
	sum  [32]byte // 'f': filled from the cache or by a hashJob
	// hashRel: the file's real path when its content must be read
	hashRel string
}

// recordOf is the record of a walked node (keep false: none).
func (c *Context) recordOf(n *node) (record, bool, error) {
	rec := record{name: n.out, mode: n.st.Mode & 0o7777}
	switch n.typ() {
	case unix.S_IFREG:
		rec.kind = 'f'
		sum, ok, err := c.cache.lookup(&n.st)
		if err != nil {
			return rec, false, err
		}
		if ok {
			rec.sum = sum
		} else {
			rec.hashRel = n.rel
		}
	case unix.S_IFDIR:
		if n.out == "" {
			return rec, false, nil // a directory source copies its contents only
		}
		rec.kind = 'd'
	case unix.S_IFLNK:
		rec.kind = 'l'
		link, err := archive.Readlinkat(n.dfd, n.name)
		if err != nil {
			return rec, false, pathErr("readlink", n.rel, err)
		}
		rec.link = link
	case unix.S_IFCHR:
		rec.kind, rec.rdev = 'c', n.st.Rdev
	case unix.S_IFBLK:
		rec.kind, rec.rdev = 'b', n.st.Rdev
	case unix.S_IFIFO:
		rec.kind = 'p'
	default:
		return rec, false, nil // sockets are not copied
	}
	return rec, true, nil
}

type hashJob struct {
	rel string
	rec int
}

// Checksum is the content hash of srcs (from Sources) as a COPY copies
// them: relative names, types, permission bits, link targets and contents,
// not mtimes or owners. Contents come through the HashCache, so unchanged
// files are not read again.
func (c *Context) Checksum(ctx context.Context, srcs []string) (digest.Digest, error) {
	var recs []record
	var exclude, prune func(string) bool
	if c.ig != nil {
		exclude, prune = c.ig.excluded, c.ig.pruned
	}
	for _, src := range srcs {
		rel := cleanRel(src)
		r, err := resolve(c.rootfd, rel, true, false)
		if err != nil {
			return "", pathErr("stat", src, err)
		}
		recs = append(recs, record{kind: 's', name: src})
		got, err := scanTree(ctx, c.rootfd, r.real, exclude, prune, c.recordOf)
		if err != nil {
			return "", err
		}
		recs = append(recs, got...)
	}
	var jobs []hashJob
	for i := range recs {
		if recs[i].hashRel != "" {
			jobs = append(jobs, hashJob{rel: recs[i].hashRel, rec: i})
		}
	}
	if err := c.hashAll(ctx, recs, jobs); err != nil {
		return "", err
	}
	if err := c.cache.flush(); err != nil {
		return "", err
	}

	h := sha256.New()
	var b []byte
	for i := range recs {
		r := &recs[i]
		b = append(b[:0], r.kind)
		b = append(b, r.name...)
		b = append(b, 0)
		b = binary.BigEndian.AppendUint32(b, r.mode)
		b = binary.BigEndian.AppendUint64(b, r.rdev)
		b = append(b, r.link...)
		b = append(b, 0)
		if r.kind == 'f' {
			b = append(b, r.sum[:]...)
		}
		h.Write(b)
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}

// hashBufSize: big reads keep the syscall count of big files low.
const hashBufSize = 1 << 20

var hashBufPool = sync.Pool{New: func() any { b := make([]byte, hashBufSize); return &b }}

// hashAll hashes the files of jobs on every core.
func (c *Context) hashAll(ctx context.Context, recs []record, jobs []hashJob) error {
	if len(jobs) == 0 {
		return nil
	}
	workers := min(runtime.GOMAXPROCS(0), len(jobs))
	var next atomic.Int64
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			bp := hashBufPool.Get().(*[]byte)
			defer hashBufPool.Put(bp)
			h := sha256.New()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(jobs) {
					return
				}
				if err := ctx.Err(); err != nil {
					errs[w] = err
					return
				}
				j := jobs[i]
				sum, err := c.cache.hashFile(c.rootfd, j.rel, *bp, h)
				if err != nil {
					errs[w] = err
					next.Store(int64(len(jobs))) // stop the others
					return
				}
				recs[j.rec].sum = sum
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
