package cli

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/archive"
)

type cpOptions struct {
	archive, followLink, quiet bool
}

func (c *CLI) newCpCommand() *cobra.Command {
	var o cpOptions
	cmd := &cobra.Command{
		Use: `cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-
	skiff cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH`,
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			srcC, srcP := splitCpArg(args[0])
			dstC, dstP := splitCpArg(args[1])
			if srcP == "" {
				return errors.New("source can not be empty")
			}
			if dstP == "" {
				return errors.New("destination can not be empty")
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			switch {
			case srcC != "" && dstC != "":
				return errors.New("copying between containers is not supported")
			case srcC != "":
				return c.copyFromContainer(cmd.Context(), api, srcC, srcP, dstP, o)
			case dstC != "":
				return c.copyToContainer(cmd.Context(), api, srcP, dstC, dstP, o)
			}
			return errors.New("must specify at least one container source")
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.archive, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	f.BoolVarP(&o.followLink, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCpArg splits "container:path"; a path starting with / or . is local
// even when it holds a colon.
func splitCpArg(arg string) (container, path string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	c, p, ok := strings.Cut(arg, ":")
	if !ok {
		return "", arg
	}
	return c, p
}

// contentsOnly reports a path ending in "/." (copy what the directory holds).
func contentsOnly(p string) bool {
	return strings.HasSuffix(p, string(filepath.Separator)+".") || p == "."
}

func (c *CLI) copyFromContainer(ctx context.Context, api *client.Client, ctr, src, dst string, o cpOptions) error {
	if !filepath.IsAbs(src) {
		src = "/" + src
	}
	rebaseTo := ""
	if o.followLink {
		st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: src})
		if err == nil && st.Stat.LinkTarget != "" {
			rebaseTo = filepath.Base(src)
			src = st.Stat.LinkTarget
		}
	}
	res, err := api.CopyFromContainer(ctx, ctr, client.CopyFromContainerOptions{SourcePath: src})
	if err != nil {
		return err
	}
	defer res.Content.Close()
	if dst == "-" {
		_, err := io.Copy(c.out, res.Content)
		return err
	}
	var content io.Reader = res.Content
	srcBase := filepath.Base(src)
	if contentsOnly(src) {
		srcBase = "."
	}
	if rebaseTo != "" {
		content = rebaseTar(content, srcBase, rebaseTo)
		srcBase = rebaseTo
	}
	srcIsDir := res.Stat.Mode.IsDir()
	dstInfo, err := os.Stat(dst)
	switch {
	case err == nil && dstInfo.IsDir():
		// Into the directory, under the source's name (or its content).
	case err == nil:
		if srcIsDir {
			return fmt.Errorf("cannot copy a directory to a file: %s", dst)
		}
		content = rebaseTar(content, srcBase, filepath.Base(dst))
		dst = filepath.Dir(dst)
	case os.IsNotExist(err):
		if strings.HasSuffix(dst, string(filepath.Separator)) && !srcIsDir {
			return fmt.Errorf("destination directory %q does not exist", dst)
		}
		parent := filepath.Dir(filepath.Clean(dst))
		if st, err := os.Stat(parent); err != nil || !st.IsDir() {
			return fmt.Errorf("destination directory %q does not exist", parent)
		}
		content = rebaseTar(content, srcBase, filepath.Base(filepath.Clean(dst)))
		dst = parent
	default:
		return err
	}
	_, err = archive.Apply(ctx, dst, content, archive.WithWhiteouts(archive.WhiteoutLiteral))
	return err
}

func (c *CLI) copyToContainer(ctx context.Context, api *client.Client, src, ctr, dst string, o cpOptions) error {
	if !filepath.IsAbs(dst) {
		dst = "/" + dst
	}
	if src == "-" {
		_, err := api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: dst, Content: c.in, CopyUIDGID: o.archive})
		return err
	}
	lstat := os.Lstat
	if o.followLink {
		lstat = os.Stat
	}
	srcInfo, err := lstat(src)
	if err != nil {
		return err
	}
	srcBase := filepath.Base(src)
	if contentsOnly(src) {
		srcBase = "."
	}
	target := dst
	rename := ""
	st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: dst})
	switch {
	case err == nil && (st.Stat.Mode.IsDir() || (st.Stat.LinkTarget != "" && isDirIn(ctx, api, ctr, st.Stat.LinkTarget))):
		if srcBase == "." {
			break
		}
	case err == nil:
		if srcInfo.IsDir() {
			return fmt.Errorf("cannot copy a directory to a file: %s", dst)
		}
		target, rename = filepath.Dir(dst), filepath.Base(dst)
	case cerrdefs.IsNotFound(err):
		if strings.HasSuffix(dst, "/") && !srcInfo.IsDir() {
			return fmt.Errorf("destination directory %q does not exist", dst)
		}
		target, rename = filepath.Dir(filepath.Clean(dst)), filepath.Base(filepath.Clean(dst))
	default:
		return err
	}
	pr, pw := io.Pipe()
	go func() {
		dir, err := unix.Open(filepath.Dir(filepath.Clean(src)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			pw.CloseWithError(err)
			return
		}
		defer unix.Close(dir)
		name := filepath.Base(filepath.Clean(src))
		if o.followLink && srcInfo.Mode()&os.ModeSymlink == 0 {
			if real, err := filepath.EvalSymlinks(src); err == nil {
				name = filepath.Base(real)
				unix.Close(dir)
				if dir, err = unix.Open(filepath.Dir(real), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
					pw.CloseWithError(err)
					return
				}
				if name != filepath.Base(filepath.Clean(src)) && rename == "" && srcBase != "." {
					rename = filepath.Base(filepath.Clean(src))
				}
			}
		}
		if srcBase == "." {
			fd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			defer unix.Close(fd)
			pw.CloseWithError(archive.TarDirContents(ctx, fd, pw))
			return
		}
		pw.CloseWithError(archive.TarEntry(ctx, dir, name, pw))
	}()
	var content io.Reader = pr
	if rename != "" {
		content = rebaseTar(pr, filepath.Base(filepath.Clean(src)), rename)
	}
	_, err = api.CopyToContainer(ctx, ctr, client.CopyToContainerOptions{DestinationPath: target, Content: content, CopyUIDGID: o.archive})
	pr.CloseWithError(io.ErrClosedPipe)
	return err
}

func isDirIn(ctx context.Context, api *client.Client, ctr, p string) bool {
	st, err := api.ContainerStatPath(ctx, ctr, client.ContainerStatPathOptions{Path: p})
	return err == nil && st.Stat.Mode.IsDir()
}

// rebaseTar renames the top-level entry old (and everything under it) to
// new as the tar streams through.
func rebaseTar(r io.Reader, old, new string) io.Reader {
	if old == new {
		return r
	}
	pr, pw := io.Pipe()
	go func() {
		tr := tar.NewReader(r)
		tw := tar.NewWriter(pw)
		re := func(name string) string {
			if name == old || name == old+"/" {
				return new + strings.TrimPrefix(name, old)
			}
			if rest, ok := strings.CutPrefix(name, old+"/"); ok {
				return new + "/" + rest
			}
			if old == "." {
				return new + "/" + strings.TrimPrefix(name, "./")
			}
			return name
		}
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				pw.CloseWithError(tw.Close())
				return
			}
			if err != nil {
				pw.CloseWithError(err)
				return
			}
			hdr.Name = re(hdr.Name)
			if hdr.Typeflag == tar.TypeLink {
				hdr.Linkname = re(hdr.Linkname)
			}
			if err := tw.WriteHeader(hdr); err != nil {
				pw.CloseWithError(err)
				return
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pw.CloseWithError(err)
				return
			}
		}
	}()
	return pr
}
