package engine

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/archive"
)

// ContainerChanges lists what changed in the container's filesystem against
// its image (docker diff): the overlay upper directory, read through
// archive.Diff (so whiteouts are understood the same way commit sees them),
// and each entry is Added unless a lower layer has the path (Changed);
// whiteouts are Deleted. Parents of a change are themselves Changed, as the
// upper directory holds them.
func (e *Engine) ContainerChanges(ctx context.Context, ref string) ([]container.FilesystemChange, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	key := c.SnapshotKey
	c.mu.Unlock()
	dirs, err := e.snaps.Dirs(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("changes of %s: %w", c.ID, err)
	}
	upper, lowers := dirs.Upper, dirs.Lowers
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(archive.Diff(ctx, upper, pw)) }()
	defer pr.Close()
	inLower := func(p string) bool {
		for _, l := range lowers {
			if _, err := os.Lstat(filepath.Join(l, p)); err == nil {
				return true
			}
		}
		return false
	}
	out := []container.FilesystemChange{}
	tr := tar.NewReader(pr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("changes of %s: %w", c.ID, err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		dir, base := path.Split(name)
		switch {
		case base == ".wh..wh..opq":
			continue
		case strings.HasPrefix(base, ".wh."):
			out = append(out, container.FilesystemChange{Kind: container.ChangeDelete, Path: "/" + dir + strings.TrimPrefix(base, ".wh.")})
		case inLower(name):
			out = append(out, container.FilesystemChange{Kind: container.ChangeModify, Path: "/" + name})
		default:
			out = append(out, container.FilesystemChange{Kind: container.ChangeAdd, Path: "/" + name})
		}
	}
	return hideEngineFiles(out), nil
}

// engineFiles are the engine's: written by it and bound in by the runtime
// (and skiff-init for --init). Their mount points are not the user's
// changes (Docker keeps them in an init layer, so its diff never shows them).
var engineFiles = map[string]bool{"/etc/hostname": true, "/etc/hosts": true, "/etc/resolv.conf": true, initPathInContainer: true}

// hideEngineFiles drops the engine's files, and their directories when
// nothing else in them changed (they were only made or copied up to hold
// the mount points).
func hideEngineFiles(in []container.FilesystemChange) []container.FilesystemChange {
	var kept []container.FilesystemChange
	for _, ch := range in {
		if engineFiles[ch.Path] && ch.Kind != container.ChangeDelete {
			continue
		}
		kept = append(kept, ch)
	}
	out := []container.FilesystemChange{}
	for _, ch := range kept {
		if (ch.Path == "/etc" || ch.Path == "/sbin") && ch.Kind != container.ChangeDelete && !hasChild(kept, ch.Path) {
			continue
		}
		out = append(out, ch)
	}
	return out
}

func hasChild(chs []container.FilesystemChange, dir string) bool {
	for _, ch := range chs {
		if strings.HasPrefix(ch.Path, dir+"/") {
			return true
		}
	}
	return false
}
