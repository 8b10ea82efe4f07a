// Package content is skiff's blob store: layers, image configs and manifests,
// each named by the sha256 digest of its bytes.
//
// Layout under the store's root (<data-root>/content):
//
//	blobs/sha256/<hex>   committed blobs, read-only (0444)
//	ingest/<random>      blobs being written; removed when the store opens
//
// A blob is written to ingest/, hashed while it is written, checked against
// the expected digest and size when the caller knows them, fsynced, renamed
// into blobs/ and the directory fsynced. So a blob is either whole and
// verified or absent, whatever happens; a crash leaves only ingest files,
// which the next New removes.
package content

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// Store is a content-addressed blob store. It is safe for concurrent use:
// writers never share files, and committing the same content twice is
// harmless (the second rename replaces identical bytes).
type Store struct {
	root string
}

// copyBufSize is the buffer for copying blob data. Large buffers keep the
// syscall count low for layer-sized blobs.
const copyBufSize = 1 << 20

// New opens (creating if needed) the store under root and removes ingest
// files left by a crash.
func New(root string) (*Store, error) {
	s := &Store{root: root}
	if err := os.RemoveAll(s.ingestDir()); err != nil {
		return nil, fmt.Errorf("clean content ingest directory: %w", err)
	}
	for _, d := range []string{s.blobDir(), s.ingestDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create content directory: %w", err)
		}
	}
	return s, nil
}

func (s *Store) blobDir() string   { return filepath.Join(s.root, "blobs", "sha256") }
func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// Path returns where the blob named dgst lives (whether or not it exists),
// for callers that want to hand the file to the kernel (sendfile) themselves.
func (s *Store) Path(dgst digest.Digest) (string, error) {
	if err := validate(dgst); err != nil {
		return "", err
	}
	return filepath.Join(s.blobDir(), dgst.Encoded()), nil
}

func validate(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return errdefs.Invalid("invalid digest %q: %v", dgst, err)
	}
	if dgst.Algorithm() != digest.SHA256 {
		return errdefs.Invalid("unsupported digest algorithm %s", dgst.Algorithm())
	}
	return nil
}

// Put stores everything r yields. When expected is not empty the content must
// hash to it, or Put fails and nothing is stored.
func (s *Store) Put(ctx context.Context, r io.Reader, expected digest.Digest, opts ...WriterOpt) (Info, error) {
	w, err := s.Writer(ctx, expected, -1, opts...)
	if err != nil {
		return Info{}, err
	}
	defer w.Close()
	buf := make([]byte, copyBufSize)
	// Hide any WriterTo/ReaderFrom so the big buffer is used.
	if _, err := io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{&ctxReader{ctx: ctx, r: r}}, buf); err != nil {
		return Info{}, fmt.Errorf("write blob: %w", err)
	}
	return w.Commit()
}

// PutBytes stores b, which must hash to expected when expected is set.
func (s *Store) PutBytes(ctx context.Context, b []byte, expected digest.Digest) (Info, error) {
	w, err := s.Writer(ctx, expected, int64(len(b)))
	if err != nil {
		return Info{}, err
	}
	defer w.Close()
	if _, err := w.Write(b); err != nil {
		return Info{}, fmt.Errorf("write blob: %w", err)
	}
	return w.Commit()
}

// ctxReader makes a long copy stop when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// Writer ingests one blob. Write the bytes, then Commit; Close without Commit
// discards them. expected (may be empty) and size (-1: unknown) are checked
// at Commit.
type Writer struct {
	s        *Store
	f        *os.File
	h        hash.Hash
	n        int64
	flushed  int64 // bytes handed to writeback so far
	expected digest.Digest
	size     int64
	done     bool
	before   func(digest.Digest) error
}

// WriterOpt is an option of Writer and Put.
type WriterOpt func(*Writer)

// BeforeCommit has Commit call fn with the blob's digest once the blob is
// verified and before it appears in the store; an error from fn fails the
// Commit. The image store adds the blob to a lease there, so no GC can
// collect it between its appearance and the image record that names it.
func BeforeCommit(fn func(digest.Digest) error) WriterOpt {
	return func(w *Writer) { w.before = fn }
}

// Writer starts a new ingest.
func (s *Store) Writer(ctx context.Context, expected digest.Digest, size int64, opts ...WriterOpt) (*Writer, error) {
	if expected != "" {
		if err := validate(expected); err != nil {
			return nil, err
		}
	}
	var rnd [12]byte
	rand.Read(rnd[:])
	f, err := os.OpenFile(filepath.Join(s.ingestDir(), hex.EncodeToString(rnd[:])), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create ingest file: %w", err)
	}
	w := &Writer{s: s, f: f, h: digest.SHA256.Hash(), expected: expected, size: size}
	for _, o := range opts {
		o(w)
	}
	return w, nil
}

// Write appends p to the blob and to its hash.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("write to a closed blob writer")
	}
	n, err := w.f.Write(p)
	w.h.Write(p[:n])
	w.n += int64(n)
	if w.n-w.flushed >= writebackChunk {
		// Start writing this part out now (no wait), so Commit's fsync
		// of a big layer blob finds little left to do.
		unix.SyncFileRange(int(w.f.Fd()), w.flushed, w.n-w.flushed, unix.SYNC_FILE_RANGE_WRITE)
		w.flushed = w.n
	}
	return n, err
}

// writebackChunk is how much a Writer lets pile up before it asks the
// kernel to start writing it out.
const writebackChunk = 8 << 20

// Digest is the digest of what was written so far.
func (w *Writer) Digest() digest.Digest { return digest.NewDigest(digest.SHA256, w.h) }

// Size is the number of bytes written so far.
func (w *Writer) Size() int64 { return w.n }

// Commit verifies the blob and moves it into the store. After Commit (even a
// failed one) the Writer is closed.
func (w *Writer) Commit() (Info, error) {
	if w.done {
		return Info{}, errors.New("commit of a closed blob writer")
	}
	defer w.Close()
	dgst := w.Digest()
	if w.expected != "" && dgst != w.expected {
		return Info{}, errdefs.Invalid("content verification failed: expected %s, got %s", w.expected, dgst)
	}
	if w.size >= 0 && w.n != w.size {
		return Info{}, errdefs.Invalid("content verification failed for %s: expected %d bytes, got %d", dgst, w.size, w.n)
	}
	if w.before != nil {
		if err := w.before(dgst); err != nil {
			return Info{}, fmt.Errorf("commit blob %s: %w", dgst, err)
		}
	}
	target := filepath.Join(w.s.blobDir(), dgst.Encoded())
	if st, err := os.Stat(target); err == nil && st.Size() == w.n {
		// Already there (the same content was stored before): keep it.
		return Info{Digest: dgst, Size: w.n, CreatedAt: st.ModTime()}, nil
	}
	if err := w.f.Chmod(0o444); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	if err := w.f.Sync(); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: sync: %w", dgst, err)
	}
	name := w.f.Name()
	if err := w.f.Close(); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	w.f = nil
	if err := os.Rename(name, target); err != nil {
		os.Remove(name)
		return Info{}, fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	if err := syncDir(w.s.blobDir()); err != nil {
		return Info{}, fmt.Errorf("commit blob %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: w.n, CreatedAt: time.Now()}, nil
}

// Close discards an uncommitted blob. It is safe to call more than once.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	if w.f != nil {
		name := w.f.Name()
		w.f.Close()
		w.f = nil
		return os.Remove(name)
	}
	return nil
}

func syncDir(dir string) error {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// Blob is an open blob: read it in order, or at any offset.
type Blob struct {
	*os.File
	size int64
}

// Size is the blob's length in bytes.
func (b *Blob) Size() int64 { return b.size }

// Open opens the blob named dgst for reading. The caller closes it.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (*Blob, error) {
	p, err := s.Path(dgst)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, errdefs.NotFound("content %s: not found", dgst)
	}
	if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", dgst, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return &Blob{File: f, size: st.Size()}, nil
}

// ReadAll reads a small blob (a config or a manifest) and checks that it
// still hashes to its name, so a corrupted file on disk is an error rather
// than a wrong answer.
func (s *Store) ReadAll(ctx context.Context, dgst digest.Digest) ([]byte, error) {
	b, err := s.Open(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	data := make([]byte, b.size)
	if _, err := io.ReadFull(b, data); err != nil {
		return nil, fmt.Errorf("read blob %s: %w", dgst, err)
	}
	if got := digest.SHA256.FromBytes(data); got != dgst {
		return nil, fmt.Errorf("blob %s is corrupt: its content hashes to %s", dgst, got)
	}
	return data, nil
}

// Info describes the blob named dgst.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	p, err := s.Path(dgst)
	if err != nil {
		return Info{}, err
	}
	st, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, errdefs.NotFound("content %s: not found", dgst)
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat blob %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: st.Size(), CreatedAt: st.ModTime()}, nil
}

// Delete removes the blob named dgst.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	p, err := s.Path(dgst)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return errdefs.NotFound("content %s: not found", dgst)
	}
	if err != nil {
		return fmt.Errorf("delete blob %s: %w", dgst, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in digest order. An error from fn
// stops the walk and is returned.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	entries, err := os.ReadDir(s.blobDir())
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		dgst := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if dgst.Validate() != nil {
			continue // not ours
		}
		fi, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // deleted while walking
			}
			return fmt.Errorf("stat blob %s: %w", dgst, err)
		}
		if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
			return err
		}
	}
	return nil
}
