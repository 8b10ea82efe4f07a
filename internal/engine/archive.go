package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
	"github.com/skiff-dev/skiff/internal/containerfs"
	"github.com/skiff-dev/skiff/internal/errdefs"
	skmount "github.com/skiff-dev/skiff/internal/mount"
)

// ExtractOptions are PUT /containers/{id}/archive's query parameters.
type ExtractOptions struct {
	NoOverwriteDirNonDir bool
	CopyUIDGID           bool
}

// containerRoot is an open view of a container's files for docker cp.
type containerRoot struct {
	fd      int
	rel     string      // the path to use below fd
	mp      *MountPoint // the volume or bind holding rel, if any
	release func()
}

// openRoot gives access to path p of c without mounting anything on the
// host: a running container through /proc/PID/root (its own mount
// namespace, with its volumes), a stopped one through a detached mount of
// its overlay, or the volume/bind directory that holds p. The caller must
// call release.
func (e *Engine) openRoot(ctx context.Context, c *Container, p string) (*containerRoot, error) {
	if !path.IsAbs(p) {
		p = "/" + p
	}
	c.mu.Lock()
	running, pid := c.State.Running, c.State.Pid
	mps := c.MountPoints
	c.mu.Unlock()
	if running && pid > 0 {
		fd, err := containerfs.OpenPidRoot(pid)
		if err == nil {
			mp, _ := hostPathFor(mps, p)
			return &containerRoot{fd: fd, rel: p, mp: mp, release: func() { unix.Close(fd) }}, nil
		}
		// The container exited in between: treat it as stopped.
	}
	// Keep the container from starting (and mounting the same overlay
	// upper directory) while the copy runs.
	if err := c.beginOp(ctx); err != nil {
		return nil, err
	}
	mounts, err := e.snaps.Mounts(ctx, c.SnapshotKey)
	if err != nil {
		c.endOp()
		return nil, fmt.Errorf("root filesystem of %s: %w", c.ID, err)
	}
	fd, err := skmount.Detached(mounts)
	if err != nil {
		c.endOp()
		return nil, err
	}
	release := func() { unix.Close(fd); c.endOp() }
	// Paths under a volume or bind are served from its host directory. The
	// parent is resolved inside the root first, so a symlink in the image
	// that points into a volume still lands there.
	dir, base := path.Split(path.Clean(p))
	rdir, err := containerfs.Resolve(fd, dir)
	if err != nil {
		release()
		return nil, err
	}
	full := path.Join(rdir, base)
	if strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.") {
		full += "/"
		if strings.HasSuffix(p, "/.") {
			full += "."
		}
	}
	if mp, rel := hostPathFor(mps, full); mp != nil && mp.Type != mount.TypeTmpfs {
		vfd, err := containerfs.OpenDir(mp.Source)
		if err != nil {
			release()
			return nil, err
		}
		unix.Close(fd)
		if strings.HasSuffix(full, "/.") {
			rel += "/."
		}
		return &containerRoot{fd: vfd, rel: rel, mp: mp, release: func() { unix.Close(vfd); c.endOp() }}, nil
	}
	return &containerRoot{fd: fd, rel: p, release: release}, nil
}

func notFoundIn(p, ref string) error {
	return errdefs.NotFound("Could not find the file %s in container %s", p, ref)
}

func pathErr(err error, p, ref string) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return notFoundIn(p, ref)
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.ELOOP):
		return errdefs.Invalid("path %s escapes the container's root", p)
	case errors.Is(err, unix.EROFS):
		return errdefs.Forbidden("container rootfs is marked read-only")
	}
	return err
}

// ContainerStatPath describes path p in the container (HEAD archive).
func (e *Engine) ContainerStatPath(ctx context.Context, ref, p string) (*container.PathStat, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, err
	}
	r, err := e.openRoot(ctx, c, p)
	if err != nil {
		return nil, pathErr(err, p, ref)
	}
	defer r.release()
	return statIn(r, p, ref)
}

func statIn(r *containerRoot, p, ref string) (*container.PathStat, error) {
	st, err := containerfs.Lstat(r.fd, r.rel)
	if err != nil {
		return nil, pathErr(err, p, ref)
	}
	if r.mp != nil && st.LinkTarget != "" && r.rel != p {
		st.LinkTarget = path.Join(r.mp.Destination, st.LinkTarget)
	}
	return &container.PathStat{Name: st.Name, Size: st.Size, Mode: st.Mode, Mtime: time.Unix(0, st.Mtime), LinkTarget: st.LinkTarget}, nil
}

// ContainerArchivePath writes path p of the container as a tar (GET
// archive). start is called with the path's stat before the first byte,
// and returns where the tar goes.
func (e *Engine) ContainerArchivePath(ctx context.Context, ref, p string, start func(*container.PathStat) io.Writer) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	r, err := e.openRoot(ctx, c, p)
	if err != nil {
		return pathErr(err, p, ref)
	}
	defer r.release()
	st, err := statIn(r, p, ref)
	if err != nil {
		return err
	}
	var dfd int
	var base string
	if strings.HasSuffix(r.rel, "/.") || strings.HasSuffix(r.rel, "/") {
		// "dir/." is the directory's content; "dir/" follows a link.
		dfd, err = containerfs.OpenInRoot(r.fd, r.rel, unix.O_PATH|unix.O_DIRECTORY)
		base = "."
		if !strings.HasSuffix(r.rel, "/.") && dfd >= 0 {
			unix.Close(dfd)
			dfd, base, err = containerfs.Split(r.fd, strings.TrimRight(r.rel, "/"))
		}
	} else {
		dfd, base, err = containerfs.Split(r.fd, r.rel)
	}
	if err != nil {
		return pathErr(err, p, ref)
	}
	defer unix.Close(dfd)
	return archive.TarEntry(ctx, dfd, base, start(st))
}

// ContainerExtract unpacks the tar r into directory p of the container
// (PUT archive). Every entry is confined to p.
func (e *Engine) ContainerExtract(ctx context.Context, ref, p string, opts ExtractOptions, r io.Reader) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	root, err := e.openRoot(ctx, c, p)
	if err != nil {
		return pathErr(err, p, ref)
	}
	defer root.release()
	c.mu.Lock()
	readonlyRoot := c.HostConfig.ReadonlyRootfs
	c.mu.Unlock()
	if root.mp != nil && !root.mp.RW {
		return errdefs.Forbidden("mounted volume is marked read-only")
	}
	if root.mp == nil && readonlyRoot {
		return errdefs.Forbidden("container rootfs is marked read-only")
	}
	dfd, err := containerfs.OpenInRoot(root.fd, root.rel, unix.O_PATH|unix.O_DIRECTORY)
	if errors.Is(err, unix.ENOTDIR) {
		return errdefs.Invalid("extraction point is not a directory")
	}
	if err != nil {
		return pathErr(err, p, ref)
	}
	defer unix.Close(dfd)
	aopts := []archive.ApplyOpt{archive.WithWhiteouts(archive.WhiteoutLiteral)}
	if !opts.CopyUIDGID {
		aopts = append(aopts, archive.WithOwner(0, 0))
	}
	if _, err := archive.Apply(ctx, containerfs.FdPath(dfd), r, aopts...); err != nil {
		return pathErr(err, p, ref)
	}
	return nil
}
