// Package snapshot keeps overlay filesystem layers, in the shape of
// containerd's snapshotter: a committed snapshot is a read-only layer (an
// image layer, keyed by its chain id); an active snapshot is a writable layer
// on top of a committed parent (a container's root filesystem); a view is a
// read-only look at a committed snapshot.
//
// It never mounts anything: it returns mount descriptions. The runtime mounts
// the overlay inside the container's own mount namespace, so no mount ever
// appears on the host.
//
// Layout under the snapshotter's root (<data-root>/snapshots):
//
//	<n>/fs      the layer's files (an overlay upper dir while active)
//	<n>/work    overlay's work dir (active snapshots only)
//	empty/      an empty lower dir for active snapshots without a parent
//	new-*, rm-* being created or removed; cleaned up by New
//
// <n> is a short number so that a long lowerdir list still fits in the one
// page that mount(2) accepts for options (about 120 layers with the default
// data root). Metadata (key -> id, kind, parent) lives in the meta database,
// bucket snapshot.v1; the directory is renamed into place inside the same
// transaction that records it, so the two never disagree after a crash.
package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/mount"
)

// Kind is the state of a snapshot.
type Kind string

const (
	KindView      Kind = "view"
	KindActive    Kind = "active"
	KindCommitted Kind = "committed"
)

// Info describes a snapshot.
type Info struct {
	Key     string
	Kind    Kind
	Parent  string // committed snapshot below this one; "" for none
	Created time.Time
	Labels  map[string]string
}

// Mount is one mount the caller performs (containerd's shape): Type
// "overlay" or "bind", Source, Options. The runtime performs them with
// mount.All, the engine with mount.Detached.
type Mount = mount.Mount

// Dirs are the directories of an active snapshot, for whoever reads its
// files without mounting it (diff, changes, export).
type Dirs struct {
	Upper  string   // the layer's files: where the snapshot's writes land
	Work   string   // overlay's work directory
	Lowers []string // the committed layers below, the top one first
}

// Usage is the disk space a snapshot's own layer takes (not its parents').
type Usage struct {
	Size   int64 // bytes in regular files and symlinks, hardlinks counted once
	Inodes int64
}

// Opt sets optional properties of a new snapshot.
type Opt func(*record)

// WithLabels attaches labels to the snapshot.
func WithLabels(labels map[string]string) Opt {
	return func(r *record) {
		if r.Labels == nil {
			r.Labels = map[string]string{}
		}
		for k, v := range labels {
			r.Labels[k] = v
		}
	}
}

var bucket = []byte("snapshot.v1")

// record is the stored form of a snapshot.
type record struct {
	ID      uint64            `json:"id"`
	Kind    Kind              `json:"kind"`
	Parent  string            `json:"parent,omitempty"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Snapshotter manages the snapshots under one root.
type Snapshotter struct {
	root string
	db   *meta.DB
}

// New opens the snapshotter rooted at root (created if needed) and removes
// what a crash left: half-created or half-removed directories and layer
// directories that no record names.
func New(root string, db *meta.DB) (*Snapshotter, error) {
	if strings.ContainsAny(root, ",:") {
		// Both characters separate things in overlay's mount options.
		return nil, errdefs.Invalid("snapshot root %q: must not contain ',' or ':'", root)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root: %w", err)
	}
	s := &Snapshotter{root: abs, db: db}
	if err := os.MkdirAll(s.emptyDir(), 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot root: %w", err)
	}
	if err := os.Chmod(abs, 0o711); err != nil {
		return nil, fmt.Errorf("create snapshot root: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("init snapshot bucket: %w", err)
	}
	if err := s.cleanup(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Snapshotter) emptyDir() string       { return filepath.Join(s.root, "empty") }
func (s *Snapshotter) dir(id uint64) string   { return filepath.Join(s.root, strconv.FormatUint(id, 10)) }
func (s *Snapshotter) fsDir(id uint64) string { return filepath.Join(s.dir(id), "fs") }
func (s *Snapshotter) workDir(id uint64) string {
	return filepath.Join(s.dir(id), "work")
}

func (s *Snapshotter) cleanup() error {
	known := map[string]bool{"empty": true}
	if err := s.db.View(func(tx *bolt.Tx) error {
		return meta.ForEachJSON(tx, bucket, func(_ string, r *record) error {
			known[strconv.FormatUint(r.ID, 10)] = true
			return nil
		})
	}); err != nil {
		return fmt.Errorf("read snapshots: %w", err)
	}
	entries, err := os.ReadDir(s.root)
	if err != nil {
		return fmt.Errorf("read snapshot root: %w", err)
	}
	for _, e := range entries {
		if known[e.Name()] {
			continue
		}
		if err := os.RemoveAll(filepath.Join(s.root, e.Name())); err != nil {
			return fmt.Errorf("remove stale snapshot directory: %w", err)
		}
	}
	return nil
}

func notFound(key string) error { return errdefs.NotFound("snapshot %s: not found", key) }

func getRecord(tx *bolt.Tx, key string) (*record, error) {
	r := &record{}
	ok, err := meta.GetJSON(tx, bucket, key, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, notFound(key)
	}
	return r, nil
}

// Prepare creates an active (writable) snapshot named key on top of the
// committed snapshot parent ("" for an empty one) and returns its mounts.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error) {
	return s.create(ctx, KindActive, key, parent, opts)
}

// View creates a read-only snapshot named key of the committed snapshot
// parent and returns its mounts.
func (s *Snapshotter) View(ctx context.Context, key, parent string, opts ...Opt) ([]Mount, error) {
	return s.create(ctx, KindView, key, parent, opts)
}

func (s *Snapshotter) create(ctx context.Context, kind Kind, key, parent string, opts []Opt) (_ []Mount, err error) {
	if key == "" {
		return nil, errdefs.Invalid("snapshot key must not be empty")
	}
	// Build the directory aside, then rename it into place in the
	// transaction that records it.
	tmp, err := os.MkdirTemp(s.root, "new-")
	if err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	defer func() {
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Mkdir(filepath.Join(tmp, "fs"), 0o755); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if err := os.Chmod(filepath.Join(tmp, "fs"), 0o755); err != nil { // whatever the umask
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}
	if kind == KindActive {
		if err := os.Mkdir(filepath.Join(tmp, "work"), 0o700); err != nil {
			return nil, fmt.Errorf("create snapshot %s: %w", key, err)
		}
	}
	if err := os.Chmod(tmp, 0o711); err != nil {
		return nil, fmt.Errorf("create snapshot %s: %w", key, err)
	}

	var mounts []Mount
	var placed string // the directory's final name once renamed
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket)
		if b.Get([]byte(key)) != nil {
			return errdefs.Conflict("snapshot %s: already exists", key)
		}
		if parent != "" {
			p, err := getRecord(tx, parent)
			if err != nil {
				return fmt.Errorf("parent of %s: %w", key, err)
			}
			if p.Kind != KindCommitted {
				return errdefs.Invalid("parent snapshot %s is not committed", parent)
			}
			// The new layer's root directory (which overlayfs shows as
			// "/") takes the owner of the layer it sits on, and mode
			// 0755 whatever the image's root entry said: Docker's
			// overlay2 and containerd do the same, so an image imported
			// from a tar of a 0700 temp directory still lets USER nobody in.
			var st unix.Stat_t
			if err := unix.Lstat(s.fsDir(p.ID), &st); err == nil {
				upper := filepath.Join(tmp, "fs")
				if err := unix.Lchown(upper, int(st.Uid), int(st.Gid)); err != nil {
					return fmt.Errorf("create snapshot %s: %w", key, err)
				}
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return fmt.Errorf("allocate snapshot id: %w", err)
		}
		r := &record{ID: id, Kind: kind, Parent: parent, Created: time.Now().UTC()}
		for _, o := range opts {
			o(r)
		}
		if err := meta.PutJSON(tx, bucket, key, r); err != nil {
			return err
		}
		if mounts, err = s.mounts(tx, r); err != nil {
			return err
		}
		if err := os.Rename(tmp, s.dir(id)); err != nil {
			return fmt.Errorf("create snapshot %s: %w", key, err)
		}
		placed, tmp = s.dir(id), ""
		return nil
	})
	if err != nil {
		if placed != "" {
			// The transaction failed after the rename: nothing names
			// the directory, and its id will be handed out again.
			os.RemoveAll(placed)
		}
		return nil, err
	}
	return mounts, nil
}

// Mounts returns the mounts of the active snapshot or view named key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]Mount, error) {
	var mounts []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if r.Kind == KindCommitted {
			return errdefs.Invalid("snapshot %s is committed: mount a view of it instead", key)
		}
		mounts, err = s.mounts(tx, r)
		return err
	})
	return mounts, err
}

// lowers returns the fs dirs of r's committed ancestors, nearest first.
func (s *Snapshotter) lowers(tx *bolt.Tx, r *record) ([]string, error) {
	var dirs []string
	for parent := r.Parent; parent != ""; {
		p, err := getRecord(tx, parent)
		if err != nil {
			return nil, fmt.Errorf("snapshot chain is broken: %w", err)
		}
		dirs = append(dirs, s.fsDir(p.ID))
		parent = p.Parent
		if len(dirs) > 1000 {
			return nil, fmt.Errorf("snapshot chain of %s is too long (a loop?)", parent)
		}
	}
	return dirs, nil
}

func (s *Snapshotter) mounts(tx *bolt.Tx, r *record) ([]Mount, error) {
	lowers, err := s.lowers(tx, r)
	if err != nil {
		return nil, err
	}
	if r.Kind == KindView {
		switch len(lowers) {
		case 0:
			return []Mount{mount.Bind(s.fsDir(r.ID), true)}, nil
		case 1:
			// overlay needs two lowers when there is no upper dir.
			return []Mount{mount.Bind(lowers[0], true)}, nil
		}
		return []Mount{mount.Overlay(lowers, "", "")}, nil
	}
	if len(lowers) == 0 {
		// Keep an overlay even without a parent so that every container
		// root is mounted the same way.
		lowers = []string{s.emptyDir()}
	}
	return []Mount{mount.Overlay(lowers, s.fsDir(r.ID), s.workDir(r.ID))}, nil
}

// Dirs returns the directories of the active snapshot key.
func (s *Snapshotter) Dirs(ctx context.Context, key string) (Dirs, error) {
	var d Dirs
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return errdefs.Invalid("snapshot %s is %s, not active", key, r.Kind)
		}
		if d.Lowers, err = s.lowers(tx, r); err != nil {
			return err
		}
		d.Upper, d.Work = s.fsDir(r.ID), s.workDir(r.ID)
		return nil
	})
	return d, err
}

// UpperDir returns the directory that receives the writes of the active
// snapshot key: the place to apply a layer into, or to diff a container from.
func (s *Snapshotter) UpperDir(ctx context.Context, key string) (string, error) {
	d, err := s.Dirs(ctx, key)
	return d.Upper, err
}

// Commit turns the active snapshot key into the committed snapshot name,
// which others can then use as a parent. The layer keeps its directory.
func (s *Snapshotter) Commit(ctx context.Context, name, key string, opts ...Opt) error {
	if name == "" {
		return errdefs.Invalid("snapshot name must not be empty")
	}
	var id uint64
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if r.Kind != KindActive {
			return errdefs.Invalid("snapshot %s is %s, only an active snapshot can be committed", key, r.Kind)
		}
		if tx.Bucket(bucket).Get([]byte(name)) != nil {
			return errdefs.Conflict("snapshot %s: already exists", name)
		}
		r.Kind = KindCommitted
		r.Created = time.Now().UTC()
		for _, o := range opts {
			o(r)
		}
		if err := meta.Delete(tx, bucket, key); err != nil {
			return err
		}
		id = r.ID
		return meta.PutJSON(tx, bucket, name, r)
	})
	if err != nil {
		return err
	}
	// The work dir is only needed while the layer is an upper dir.
	os.RemoveAll(s.workDir(id))
	return nil
}

// Remove deletes the snapshot key and its files. A committed snapshot that
// others are built on cannot be removed (Conflict).
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var trash, from string
	err := s.db.Update(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		if child := childOf(tx, key); child != "" {
			return errdefs.Conflict("cannot remove snapshot %s: snapshot %s is based on it", key, child)
		}
		if err := meta.Delete(tx, bucket, key); err != nil {
			return err
		}
		// Move the files out of the way in the transaction; the slow
		// removal happens after it, and New finishes it after a crash.
		trash = filepath.Join(s.root, "rm-"+strconv.FormatUint(r.ID, 10)+"-"+randomSuffix())
		if err := os.Rename(s.dir(r.ID), trash); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove snapshot %s: %w", key, err)
		}
		from = s.dir(r.ID)
		return nil
	})
	if err != nil {
		if from != "" {
			os.Rename(trash, from) // the record is still there: so are the files
		}
		return err
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("remove snapshot %s files: %w", key, err)
	}
	return nil
}

func randomSuffix() string {
	var b [4]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func childOf(tx *bolt.Tx, key string) string {
	var child string
	errStop := errors.New("stop")
	meta.ForEachJSON(tx, bucket, func(k string, r *record) error {
		if r.Parent == key {
			child = k
			return errStop
		}
		return nil
	})
	return child
}

// Stat describes the snapshot key.
func (s *Snapshotter) Stat(ctx context.Context, key string) (Info, error) {
	var info Info
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		info = r.info(key)
		return nil
	})
	return info, err
}

func (r *record) info(key string) Info {
	return Info{Key: key, Kind: r.Kind, Parent: r.Parent, Created: r.Created, Labels: r.Labels}
}

// Walk calls fn for every snapshot, in key order.
func (s *Snapshotter) Walk(ctx context.Context, fn func(Info) error) error {
	var infos []Info
	if err := s.db.View(func(tx *bolt.Tx) error {
		return meta.ForEachJSON(tx, bucket, func(k string, r *record) error {
			infos = append(infos, r.info(k))
			return nil
		})
	}); err != nil {
		return err
	}
	// fn runs outside the transaction so it may call back into s.
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Usage measures the snapshot's own layer: for an active snapshot, what the
// container wrote; for a committed one, the layer's unpacked size.
func (s *Snapshotter) Usage(ctx context.Context, key string) (Usage, error) {
	var id uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		r, err := getRecord(tx, key)
		if err != nil {
			return err
		}
		id = r.ID
		return nil
	})
	if err != nil {
		return Usage{}, err
	}
	return diskUsage(ctx, s.fsDir(id))
}

func diskUsage(ctx context.Context, root string) (Usage, error) {
	var u Usage
	type inode struct{ dev, ino uint64 }
	seen := map[inode]bool{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a running container)
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("stat %s: %w", p, err)
		}
		in := inode{uint64(st.Dev), st.Ino}
		if seen[in] {
			return nil
		}
		seen[in] = true
		u.Inodes++
		if p != root && st.Mode&unix.S_IFMT != unix.S_IFDIR {
			u.Size += st.Size
		}
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("measure snapshot: %w", err)
	}
	return u, nil
}
