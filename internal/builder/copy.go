package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/buildcontext"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// copyReq is a COPY or ADD after variable expansion.
type copyReq struct {
	name     string // "COPY" or "ADD"
	sd       instructions.SourcesAndDest
	from     string
	chown    string
	chmod    string
	add      bool
	checksum string // ADD --checksum
}

func (bd *build) dispatchCopy(ctx context.Context, st *stageState, c *instructions.CopyCommand) error {
	return bd.copy(ctx, st, copyReq{name: "COPY", sd: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod})
}

func (bd *build) dispatchAdd(ctx context.Context, st *stageState, c *instructions.AddCommand) error {
	if c.KeepGitDir {
		return errdefs.NotImplemented("ADD --keep-git-dir is not supported by this builder")
	}
	if c.Unpack != nil {
		return errdefs.NotImplemented("ADD --unpack is not supported by this builder")
	}
	return bd.copy(ctx, st, copyReq{name: "ADD", sd: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, add: true, checksum: c.Checksum})
}

// copyDest is a COPY/ADD destination resolved against WORKDIR.
type copyDest struct {
	given string // as written (expanded), for the history text
	abs   string // absolute in the image
	isDir bool   // written as a directory ("dir/", ".")
}

func resolveDest(st *stageState, dest string) (copyDest, error) {
	if dest == "" {
		return copyDest{}, errdefs.Invalid("the destination of a copy can not be empty")
	}
	d := copyDest{given: dest}
	d.isDir = strings.HasSuffix(dest, "/") || dest == "." || dest == ".." ||
		strings.HasSuffix(dest, "/.") || strings.HasSuffix(dest, "/..")
	abs := dest
	if !path.IsAbs(abs) {
		abs = path.Join("/", st.cfg.WorkingDir, abs)
	}
	d.abs = path.Clean(abs)
	return d, nil
}

// parseChmod reads --chmod's octal mode.
func parseChmod(s string) (*os.FileMode, error) {
	if s == "" {
		return nil, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return nil, errdefs.Invalid("invalid chmod parameter: %s", s)
	}
	m := os.FileMode(n & 0o777)
	if n&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	if n&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if n&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return &m, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// part writes some of a step's files into its layer tar.
type part func(ctx context.Context, w io.Writer, opts buildcontext.CopyOptions) error

// copy runs COPY or ADD. The cache key is known without reading a file:
// the sources' checksums come from the context's hash cache; COPY --from
// keys on the source image's id and the patterns instead.
func (bd *build) copy(ctx context.Context, st *stageState, r copyReq) error {
	chmod, err := parseChmod(r.chmod)
	if err != nil {
		return err
	}
	dest, err := resolveDest(st, r.sd.DestPath)
	if err != nil {
		return err
	}
	flags := historyFlags(r.chown, r.chmod)
	if r.from != "" {
		return bd.copyFrom(ctx, st, r, dest, flags, chmod)
	}

	var hashes []string
	var parts []part
	for _, sc := range r.sd.SourceContents {
		data := sc.Data
		sum := sha256.Sum256([]byte(data))
		hashes = append(hashes, "file:"+hex.EncodeToString(sum[:]))
		name := path.Base(sc.Path)
		parts = append(parts, func(ctx context.Context, w io.Writer, o buildcontext.CopyOptions) error {
			o.Dest = fileDest(o, name)
			if o.Chmod == nil {
				m := os.FileMode(0o644) // BuildKit's mode for heredoc files
				o.Chmod = &m
			}
			return buildcontext.WriteFileLayer(w, strings.NewReader(data), int64(len(data)), time.Now(), o)
		})
	}
	var local []string
	for _, src := range r.sd.SourcePaths {
		if !isURL(src) {
			local = append(local, src)
			continue
		}
		if !r.add {
			return errdefs.Invalid("%s failed: source can't be a URL for COPY", r.name)
		}
		dl, err := download(ctx, src, r.checksum, dest)
		if err != nil {
			return fmt.Errorf("%s failed: %w", r.name, err)
		}
		defer os.Remove(dl.path)
		hashes = append(hashes, dl.sum) // Docker gives a URL's hash no "file:"
		parts = append(parts, func(ctx context.Context, w io.Writer, o buildcontext.CopyOptions) error {
			f, err := os.Open(dl.path)
			if err != nil {
				return err
			}
			defer f.Close()
			o.Dest = fileDest(o, dl.name)
			o.Extract = false // a downloaded archive is not unpacked, like Docker
			return buildcontext.WriteFileLayer(w, f, dl.size, dl.mtime, o)
		})
	}
	if r.checksum != "" && len(local) > 0 {
		return errdefs.Invalid("%s failed: checksum can't be specified for non-HTTP(S) sources", r.name)
	}
	if len(local) > 0 {
		if bd.bc == nil {
			return errdefs.Invalid("%s failed: no build context", r.name)
		}
		srcs, err := bd.bc.Sources(local)
		if err != nil {
			return fmt.Errorf("%s failed: %w", r.name, err)
		}
		for _, s := range srcs {
			sum, err := bd.bc.Checksum(ctx, []string{s})
			if err != nil {
				return fmt.Errorf("%s failed: %w", r.name, err)
			}
			hashes = append(hashes, typePrefix(bd.bc.Root(), s)+":"+sum.Encoded())
		}
		root := bd.bc.Root()
		parts = append(parts, func(ctx context.Context, w io.Writer, o buildcontext.CopyOptions) error {
			o.ExcludeFn = bd.bc.Excluded
			return buildcontext.WriteLayer(ctx, w, root, srcs, o)
		})
	}
	if len(hashes) == 0 {
		return errdefs.Invalid("%s failed: no source files were specified", r.name)
	}
	srcHash := hashes[0]
	if len(hashes) > 1 {
		srcHash = hashString("multi", hashes)
	}
	parent := st.id()
	n := len(hashes)
	return bd.commit(ctx, st, &step{
		createdBy: nopString(st, fmt.Sprintf("%s %s%s in %s ", r.name, flags, srcHash, dest.given)),
		layer: func(ctx context.Context, _ *step) (*image.Layer, error) {
			opts, release, err := bd.copyOptions(ctx, parent, r, dest, n, chmod)
			if err != nil {
				return nil, err
			}
			defer release()
			return bd.addLayer(ctx, parent, func(w io.Writer) error { return writeParts(ctx, w, parts, opts) })
		},
	})
}

// copyFrom runs COPY --from=<stage|image>.
func (bd *build) copyFrom(ctx context.Context, st *stageState, r copyReq, dest copyDest, flags string, chmod *os.FileMode) error {
	if len(r.sd.SourceContents) > 0 {
		return errdefs.Invalid("COPY --from can not copy a heredoc")
	}
	for _, s := range r.sd.SourcePaths {
		if isURL(s) {
			return errdefs.Invalid("COPY failed: source can't be a URL for COPY")
		}
	}
	from, err := bd.expandMeta(r.from)
	if err != nil {
		return errdefs.Invalid("invalid from flag value %s: %v", r.from, err)
	}
	idx, err := bd.stageRef(from, st.index)
	if err != nil {
		return fmt.Errorf("invalid from flag value %s: %w", from, err)
	}
	var src *image.Image
	if idx >= 0 {
		res := bd.results[idx]
		if res == nil {
			return errdefs.Invalid("invalid from flag value %s: stage was not built (is it only used by an ONBUILD trigger?)", from)
		}
		src = res.img
	} else if src, err = bd.image(ctx, from); err != nil {
		return fmt.Errorf("invalid from flag value %s: %w", from, err)
	}
	srcID := ""
	if src != nil {
		srcID = src.ID
	}
	parent := st.id()
	patterns := r.sd.SourcePaths
	return bd.commit(ctx, st, &step{
		// The image id stands for the content: an image never changes.
		keyText: nopString(st, fmt.Sprintf("%s --from=%s %s%q in %s ", r.name, srcID, flags, patterns, dest.given)),
		layer: func(ctx context.Context, s *step) (*image.Layer, error) {
			root, release, err := bd.b.be.ImageRootFS(ctx, srcID)
			if err != nil {
				return nil, fmt.Errorf("COPY --from=%s: read image: %w", from, err)
			}
			defer release()
			srcs, err := buildcontext.ExpandSources(root, patterns)
			if err != nil {
				return nil, fmt.Errorf("COPY failed: %w", err)
			}
			var hashes []string
			for _, p := range srcs {
				sum := sha256.Sum256([]byte(srcID + "\x00" + p))
				hashes = append(hashes, typePrefix(root, p)+":"+hex.EncodeToString(sum[:]))
			}
			srcHash := hashes[0]
			if len(hashes) > 1 {
				srcHash = hashString("multi", hashes)
			}
			s.createdBy = nopString(st, fmt.Sprintf("%s %s%s in %s ", r.name, flags, srcHash, dest.given))
			opts, releaseDest, err := bd.copyOptions(ctx, parent, r, dest, len(srcs), chmod)
			if err != nil {
				return nil, err
			}
			defer releaseDest()
			return bd.addLayer(ctx, parent, func(w io.Writer) error {
				return buildcontext.WriteLayer(ctx, w, root, srcs, opts)
			})
		},
	})
}

// copyOptions settles what needs the destination image, whose root
// filesystem stays open (DestRoot) until release: whether the destination
// is an existing directory, and --chown names.
func (bd *build) copyOptions(ctx context.Context, parent string, r copyReq, dest copyDest, nsrc int, chmod *os.FileMode) (buildcontext.CopyOptions, func(), error) {
	opts := buildcontext.CopyOptions{Dest: dest.abs, DestIsDir: dest.isDir, Chmod: chmod, Extract: r.add}
	root, release, err := bd.b.be.ImageRootFS(ctx, parent)
	if err != nil {
		return opts, nil, fmt.Errorf("%s: read image: %w", r.name, err)
	}
	opts.DestRoot = root
	// Docker checks the text: several sources need a trailing "/" even
	// when the destination exists as a directory.
	if nsrc > 1 && !opts.DestIsDir {
		release()
		return opts, nil, errdefs.Invalid("When using %s with more than one source file, the destination must be a directory and end with a /", r.name)
	}
	if r.chown != "" {
		uid, gid, err := parseChown(root, r.chown)
		if err != nil {
			release()
			return opts, nil, err
		}
		opts.UID, opts.GID = uid, gid
	} else if r.from != "" {
		// As Docker: COPY --from without --chown keeps the owners the
		// files have in the source stage or image.
		opts.KeepOwners = true
	}
	if !opts.DestIsDir {
		opts.DestIsDir = isDirInRoot(root, dest.abs)
	}
	return opts, release, nil
}

// historyFlags is the flags part of a COPY/ADD history text. Docker
// writes "--chown=X" right against the source hash, with no space
// ("ADD --chown=1:1file:<hash> in /x "): history shows that text, so it
// is kept. --chmod, which Docker's legacy builder refuses, gets a space.
func historyFlags(chown, chmod string) string {
	flags := ""
	if chown != "" {
		flags = "--chown=" + chown
		if chmod != "" {
			flags += " "
		}
	}
	if chmod != "" {
		flags += "--chmod=" + chmod + " "
	}
	return flags
}

// fileDest is where a single named file (URL, heredoc) goes.
func fileDest(o buildcontext.CopyOptions, name string) string {
	if o.DestIsDir {
		return path.Join(o.Dest, name)
	}
	return o.Dest
}

// typePrefix is Docker's "dir" or "file" for a source's history hash. A
// source that is a symlink is copied as what it points to (resolved
// inside root), so a link to a directory is a "dir", as in Docker.
func typePrefix(root, rel string) string {
	if isDirInRoot(root, rel) {
		return "dir"
	}
	return "file"
}

// writeParts writes every part into one layer tar: one part writes
// directly, several are merged entry by entry.
func writeParts(ctx context.Context, w io.Writer, parts []part, opts buildcontext.CopyOptions) error {
	if len(parts) == 1 {
		return parts[0](ctx, w, opts)
	}
	tw := tar.NewWriter(w)
	for _, p := range parts {
		if err := mergeTar(ctx, tw, p, opts); err != nil {
			return err
		}
	}
	return tw.Close()
}

func mergeTar(ctx context.Context, tw *tar.Writer, p part, opts buildcontext.CopyOptions) error {
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := p(ctx, pw, opts)
		pw.CloseWithError(err)
		done <- err
	}()
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err == nil {
			if err = tw.WriteHeader(hdr); err == nil {
				_, err = io.Copy(tw, tr)
			}
		}
		if err != nil {
			pr.CloseWithError(err)
			<-done
			return err
		}
	}
	io.Copy(io.Discard, pr) // the writer's trailing padding
	return <-done
}

// downloaded is an ADD URL fetched into a temporary file.
type downloaded struct {
	path  string
	name  string // file name from the URL or Content-Disposition
	size  int64
	mtime time.Time
	sum   string // hex sha256
}

// download fetches an ADD URL (every build, like Docker: its content is
// part of the cache key) and checks --checksum.
func download(ctx context.Context, src, checksum string, dest copyDest) (*downloaded, error) {
	u, err := url.Parse(src)
	if err != nil {
		return nil, errdefs.Invalid("invalid URL %s: %v", src, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src, nil)
	if err != nil {
		return nil, errdefs.Invalid("invalid URL %s: %v", src, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, errdefs.Unavailable("failed to GET %s: %v", src, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 400 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, errdefs.Unavailable("failed to GET %s with status %s: %s", src, resp.Status, strings.TrimSpace(string(body)))
	}
	name := downloadName(u.Path, resp.Header.Get("Content-Disposition"))
	if name == "" {
		if dest.isDir {
			return nil, errdefs.Invalid("cannot determine filename for source %s", src)
		}
		name = "__unnamed__" // Docker's name when only the destination names the file
	}
	f, err := os.CreateTemp("", "skiff-add-*")
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", src, err)
	}
	defer f.Close()
	h := sha256.New()
	size, err := io.Copy(io.MultiWriter(f, h), resp.Body)
	if err != nil {
		os.Remove(f.Name())
		return nil, errdefs.Unavailable("failed to GET %s: %v", src, err)
	}
	dl := &downloaded{path: f.Name(), name: name, size: size, mtime: time.Now(), sum: hex.EncodeToString(h.Sum(nil))}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			dl.mtime = t
		}
	}
	if checksum != "" {
		want, err := digest.Parse(checksum)
		if err != nil {
			os.Remove(f.Name())
			return nil, errdefs.Invalid("invalid checksum %s: %v", checksum, err)
		}
		if want.Algorithm() != digest.SHA256 || want.Encoded() != dl.sum {
			os.Remove(f.Name())
			return nil, errdefs.Invalid("digest mismatch %s: %s", want, digest.NewDigestFromEncoded(digest.SHA256, dl.sum))
		}
	}
	return dl, nil
}

// downloadName is the file name Docker gives a download: the URL path's
// last element, else Content-Disposition's filename.
func downloadName(urlPath, disposition string) string {
	if urlPath != "" && !strings.HasSuffix(urlPath, "/") {
		if b := path.Base(urlPath); b != "" && b != "." && b != "/" {
			return b
		}
	}
	if disposition != "" {
		if _, params, err := mime.ParseMediaType(disposition); err == nil {
			if fn := params["filename"]; fn != "" && !strings.HasSuffix(fn, "/") {
				return path.Base(fn)
			}
		}
	}
	return ""
}
