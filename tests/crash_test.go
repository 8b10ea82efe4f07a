package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// A crash inside create, after the writable layer and the container's
// directory were made but before its record was written, leaves nothing once
// the engine starts again.
func TestCrashDuringCreateLeavesNothing(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	id := strings.TrimSpace(d.must("create", "busybox", "true"))
	d.kill9()
	// Take the record away, as if the engine died just before writing it.
	db, err := bolt.Open(filepath.Join(d.root, "data", "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("engine.containers.v1")).Delete([]byte(id))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(d.root, "exec", "containers", strings.Repeat("ab", 32))
	os.MkdirAll(stray, 0o700)
	d.start()

	if out := d.must("ps", "-aq"); out != "" {
		t.Errorf("ps after restart: %q", out)
	}
	for _, p := range []string{filepath.Join(d.root, "data", "containers", id), stray} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s left behind", p)
		}
	}
	// Only the image's own layer remains among the snapshots.
	entries, _ := os.ReadDir(filepath.Join(d.root, "data", "snapshots"))
	var layers []string
	for _, e := range entries {
		if e.Name() != "empty" {
			layers = append(layers, e.Name())
		}
	}
	if len(layers) != 1 {
		t.Errorf("snapshots after restart: %v, want only the image layer", layers)
	}
}
