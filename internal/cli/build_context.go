package cli

// The build context on the client side: finding the directory and the
// Dockerfile as docker does, and the tar sent to a daemon that cannot read
// the directory itself (a TCP host), with .dockerignore applied.

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

func parseNormalizedNamed(s string) (reference.Named, error) {
	n, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, fmt.Errorf("invalid argument %q for \"-t, --tag\" flag: %w", s, err)
	}
	return n, nil
}

// contextDir resolves the context directory as docker does: absolute,
// symlinks evaluated, and a directory.
func contextDir(given string) (string, error) {
	abs, err := filepath.Abs(given)
	if err != nil {
		return "", fmt.Errorf("unable to prepare context: unable to get absolute context directory of given context directory %q: %w", given, err)
	}
	dir, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("unable to prepare context: path %q not found", given)
		}
		return "", fmt.Errorf("unable to prepare context: %w", err)
	}
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("unable to prepare context: %w", err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("unable to prepare context: context must be a directory: %s", dir)
	}
	return dir, nil
}

// dockerfileRelPath is the Dockerfile's path relative to the context dir:
// -f is taken relative to the current directory; without it, Dockerfile
// (or dockerfile) in the context. It may start with "../" (outside).
func dockerfileRelPath(dir, given string) (string, error) {
	abs := given
	if abs == "" {
		abs = filepath.Join(dir, "Dockerfile")
		if _, err := os.Lstat(abs); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(filepath.Join(dir, "dockerfile")); err == nil {
				abs = filepath.Join(dir, "dockerfile")
			}
		}
	} else {
		var err error
		if abs, err = filepath.Abs(given); err != nil {
			return "", fmt.Errorf("unable to get absolute path to Dockerfile: %w", err)
		}
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", fmt.Errorf("cannot locate Dockerfile: %q", abs)
		}
		return "", fmt.Errorf("unable to evaluate symlinks in Dockerfile path: %w", err)
	}
	return filepath.Rel(dir, real)
}

// readDockerignore reads the context's .dockerignore patterns (none when
// the file is missing).
func readDockerignore(dir string) ([]string, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("error reading .dockerignore: %w", err)
	}
	return patterns, nil
}

// trimBuildFilesFromExcludes keeps .dockerignore and the Dockerfile in the
// tar even when excluded: the daemon needs them (docker's rule).
func trimBuildFilesFromExcludes(excludes []string, dockerfile string, dockerfileElsewhere bool) []string {
	if keep, _ := patternmatcher.Matches(".dockerignore", excludes); keep {
		excludes = append(excludes, "!.dockerignore")
	}
	if dockerfile != "" && !dockerfileElsewhere {
		if keep, _ := patternmatcher.Matches(dockerfile, excludes); keep {
			excludes = append(excludes, "!"+dockerfile)
		}
	}
	return excludes
}

// extraFile is a Dockerfile from stdin or from outside the context, added
// to the tar under a random name that .dockerignore then excludes, so COPY
// never sees it (as docker's AddDockerfileToBuildContext).
type extraFile struct {
	name string
	data []byte
}

// tarContext streams the context directory as a tar: owners 0:0, symlinks
// as links, excluded paths left out (an excluded directory is still walked
// when an exception pattern may re-include something in it).
func tarContext(ctx context.Context, dir string, excludes []string, extra *extraFile) io.ReadCloser {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeContextTar(ctx, pw, dir, excludes, extra)) }()
	return pr
}

func writeContextTar(ctx context.Context, w io.Writer, dir string, excludes []string, extra *extraFile) error {
	pm, err := patternmatcher.New(excludes)
	if err != nil {
		return fmt.Errorf("invalid .dockerignore pattern: %w", err)
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	tw := tar.NewWriter(bw)
	sawIgnore := false
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if skip {
			if d.IsDir() && !mayReinclude(pm, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() && !info.IsDir() && info.Mode()&fs.ModeSymlink == 0 {
			return nil // sockets, devices: not context material
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		hdr.Name = rel
		if info.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		hdr.Format = tar.FormatPAX
		if rel == ".dockerignore" && extra != nil {
			sawIgnore = true
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b = append(b, "\n"+extra.name+"\n"...)
			hdr.Size = int64(len(b))
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err = tw.Write(b)
			return err
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			_, err = io.CopyN(tw, f, hdr.Size)
			f.Close()
			if err != nil {
				return fmt.Errorf("read %s: %w", p, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if extra != nil {
		now := time.Now()
		files := []extraFile{*extra}
		if !sawIgnore {
			files = append(files, extraFile{name: ".dockerignore", data: []byte(".dockerignore\n" + extra.name + "\n")})
		}
		for _, f := range files {
			if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.data)), ModTime: now, Typeflag: tar.TypeReg}); err != nil {
				return err
			}
			if _, err := tw.Write(f.data); err != nil {
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// mayReinclude reports whether an exception pattern ("!dir/x") could match
// something under the excluded directory rel.
func mayReinclude(pm *patternmatcher.PatternMatcher, rel string) bool {
	if !pm.Exclusions() {
		return false
	}
	for _, p := range pm.Patterns() {
		if p.Exclusion() && strings.HasPrefix(p.String()+"/", rel+"/") {
			return true
		}
	}
	return false
}

// singleFileTar is a tar holding one regular file.
func singleFileTar(name string, data []byte) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(data)), ModTime: time.Now(), Typeflag: tar.TypeReg})
	tw.Write(data)
	tw.Close()
	return buf.Bytes()
}

// isArchiveStart reports whether br starts with a compressed stream or a
// tar header (docker's rule for `build -`).
func isArchiveStart(br *bufio.Reader) bool {
	head, _ := br.Peek(512)
	for _, magic := range [][]byte{{0x1f, 0x8b, 0x08}, {0x28, 0xb5, 0x2f, 0xfd}, []byte("BZh"), {0xfd, '7', 'z', 'X', 'Z', 0x00}} {
		if bytes.HasPrefix(head, magic) {
			return true
		}
	}
	if len(head) < 512 {
		return false
	}
	_, err := tar.NewReader(bytes.NewReader(head)).Next()
	return err == nil
}

func randomHex(n int) string {
	b := make([]byte, (n+1)/2)
	rand.Read(b)
	return hex.EncodeToString(b)[:n]
}
