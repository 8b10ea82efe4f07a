package image

// Leases, containerd's model: a lease is a record that names the blobs,
// snapshots and images an operation is making or relying on before an
// image record references them. GC (and the file release of Delete)
// treats what a lease names as roots, so nothing is taken from under a
// pull, import, load, commit or build, and none of them holds a store lock
// across its network or disk I/O.
//
// The rule that makes it safe without a long lock: an object is added to
// the operation's lease (Hold) before it exists under its final name
// (before the blob's rename into the content store, the snapshot's Prepare
// or Commit), and an object the operation wants to reuse is held first and
// only then checked for. Hold takes the store's mutex for reading for the
// length of one bbolt transaction; GC takes it for writing while it reads
// the roots and removes what nothing roots. So a GC either sees the held
// object among its roots, or finishes before the object appears.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

var bucketLeases = []byte("image.leases.v1")

// Keys inside one lease's bucket.
var (
	leaseCreated = []byte("created")
	leaseExpires = []byte("expires")
)

// ResourceKind is the kind of object a lease holds; it is also the name of
// the nested bucket the lease keeps them in.
type ResourceKind string

const (
	// KindContent is a blob of the content store, by digest.
	KindContent ResourceKind = "content"
	// KindSnapshot is a snapshot by key: a committed layer ("sha256:<chain
	// id>") or a temporary one ("import-...").
	KindSnapshot ResourceKind = "snapshots"
	// KindImage is an image record by id. Images are not collected by GC;
	// image prune and the parent pruning of Delete leave leased images
	// alone (a build's intermediate images while the build runs).
	KindImage ResourceKind = "images"
)

var resourceKinds = []ResourceKind{KindContent, KindSnapshot, KindImage}

// Resource is one object a lease holds.
type Resource struct {
	Kind ResourceKind
	ID   string
}

// Blob is the content resource of digest d.
func Blob(d digest.Digest) Resource { return Resource{KindContent, d.String()} }

// Snapshot is the snapshot resource of key.
func Snapshot(key string) Resource { return Resource{KindSnapshot, key} }

// ImageResource is the image record resource of id.
func ImageResource(id string) Resource { return Resource{KindImage, id} }

// Lease is a lease as stored.
type Lease struct {
	ID      string
	Created time.Time
	// Expires is when the lease stops holding anything; zero: never, but
	// the lease lives only as long as the engine that made it (see
	// NewStore).
	Expires   time.Time
	Resources []Resource
}

// LeaseOptions are the optional parts of a new lease.
type LeaseOptions struct {
	// Expire, when set, ends the lease that long after its creation even
	// if nobody deletes it; such a lease also survives an engine restart
	// until then. Without it the lease belongs to this engine process.
	Expire time.Duration
}

// leaseState is what the store keeps in memory about a lease this process
// made: the temporary snapshots it holds (they are garbage after a
// restart whatever happens, so they are never written down), the
// resources already recorded (a second Hold of one costs nothing), and
// whether the lease is recorded yet: a lease without an expiry is written
// with its first resource, so an operation that stores nothing (a build
// whose every step is cached) costs no transaction.
type leaseState struct {
	created  time.Time
	recorded bool
	temps    map[string]bool
	held     map[Resource]bool
}

// putLease writes the lease record's own keys into its bucket b.
func putLease(b *bolt.Bucket, created, expires time.Time) error {
	if err := b.Put(leaseCreated, []byte(created.Format(time.RFC3339Nano))); err != nil {
		return err
	}
	if !expires.IsZero() {
		return b.Put(leaseExpires, []byte(expires.Format(time.RFC3339Nano)))
	}
	return nil
}

type leaseKey struct{}

// WithLease returns ctx carrying lease id: the store's writers (AddLayer,
// Create, Import, Load) add what they make to it.
func WithLease(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, leaseKey{}, id)
}

// LeaseFromContext returns the lease ctx carries, or "".
func LeaseFromContext(ctx context.Context) string {
	id, _ := ctx.Value(leaseKey{}).(string)
	return id
}

// CreateLease makes a new lease. One with an expiry is recorded at once;
// one without (it lives as long as this engine) is recorded with the
// first object it holds.
func (s *Store) CreateLease(ctx context.Context, opts LeaseOptions) (Lease, error) {
	var rnd [12]byte
	rand.Read(rnd[:])
	l := Lease{ID: hex.EncodeToString(rnd[:]), Created: time.Now().UTC()}
	st := &leaseState{created: l.Created, temps: map[string]bool{}, held: map[Resource]bool{}}
	if opts.Expire > 0 {
		l.Expires = l.Created.Add(opts.Expire)
		err := s.db.Update(func(tx *bolt.Tx) error {
			b, err := tx.Bucket(bucketLeases).CreateBucket([]byte(l.ID))
			if err != nil {
				return err
			}
			return putLease(b, l.Created, l.Expires)
		})
		if err != nil {
			return Lease{}, fmt.Errorf("create lease: %w", err)
		}
		st.recorded = true
	}
	s.lmu.Lock()
	s.leases[l.ID] = st
	s.lmu.Unlock()
	return l, nil
}

// DeleteLease ends lease id: what it held is garbage from now on unless an
// image record (or another lease) names it. Deleting needs no lock: it
// only gives GC more to take.
func (s *Store) DeleteLease(ctx context.Context, id string) error {
	s.lmu.Lock()
	st := s.leases[id]
	unrecorded := st != nil && !st.recorded
	delete(s.leases, id)
	s.lmu.Unlock()
	if unrecorded {
		return nil // nothing written down
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketLeases).DeleteBucket([]byte(id))
		if err == bolt.ErrBucketNotFound {
			return errdefs.NotFound("lease %s: not found", id)
		}
		return err
	})
	if err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("delete lease %s: %w", id, err)
	}
	return err
}

// Leased gives ctx a lease for one operation: the lease ctx already
// carries (release then does nothing: its owner ends it), or a new one,
// which release deletes. Release takes no context: it runs also when the
// operation's ctx has ended.
func (s *Store) Leased(ctx context.Context) (context.Context, func(), error) {
	if LeaseFromContext(ctx) != "" {
		return ctx, func() {}, nil
	}
	l, err := s.CreateLease(ctx, LeaseOptions{})
	if err != nil {
		return ctx, func() {}, err
	}
	var once sync.Once
	return WithLease(ctx, l.ID), func() {
		once.Do(func() { s.DeleteLease(context.Background(), l.ID) })
	}, nil
}

// Hold adds rs to the lease ctx carries. Hold an object before it appears
// (or before checking that it is there, to reuse it): from then on GC
// keeps it until the lease ends.
func (s *Store) Hold(ctx context.Context, rs ...Resource) error {
	id := LeaseFromContext(ctx)
	if id == "" {
		return errdefs.System("hold %v: no lease in the context", rs)
	}
	// Readers of mu are never kept waiting by each other; a GC (writer)
	// in progress makes this wait until it is done, so it never removes
	// what is held here.
	s.mu.RLock()
	defer s.mu.RUnlock()

	s.lmu.Lock()
	st := s.leases[id]
	record := st != nil && !st.recorded
	var todo []Resource
	for _, r := range rs {
		switch {
		case st != nil && r.Kind == KindSnapshot && strings.HasPrefix(r.ID, importKeyPrefix):
			st.temps[r.ID] = true
		case st != nil && st.held[r]:
		default:
			todo = append(todo, r)
		}
	}
	s.lmu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bucketLeases).Bucket([]byte(id))
		if lb == nil && record {
			// Its first object: the lease is recorded with it.
			var err error
			if lb, err = tx.Bucket(bucketLeases).CreateBucket([]byte(id)); err != nil {
				return err
			}
			if err := putLease(lb, st.created, time.Time{}); err != nil {
				return err
			}
		}
		if lb == nil {
			return errdefs.NotFound("lease %s: not found (ended or expired)", id)
		}
		for _, r := range todo {
			b, err := lb.CreateBucketIfNotExists([]byte(r.Kind))
			if err != nil {
				return err
			}
			if err := b.Put([]byte(r.ID), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("hold %d objects in lease %s: %w", len(todo), id, err)
	}
	if st != nil {
		s.lmu.Lock()
		st.recorded = true
		for _, r := range todo {
			st.held[r] = true
		}
		s.lmu.Unlock()
	}
	return nil
}

// Leases lists the stored leases with what they hold (temporary snapshots,
// kept in memory only, are left out).
func (s *Store) Leases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketLeases).ForEachBucket(func(k []byte) error {
			out = append(out, readLease(tx.Bucket(bucketLeases).Bucket(k), string(k)))
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, err
}

func readLease(b *bolt.Bucket, id string) Lease {
	l := Lease{ID: id}
	l.Created, _ = time.Parse(time.RFC3339Nano, string(b.Get(leaseCreated)))
	if v := b.Get(leaseExpires); v != nil {
		l.Expires, _ = time.Parse(time.RFC3339Nano, string(v))
	}
	for _, kind := range resourceKinds {
		if rb := b.Bucket([]byte(kind)); rb != nil {
			rb.ForEach(func(k, _ []byte) error {
				l.Resources = append(l.Resources, Resource{kind, string(k)})
				return nil
			})
		}
	}
	return l
}

func (l *Lease) expired(now time.Time) bool {
	return !l.Expires.IsZero() && !now.Before(l.Expires)
}

// LeasedImages is the set of image ids that leases hold.
func (s *Store) LeasedImages(ctx context.Context) (map[string]bool, error) {
	out := map[string]bool{}
	err := s.db.View(func(tx *bolt.Tx) error {
		for id := range leasedImages(tx) {
			out[id] = true
		}
		return nil
	})
	return out, err
}

// leasedImages is the set of image ids that unexpired leases hold.
func leasedImages(tx *bolt.Tx) map[string]bool {
	out := map[string]bool{}
	now := time.Now()
	tx.Bucket(bucketLeases).ForEachBucket(func(k []byte) error {
		l := readLease(tx.Bucket(bucketLeases).Bucket(k), string(k))
		if l.expired(now) {
			return nil
		}
		for _, r := range l.Resources {
			if r.Kind == KindImage {
				out[r.ID] = true
			}
		}
		return nil
	})
	return out
}

// removeLeases deletes the stored leases that keep returns false for.
func (s *Store) removeLeases(keep func(Lease) bool) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		lb := tx.Bucket(bucketLeases)
		var gone [][]byte
		lb.ForEachBucket(func(k []byte) error {
			if !keep(readLease(lb.Bucket(k), string(k))) {
				gone = append(gone, append([]byte(nil), k...))
			}
			return nil
		})
		for _, k := range gone {
			if err := lb.DeleteBucket(k); err != nil {
				return err
			}
		}
		n = len(gone)
		s.lmu.Lock()
		for _, k := range gone {
			delete(s.leases, string(k))
		}
		s.lmu.Unlock()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("remove leases: %w", err)
	}
	return n, nil
}

// removeOrphanedLeases runs when the store opens: a lease without an
// expiry belonged to an operation of the engine that ran before (a pull,
// a build, ... none survives its engine), and an expired one holds
// nothing. The GC that follows collects what they held.
func (s *Store) removeOrphanedLeases() error {
	now := time.Now()
	_, err := s.removeLeases(func(l Lease) bool { return !l.Expires.IsZero() && !l.expired(now) })
	return err
}

// leaseRoots adds what the leases hold to the GC's roots and lists the
// expired leases, for the GC to delete.
func (s *Store) leaseRoots(tx *bolt.Tx, blobs map[digest.Digest]bool, snaps map[string]bool) (expired int) {
	now := time.Now()
	tx.Bucket(bucketLeases).ForEachBucket(func(k []byte) error {
		l := readLease(tx.Bucket(bucketLeases).Bucket(k), string(k))
		if l.expired(now) {
			expired++
			return nil
		}
		for _, r := range l.Resources {
			switch r.Kind {
			case KindContent:
				blobs[digest.Digest(r.ID)] = true
			case KindSnapshot:
				snaps[r.ID] = true
			}
		}
		return nil
	})
	s.lmu.Lock()
	for _, st := range s.leases {
		for k := range st.temps {
			snaps[k] = true
		}
	}
	s.lmu.Unlock()
	return expired
}
