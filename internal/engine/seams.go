package engine

import (
	"context"
	"fmt"
	"os"

	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/meta"
	skinet "github.com/skiff-dev/skiff/internal/network"
	"github.com/skiff-dev/skiff/internal/snapshot"
)

// The engine reaches its records and the host through the small
// interfaces below, so that the lifecycle (start, exit, restart policy,
// pause, remove) has unit tests without root: lifecycle_test.go gives the
// engine fakes. The production implementations are bbolt, the network
// controller and the cgroups package.

// containerStore keeps the container records, one JSON document per id.
type containerStore interface {
	Put(id string, record []byte) error
	Delete(id string) error
	ForEach(fn func(id string, record []byte) error) error
}

// netAttacher gives a starting container its network and takes it back
// (the network controller, internal/network). The rest of the controller
// (networks, connect, settings) is reached through Engine.net.
type netAttacher interface {
	Attach(req skinet.AttachRequest) (*skinet.ContainerNet, error)
	Detach(id string)
}

// rootfsStore is what start and remove need of the snapshotter: the
// mounts of a container's root filesystem, and its removal.
type rootfsStore interface {
	Mounts(ctx context.Context, key string) ([]snapshot.Mount, error)
	Remove(ctx context.Context, key string) error
}

// monitorSpawner starts the monitor of a container whose bundle is
// written: Spawn returns once the container's process exists (not yet
// released) and the bundle's monitor.sock listens (monitor.Pool).
type monitorSpawner interface {
	Spawn(ctx context.Context, bundle string) (*os.Process, error)
	Close()
}

// cgroupFactory returns the manager of the cgroup at path (cgroups.New):
// pause, unpause, update, top and stats act on a running container's
// cgroup through it.
type cgroupFactory func(path string) (cgroups.Manager, error)

func hostCgroup(path string) (cgroups.Manager, error) { return cgroups.New(path, nil) }

// boltContainers is containerStore in the engine's bbolt bucket.
type boltContainers struct{ db *bolt.DB }

func newBoltContainers(db *meta.DB) (boltContainers, error) {
	err := db.Bolt().Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketContainers)
		return err
	})
	if err != nil {
		return boltContainers{}, fmt.Errorf("init container bucket: %w", err)
	}
	return boltContainers{db.Bolt()}, nil
}

func (s boltContainers) Put(id string, record []byte) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Put([]byte(id), record)
	})
}

func (s boltContainers) Delete(id string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).Delete([]byte(id))
	})
}

func (s boltContainers) ForEach(fn func(id string, record []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketContainers).ForEach(func(k, v []byte) error {
			return fn(string(k), v)
		})
	})
}
