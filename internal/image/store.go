// Package image keeps skiff's images: references normalized like Docker's,
// image records, import of root filesystem tarballs, tag, untag and delete.
//
// An image is stored the OCI way: its config and manifest are blobs in the
// content store (the image id is the config's digest), each layer is a blob
// there too, and each layer is unpacked once into a committed snapshot keyed
// by its chain id, on top of the snapshot of the layers below. Records in
// the meta database tie them together (buckets image.images.v1 and
// image.refs.v1, see package meta). Blobs and snapshots are shared between
// images and removed when the last image using them goes.
//
// Content and snapshots are owned by images and leases: whatever no image
// record and no lease names is garbage, collected when the store opens
// (after a crash) and by GC. Operations that make new objects hold them in
// a lease until the image record names them (lease.go).
package image

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/content"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

var (
	bucketImages = []byte("image.images.v1")
	bucketRefs   = []byte("image.refs.v1")
)

// Layer is one layer of an image, bottom first in Image.Layers.
type Layer struct {
	Digest    digest.Digest `json:"digest"`    // the blob in the content store
	DiffID    digest.Digest `json:"diffID"`    // digest of the uncompressed tar
	MediaType string        `json:"mediaType"` // OCI layer media type of the blob
	Size      int64         `json:"size"`      // blob size
	// UnpackedSize is the sum of the layer's file sizes, what Docker
	// reports as a layer's size.
	UnpackedSize int64 `json:"unpackedSize"`
}

// Image is an image with everything a caller may want to show.
type Image struct {
	ID             string // "sha256:<hex>", the digest of the config blob
	Config         dockerspec.DockerOCIImage
	ManifestDigest digest.Digest
	Layers         []Layer
	DiffIDs        []digest.Digest // Layers' DiffIDs, bottom first
	LayerSizes     []int64         // Layers' UnpackedSizes, bottom first
	RepoTags       []string        // familiar: "busybox:latest"
	RepoDigests    []string        // familiar: "busybox@sha256:..."
	Created        time.Time
	Size           int64  // sum of LayerSizes
	Parent         string // id of the image this one was built from, or ""
	LastTagTime    time.Time
}

// record is the stored form of an image (the config lives in content).
type record struct {
	Manifest    digest.Digest `json:"manifest"`
	Layers      []Layer       `json:"layers"`
	Created     time.Time     `json:"created"`
	Size        int64         `json:"size"`
	Parent      string        `json:"parent,omitempty"`
	LastTagTime time.Time     `json:"lastTagTime,omitzero"`
}

// Store is the image store.
type Store struct {
	db *meta.DB
	cs *content.Store
	sn *snapshot.Snapshotter

	// mu orders adding objects to leases against collecting: Hold takes
	// it for reading for one short transaction, before the object it
	// holds appears; GC (also Delete's) takes it for writing while it
	// reads its roots and removes what they do not name. No operation
	// holds it across network or unpacking I/O.
	mu sync.RWMutex

	lmu    sync.Mutex             // guards leases
	leases map[string]*leaseState // the leases this process made, by id

	configs sync.Map // image id -> *dockerspec.DockerOCIImage (immutable)
}

// NewStore opens the image store and collects what a crash left behind:
// the leases of the operations the previous engine was running (and
// expired ones), then everything that only they held.
func NewStore(db *meta.DB, cs *content.Store, sn *snapshot.Snapshotter) (*Store, error) {
	s := &Store{db: db, cs: cs, sn: sn, leases: map[string]*leaseState{}}
	if err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketImages, bucketRefs, bucketLeases} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return nil, fmt.Errorf("init image buckets: %w", err)
	}
	if err := s.removeOrphanedLeases(); err != nil {
		return nil, err
	}
	if err := s.GC(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// ChainIDs returns the snapshot keys of img's layers, bottom first.
func ChainIDs(img *Image) []digest.Digest {
	return identity.ChainIDs(slices.Clone(img.DiffIDs))
}

// RootFSParent is the snapshot to Prepare a container's root filesystem on:
// the chain id of img's top layer, or "" for an image without layers.
func (s *Store) RootFSParent(img *Image) string {
	if len(img.DiffIDs) == 0 {
		return ""
	}
	return identity.ChainID(img.DiffIDs).String()
}

// Get finds an image by any of the names Docker accepts: name[:tag],
// name@digest, a full id with or without "sha256:", or a unique prefix of
// an id.
func (s *Store) Get(ctx context.Context, refOrID string) (*Image, error) {
	var img *Image
	err := s.db.View(func(tx *bolt.Tx) error {
		id, err := resolve(tx, refOrID)
		if err != nil {
			return err
		}
		img, err = s.load(ctx, tx, id)
		return err
	})
	return img, err
}

// resolve turns refOrID into an image id, the way Docker looks names up:
// references first, then ids and id prefixes.
func resolve(tx *bolt.Tx, refOrID string) (string, error) {
	if refOrID == "" {
		return "", errdefs.Invalid("invalid reference format: empty image name")
	}
	images := tx.Bucket(bucketImages)
	if hex, ok := strings.CutPrefix(refOrID, "sha256:"); ok {
		if isHex(hex) {
			return idByPrefix(images, hex, refOrID)
		}
		return "", errdefs.Invalid("invalid reference format: %s", refOrID)
	}
	if len(refOrID) == 64 && isHex(refOrID) {
		return idByPrefix(images, refOrID, refOrID)
	}
	named, perr := ParseReference(refOrID)
	if perr == nil {
		if id := tx.Bucket(bucketRefs).Get([]byte(named.String())); id != nil {
			return string(id), nil
		}
	}
	if isHex(refOrID) {
		if id, err := idByPrefix(images, refOrID, refOrID); err == nil || !errdefs.IsNotFound(err) {
			return id, err
		}
	}
	if perr != nil {
		return "", perr
	}
	return "", errdefs.NotFound("No such image: %s", reference.FamiliarString(named))
}

func idByPrefix(images *bolt.Bucket, hexPrefix, asGiven string) (string, error) {
	prefix := []byte("sha256:" + hexPrefix)
	c := images.Cursor()
	k, _ := c.Seek(prefix)
	if k == nil || !strings.HasPrefix(string(k), string(prefix)) {
		return "", errdefs.NotFound("No such image: %s", asGiven)
	}
	if k2, _ := c.Next(); k2 != nil && strings.HasPrefix(string(k2), string(prefix)) {
		return "", errdefs.Invalid("multiple IDs found with provided prefix: %s", asGiven)
	}
	return string(k), nil
}

func getRecord(tx *bolt.Tx, id string) (*record, error) {
	r := &record{}
	ok, err := meta.GetJSON(tx, bucketImages, id, r)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errdefs.NotFound("No such image: %s", id)
	}
	return r, nil
}

// refsOf returns the stored references that point at id, sorted.
func refsOf(tx *bolt.Tx, id string) []string {
	var refs []string
	tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
		if string(v) == id {
			refs = append(refs, string(k))
		}
		return nil
	})
	return refs
}

func (s *Store) config(ctx context.Context, id string) (*dockerspec.DockerOCIImage, error) {
	if c, ok := s.configs.Load(id); ok {
		return c.(*dockerspec.DockerOCIImage), nil
	}
	data, err := s.cs.ReadAll(ctx, digest.Digest(id))
	if err != nil {
		return nil, fmt.Errorf("image %s: config: %w", ShortID(id), err)
	}
	cfg := &dockerspec.DockerOCIImage{}
	if err := json.Unmarshal(data, cfg); err != nil {
		return nil, fmt.Errorf("image %s: decode config: %w", ShortID(id), err)
	}
	s.configs.Store(id, cfg)
	return cfg, nil
}

func (s *Store) load(ctx context.Context, tx *bolt.Tx, id string) (*Image, error) {
	r, err := getRecord(tx, id)
	if err != nil {
		return nil, err
	}
	return s.build(ctx, id, r, refsOf(tx, id))
}

func (s *Store) build(ctx context.Context, id string, r *record, refs []string) (*Image, error) {
	cfg, err := s.config(ctx, id)
	if err != nil {
		return nil, err
	}
	img := &Image{
		ID: id, Config: *cfg, ManifestDigest: r.Manifest, Layers: r.Layers,
		Created: r.Created, Size: r.Size, Parent: r.Parent, LastTagTime: r.LastTagTime,
	}
	for _, l := range r.Layers {
		img.DiffIDs = append(img.DiffIDs, l.DiffID)
		img.LayerSizes = append(img.LayerSizes, l.UnpackedSize)
	}
	for _, ref := range refs {
		if strings.Contains(ref, "@") {
			img.RepoDigests = append(img.RepoDigests, Familiar(ref))
		} else {
			img.RepoTags = append(img.RepoTags, Familiar(ref))
		}
	}
	return img, nil
}

// List returns every image, newest first.
func (s *Store) List(ctx context.Context) ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *bolt.Tx) error {
		refs := map[string][]string{}
		tx.Bucket(bucketRefs).ForEach(func(k, v []byte) error {
			refs[string(v)] = append(refs[string(v)], string(k))
			return nil
		})
		return meta.ForEachJSON(tx, bucketImages, func(id string, r *record) error {
			img, err := s.build(ctx, id, r, refs[id])
			if err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// Tag points the reference ref (name[:tag]; "latest" when no tag is given)
// at the image idOrRef, moving it from any image it named before.
func (s *Store) Tag(ctx context.Context, idOrRef, ref string) error {
	named, err := parseTag(ref)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		id, err := resolve(tx, idOrRef)
		if err != nil {
			return err
		}
		return setRef(tx, named.String(), id)
	})
}

func setRef(tx *bolt.Tx, ref, id string) error {
	r, err := getRecord(tx, id)
	if err != nil {
		return err
	}
	r.LastTagTime = time.Now().UTC()
	if err := meta.PutJSON(tx, bucketImages, id, r); err != nil {
		return err
	}
	return tx.Bucket(bucketRefs).Put([]byte(ref), []byte(id))
}

// Untag removes the reference ref and returns the id it named.
func (s *Store) Untag(ctx context.Context, ref string) (string, error) {
	named, err := ParseReference(ref)
	if err != nil {
		return "", err
	}
	var id string
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketRefs)
		v := b.Get([]byte(named.String()))
		if v == nil {
			return errdefs.NotFound("No such image: %s", reference.FamiliarString(named))
		}
		id = string(v)
		return b.Delete([]byte(named.String()))
	})
	return id, err
}

// GC removes what no image and no lease names: temporary snapshots of
// interrupted imports, layer snapshots (nothing built on them), blobs; and
// expired leases.
func (s *Store) GC(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gcLocked(ctx)
}

func (s *Store) gcLocked(ctx context.Context) error {
	usedBlobs, usedChains, expired, err := s.roots()
	if err != nil {
		return err
	}
	if expired > 0 {
		now := time.Now()
		if _, err := s.removeLeases(func(l Lease) bool { return !l.expired(now) }); err != nil {
			return err
		}
	}
	// Snapshots: repeat, because removing a layer may free its parent.
	for {
		removed := 0
		var candidates []snapshot.Info
		if err := s.sn.Walk(ctx, func(i snapshot.Info) error {
			candidates = append(candidates, i)
			return nil
		}); err != nil {
			return err
		}
		for _, i := range candidates {
			stale := !usedChains[i.Key] && (strings.HasPrefix(i.Key, importKeyPrefix) ||
				(i.Kind == snapshot.KindCommitted && strings.HasPrefix(i.Key, "sha256:")))
			if !stale {
				continue
			}
			err := s.sn.Remove(ctx, i.Key)
			if err == nil {
				removed++
			} else if !errdefs.IsConflict(err) && !errdefs.IsNotFound(err) {
				return fmt.Errorf("collect snapshot %s: %w", i.Key, err)
			}
		}
		if removed == 0 {
			break
		}
	}
	var stale []digest.Digest
	if err := s.cs.Walk(ctx, func(i content.Info) error {
		if !usedBlobs[i.Digest] {
			stale = append(stale, i.Digest)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, d := range stale {
		if err := s.cs.Delete(ctx, d); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("collect blob %s: %w", d, err)
		}
	}
	return nil
}

// roots lists the blobs and snapshots that image records and unexpired
// leases name, and counts the expired leases.
func (s *Store) roots() (map[digest.Digest]bool, map[string]bool, int, error) {
	blobs := map[digest.Digest]bool{}
	chains := map[string]bool{}
	expired := 0
	err := s.db.View(func(tx *bolt.Tx) error {
		expired = s.leaseRoots(tx, blobs, chains)
		return meta.ForEachJSON(tx, bucketImages, func(id string, r *record) error {
			blobs[digest.Digest(id)] = true
			blobs[r.Manifest] = true
			var diffIDs []digest.Digest
			for _, l := range r.Layers {
				blobs[l.Digest] = true
				diffIDs = append(diffIDs, l.DiffID)
			}
			for _, c := range identity.ChainIDs(diffIDs) {
				chains[c.String()] = true
			}
			return nil
		})
	})
	if err != nil {
		return nil, nil, 0, fmt.Errorf("list images: %w", err)
	}
	return blobs, chains, expired, nil
}

var errStop = errors.New("stop")
