// Package meta opens skiff's metadata database: one bbolt file,
// <data-root>/meta.db. Each store owns its own top-level buckets and writes
// them in bbolt transactions, so every change that matters is atomic.
//
// Schema (version 1). Bucket names carry the owner and a version, so a store
// can change its layout by moving to a new bucket without touching the
// others. All values are JSON unless noted.
//
//	meta.v1                         owned by meta
//	  schema        -> "1"          schema version of this file (decimal text)
//	snapshot.v1                     owned by snapshot
//	  <key>         -> snapshot.record {id, kind, parent, created, labels}
//	                   key: the snapshot's name ("sha256:<chain id>" for image
//	                   layers, "container-<id>" for containers, ...); id: the
//	                   numeric directory under <data-root>/snapshots
//	image.images.v1                 owned by image
//	  <image id>    -> image.record {manifest, layers, size, parent, ...};
//	                   image id: "sha256:<hex of the config blob>"
//	image.refs.v1                   owned by image
//	  <reference>   -> <image id> (text); reference: fully normalized,
//	                   "docker.io/library/busybox:latest" or
//	                   "docker.io/library/busybox@sha256:<manifest hex>"
//	image.leases.v1                 owned by image (image/lease.go)
//	  <lease id>/   (bucket)        one lease: what an operation (pull,
//	                   import, load, commit, build) holds until an image
//	                   record names it
//	    created     -> RFC 3339 time (text)
//	    expires     -> RFC 3339 time (text); absent: the lease ends with
//	                   the engine that made it (removed at the next start)
//	    content/    <digest> -> ""      blobs held
//	    snapshots/  <key> -> ""         snapshots held
//	    images/     <image id> -> ""    images held (kept from prune)
//	engine.containers.v1            owned by engine
//	  <container id> -> engine.Container
//	volume.v1                       owned by volume
//	  <volume name> -> volume.Volume {name, driver, labels, options, created}
//
// Blobs (layers, configs, manifests) are not in this file: they live in the
// content store and are named by digest; the records above refer to them.
package meta

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// SchemaVersion is the layout this code reads and writes.
const SchemaVersion = 1

var (
	bucketMeta = []byte("meta.v1")
	keySchema  = []byte("schema")
)

// openTimeout bounds the wait for bbolt's file lock. A second daemon on the
// same data root must fail at once with a clear message, not hang.
const openTimeout = 500 * time.Millisecond

// DB is the open metadata database.
type DB struct {
	bolt *bolt.DB
}

// Open opens (creating if needed) the database at path, typically
// <data-root>/meta.db. It fails with an Unavailable error when another
// process holds it.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o710); err != nil {
		return nil, fmt.Errorf("create metadata directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: openTimeout,
		// The freelist is rebuilt on open; not syncing it makes every
		// write transaction cheaper.
		NoFreelistSync: true,
		FreelistType:   bolt.FreelistMapType,
	})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, errdefs.Unavailable("data root in use by another skiff daemon (%s is locked)", path)
	}
	if err != nil {
		return nil, fmt.Errorf("open metadata database %s: %w", path, err)
	}
	d := &DB{bolt: db}
	if err := d.checkSchema(); err != nil {
		db.Close()
		return nil, err
	}
	return d, nil
}

func (d *DB) checkSchema() error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketMeta, err)
		}
		v := b.Get(keySchema)
		if v == nil {
			return b.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
		}
		n, err := strconv.Atoi(string(v))
		if err != nil {
			return fmt.Errorf("metadata database: bad schema version %q", v)
		}
		if n > SchemaVersion {
			return fmt.Errorf("metadata database has schema version %d, this skiff reads up to %d: upgrade skiff", n, SchemaVersion)
		}
		return nil
	})
}

// Bolt gives the underlying database so each store can own its buckets.
func (d *DB) Bolt() *bolt.DB { return d.bolt }

// Update runs fn in a read-write transaction.
func (d *DB) Update(fn func(tx *bolt.Tx) error) error { return d.bolt.Update(fn) }

// View runs fn in a read-only transaction.
func (d *DB) View(fn func(tx *bolt.Tx) error) error { return d.bolt.View(fn) }

// Close releases the file and its lock.
func (d *DB) Close() error { return d.bolt.Close() }

// PutJSON stores v as JSON under key in bucket, creating the bucket.
func PutJSON(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := tx.CreateBucketIfNotExists(bucket)
	if err != nil {
		return fmt.Errorf("create bucket %s: %w", bucket, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s/%s: %w", bucket, key, err)
	}
	if err := b.Put([]byte(key), data); err != nil {
		return fmt.Errorf("write %s/%s: %w", bucket, key, err)
	}
	return nil
}

// GetJSON decodes the value under key in bucket into v. It reports false
// when the bucket or the key does not exist.
func GetJSON(tx *bolt.Tx, bucket []byte, key string, v any) (bool, error) {
	b := tx.Bucket(bucket)
	if b == nil {
		return false, nil
	}
	data := b.Get([]byte(key))
	if data == nil {
		return false, nil
	}
	if err := json.Unmarshal(data, v); err != nil {
		return true, fmt.Errorf("decode %s/%s: %w", bucket, key, err)
	}
	return true, nil
}

// Delete removes key from bucket; a missing bucket or key is not an error.
func Delete(tx *bolt.Tx, bucket []byte, key string) error {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	if err := b.Delete([]byte(key)); err != nil {
		return fmt.Errorf("delete %s/%s: %w", bucket, key, err)
	}
	return nil
}

// ForEachJSON decodes every value in bucket into a fresh T and calls fn with
// its key, in key order. A missing bucket has no values.
func ForEachJSON[T any](tx *bolt.Tx, bucket []byte, fn func(key string, v *T) error) error {
	b := tx.Bucket(bucket)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, data []byte) error {
		v := new(T)
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("decode %s/%s: %w", bucket, k, err)
		}
		return fn(string(k), v)
	})
}
