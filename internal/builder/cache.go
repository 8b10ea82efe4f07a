package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/meta"
)

// bucketCache maps a step's cache key to the image the step made:
//
//	builder.cache.v1
//	  <key: hex sha256 of cacheKey's JSON> -> <image id> (text)
//
// Only builds write it, so an image pulled or loaded is never a cache hit.
// An entry whose image has gone is a miss and is overwritten by the next
// build of that step.
var bucketCache = []byte("builder.cache.v1")

// cacheKey is everything a step's result depends on. Two steps with equal
// keys make the same image (up to timestamps):
//   - Parent: the image the step starts from ("" for scratch, with
//     Platform then telling what scratch is);
//   - CreatedBy: the normalized instruction as history shows it; for RUN it
//     carries the build args in effect ("|1 X=y /bin/sh -c ..."), for
//     COPY/ADD the checksum of the content copied and the destination;
//   - Config and Author: the image config after the step, so every change
//     of ENV, LABEL, USER, WORKDIR... that the step made is part of the key.
type cacheKey struct {
	Parent    string                          `json:"parent"`
	Platform  string                          `json:"platform,omitempty"`
	CreatedBy string                          `json:"createdBy"`
	Config    dockerspec.DockerOCIImageConfig `json:"config"`
	Author    string                          `json:"author,omitempty"`
}

func (k cacheKey) hash() (string, error) {
	b, err := json.Marshal(k)
	if err != nil {
		return "", fmt.Errorf("encode cache key: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// cache is the build cache in meta.db.
type cache struct{ db *meta.DB }

func newCache(db *meta.DB) (*cache, error) {
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketCache)
		return err
	}); err != nil {
		return nil, fmt.Errorf("init build cache bucket: %w", err)
	}
	return &cache{db: db}, nil
}

// get returns the image id recorded for key, or "".
func (c *cache) get(key string) (string, error) {
	var id string
	err := c.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketCache); b != nil {
			id = string(b.Get([]byte(key)))
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("read build cache: %w", err)
	}
	return id, nil
}

// put records that key made image id.
func (c *cache) put(key, id string) error {
	err := c.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketCache)
		if err != nil {
			return err
		}
		return b.Put([]byte(key), []byte(id))
	})
	if err != nil {
		return fmt.Errorf("write build cache: %w", err)
	}
	return nil
}

// entries lists the cache as key -> image id.
func (c *cache) entries() (map[string]string, error) {
	out := map[string]string{}
	err := c.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			out[string(k)] = string(v)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read build cache: %w", err)
	}
	return out, nil
}

// remove deletes the entries keys.
func (c *cache) remove(keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	err := c.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCache)
		if b == nil {
			return nil
		}
		for _, k := range keys {
			if err := b.Delete([]byte(k)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("prune build cache: %w", err)
	}
	return nil
}
