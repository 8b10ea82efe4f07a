package archive

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"io"

	"golang.org/x/sys/unix"
)

// WithOwner gives every entry uid and gid instead of the archive's (docker
// cp without -a: files belong to the container's root).
func WithOwner(uid, gid int) ApplyOpt {
	return func(o *applyOptions) { o.owner = &[2]int{uid, gid} }
}

// TarEntry writes the entry name of the directory dirfd (and, for a
// directory, everything below it) as a tar whose top-level entry is name.
// The walk uses directory fds and O_NOFOLLOW at every step, as Tar does, so
// a tree changing under it cannot lead it elsewhere.
func TarEntry(ctx context.Context, dirfd int, name string, w io.Writer) error {
	bw := bufio.NewWriterSize(w, copyBufSize)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	t := &tarWriter{ctx: ctx, tw: tar.NewWriter(bw), buf: *bp, links: map[[2]uint64]string{}, xbuf: make([]byte, 4096)}
	if err := t.entry(dirfd, "", name); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return nil
}

// TarDirContents writes the entries under the directory dirfd with names
// relative to it (no top-level entry): for copying a whole root.
func TarDirContents(ctx context.Context, dirfd int, w io.Writer) error {
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open directory: %w", err)
	}
	defer unix.Close(fd)
	bw := bufio.NewWriterSize(w, copyBufSize)
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	t := &tarWriter{ctx: ctx, tw: tar.NewWriter(bw), buf: *bp, links: map[[2]uint64]string{}, xbuf: make([]byte, 4096)}
	if err := t.dir(fd, ""); err != nil {
		return err
	}
	if err := t.tw.Close(); err != nil {
		return fmt.Errorf("write tar: %w", err)
	}
	return bw.Flush()
}
