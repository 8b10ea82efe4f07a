package engine

import (
	"context"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/internal/snapshot"
)

// removeOrphans deletes what a crash between the steps of create or remove
// can leave without a container record: writable snapshots, container
// directories and bundles. Called at start-up, after the records are loaded.
func (e *Engine) removeOrphans(ctx context.Context) {
	known := map[string]bool{}
	for _, c := range e.reg.all() {
		known[c.ID] = true
	}
	var stale []string
	e.snaps.Walk(ctx, func(i snapshot.Info) error {
		if id, ok := strings.CutPrefix(i.Key, "container-"); ok && !known[id] {
			stale = append(stale, i.Key)
		}
		return nil
	})
	for _, key := range stale {
		if err := e.snaps.Remove(ctx, key); err != nil {
			e.log.Warn("remove orphaned snapshot", "key", key, "err", err)
		}
	}
	for _, dir := range []string{filepath.Join(e.cfg.DataRoot, "containers"), filepath.Join(e.cfg.ExecRoot, "containers")} {
		entries, _ := os.ReadDir(dir)
		for _, ent := range entries {
			if !known[ent.Name()] {
				os.RemoveAll(filepath.Join(dir, ent.Name()))
			}
		}
	}
}
