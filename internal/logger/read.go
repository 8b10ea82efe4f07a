package logger

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"
)

// ReadOptions select the records Read delivers.
type ReadOptions struct {
	// Tail is the number of records to deliver from the end of the log;
	// negative means all of them, 0 none (only new ones when following).
	// Like Docker, the tail is taken first and Since/Until filter it.
	Tail int
	// Since and Until bound the record times (both inclusive); zero means
	// no bound. Reading ends at the first record after Until.
	Since, Until time.Time
	// Follow keeps reading as the log grows and across rotations, until ctx
	// ends, a record passes Until, or Stopped fires: then Read delivers what
	// has been written by that time and returns nil.
	Follow  bool
	Stopped <-chan struct{}
}

// errStop ends reading early without an error for the caller.
var errStop = errors.New("stop")

// Format is how a file driver frames and encodes its records.
type Format interface {
	// Split returns the length of the first complete record at the start of
	// data, framing included, or 0 when data holds no complete record yet.
	Split(data []byte) int
	// Decode decodes a record Split delimited. An error skips the record.
	Decode(rec []byte) (Entry, error)
	// TailStart returns the offset of the first of the last n complete
	// records of f (size bytes) and how many it found (fewer than n when
	// the file is short), reading backwards.
	TailStart(f *os.File, size int64, n int) (off int64, found int, err error)
}

// ReadFiles delivers the records of the log at path (and its rotated files,
// plain or gzipped), oldest first, to fn. An error from fn ends the read and
// is returned. A log that does not exist reads as empty.
func ReadFiles(ctx context.Context, path string, format Format, opts ReadOptions, fn func(Entry) error) error {
	var ino *inotify
	if opts.Follow {
		// Watch before the first read so that no write after it is missed.
		ino = newInotify(filepath.Dir(path))
		defer ino.close()
	}
	files, err := openAll(path, opts.Since)
	if err != nil {
		return err
	}
	defer func() {
		for _, f := range files {
			f.close()
		}
	}()
	if opts.Tail >= 0 {
		kept, err := tail(files, format, opts.Tail)
		if err != nil {
			return err
		}
		files = kept
	}
	r := &reader{opts: opts, fn: fn, format: format}
	for i, f := range files {
		if i == len(files)-1 && opts.Follow {
			break // the live file: the follow loop reads it
		}
		if err := r.readFile(f, false); err != nil {
			return r.result(err)
		}
	}
	if !opts.Follow {
		return nil
	}
	var cur *logFile
	if len(files) > 0 {
		cur = files[len(files)-1]
		files = files[:len(files)-1] // cur is closed by follow
	}
	return r.result(r.follow(ctx, path, cur, ino))
}

type reader struct {
	opts   ReadOptions
	fn     func(Entry) error
	format Format
	buf    []byte
}

func (r *reader) result(err error) error {
	if err == errStop {
		return nil
	}
	return err
}

// readFile delivers the complete records of f from its offset to its end.
// The bytes of an incomplete last record stay unread (f.off points at them)
// so a follower can read the record once the writer has finished it.
func (r *reader) readFile(f *logFile, keepPartial bool) error {
	if _, err := f.f.Seek(f.off, io.SeekStart); err != nil {
		return fmt.Errorf("read log file: %w", err)
	}
	if r.buf == nil {
		r.buf = make([]byte, 64<<10)
	}
	have := 0 // bytes at the start of r.buf not yet consumed
	for {
		n, err := f.f.Read(r.buf[have:])
		have += n
		data := r.buf[:have]
		for {
			i := r.format.Split(data)
			if i <= 0 {
				break
			}
			rec := data[:i]
			data = data[i:]
			f.off += int64(i)
			if err := r.deliver(rec); err != nil {
				return err
			}
		}
		have = copy(r.buf, data)
		if have == len(r.buf) {
			// A record longer than the buffer: grow it.
			nb := make([]byte, 2*len(r.buf))
			copy(nb, r.buf)
			r.buf = nb
		}
		if err == io.EOF || (n == 0 && err == nil) {
			if !keepPartial && have > 0 {
				// A writer that died mid-record left a torn line: skip it.
				f.off += int64(have)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("read log file: %w", err)
		}
	}
}

func (r *reader) deliver(rec []byte) error {
	e, err := r.format.Decode(rec)
	if err != nil {
		return nil // not a record (torn or foreign line): skip, like Docker's decoder resync
	}
	if !r.opts.Since.IsZero() && e.Time.Before(r.opts.Since) {
		return nil
	}
	if !r.opts.Until.IsZero() && e.Time.After(r.opts.Until) {
		return errStop
	}
	return r.fn(e)
}

// follow reads cur to its end, then waits for more, switching to the new file
// when the log rotates.
func (r *reader) follow(ctx context.Context, path string, cur *logFile, ino *inotify) error {
	defer func() {
		if cur != nil {
			cur.close()
		}
	}()
	var untilC <-chan time.Time
	if !r.opts.Until.IsZero() {
		t := time.NewTimer(time.Until(r.opts.Until))
		defer t.Stop()
		untilC = t.C
	}
	stopped := r.opts.Stopped
	last := false // stopped or past until: this is the final pass
	for {
		if cur != nil {
			if err := r.readFile(cur, true); err != nil {
				return err
			}
		}
		// At the end of cur: has the path moved on to a new file?
		next, err := openIfNew(path, cur)
		if err != nil {
			return err
		}
		if next != nil {
			if cur != nil {
				// The writer renamed cur before creating next and never
				// writes cur again: read what is left, then switch.
				if err := r.readFile(cur, false); err != nil {
					return err
				}
				// Several rotations since the last look: read the files
				// between cur and next before next.
				if err := r.catchUp(path, cur, next); err != nil {
					next.close()
					return err
				}
				cur.close()
			}
			cur = next
			continue
		}
		if last {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			stopped, last = nil, true
		case <-untilC:
			last = true
		case <-ino.wake:
		case <-ino.tick:
		}
	}
}

// catchUp reads the rotated files between cur and next (the file path named
// when the follower looked), which the writer rotated away more than once
// while the follower was reading cur: cur is now NAME.k (or, compressed,
// NAME.k.gz), and NAME.(k-1) ... NAME.1 hold what was written after it;
// those from next on (next may have been rotated too, meanwhile) are left
// to the follow loop. When cur is not found (dropped already) nothing can
// be recovered.
func (r *reader) catchUp(path string, cur, next *logFile) error {
	var newer []*logFile
	defer func() {
		for _, f := range newer {
			f.close()
		}
	}()
	found := false
	for i := 1; i < 1000 && !found; i++ {
		name := path + "." + strconv.Itoa(i)
		f, err := openLog(name)
		if f == nil && err == nil {
			f, _, err = openGzip(name+".gz", time.Time{})
		}
		if err != nil || f == nil {
			return nil
		}
		if sameLog(f, cur) {
			f.close()
			found = true
			break
		}
		if sameLog(f, next) {
			// next and what is newer: not ours to read.
			f.close()
			for _, g := range newer {
				g.close()
			}
			newer = newer[:0]
			continue
		}
		// A rotation during this scan shifts the files up by one: a file
		// seen at NAME.i shows again at NAME.(i+1).
		if slices.ContainsFunc(newer, func(g *logFile) bool { return sameLog(f, g) }) {
			f.close()
			continue
		}
		newer = append(newer, f)
	}
	if !found {
		return nil
	}
	for i := len(newer) - 1; i >= 0; i-- {
		if err := r.readFile(newer[i], false); err != nil {
			return err
		}
	}
	return nil
}

// sameLog tells whether f is cur, renamed or decompressed: the same inode,
// or the same size and the same first and last bytes.
func sameLog(f, cur *logFile) bool {
	if os.SameFile(f.st, cur.st) {
		return true
	}
	a, err1 := f.f.Stat()
	b, err2 := cur.f.Stat()
	if err1 != nil || err2 != nil || a.Size() != b.Size() {
		return false
	}
	n := min(a.Size(), 4096)
	for _, off := range []int64{0, a.Size() - n} {
		x, y := make([]byte, n), make([]byte, n)
		if _, err := f.f.ReadAt(x, off); err != nil && err != io.EOF {
			return false
		}
		if _, err := cur.f.ReadAt(y, off); err != nil && err != io.EOF {
			return false
		}
		if !bytes.Equal(x, y) {
			return false
		}
	}
	return true
}

// openIfNew opens path when it names a file other than cur; nil when it is
// the same file or does not exist (between a rotation's unlink and create).
func openIfNew(path string, cur *logFile) (*logFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("follow log file: %w", err)
	}
	if cur != nil && os.SameFile(st, cur.st) {
		return nil, nil
	}
	f, err := openLog(path)
	if f == nil || err != nil {
		return nil, err
	}
	if cur != nil && os.SameFile(f.st, cur.st) {
		f.close()
		return nil, nil
	}
	return f, nil
}

type logFile struct {
	f   *os.File
	st  os.FileInfo
	off int64 // where reading starts
}

func (f *logFile) close() { f.f.Close() }

func openLog(name string) (*logFile, error) {
	f, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log file: %w", err)
	}
	return &logFile{f: f, st: st}, nil
}

// openAll opens NAME, NAME.1, NAME.2, ... newest first and returns them
// oldest first. Opening newest first and skipping an inode seen before makes
// a rotation during the opening harmless: the file that moved from NAME to
// NAME.1 is the one already open.
func openAll(path string, since time.Time) ([]*logFile, error) {
	var files []*logFile
	closeAll := func() {
		for _, f := range files {
			f.close()
		}
	}
	misses := 0
	for i := 0; misses < 2; i++ {
		name := path
		if i > 0 {
			name = path + "." + strconv.Itoa(i)
		}
		f, err := openLog(name)
		if f == nil && err == nil && i > 0 {
			var skip bool
			f, skip, err = openGzip(name+".gz", since)
			if skip {
				// Every record of this file and the older ones is before
				// since: none of them is read.
				break
			}
		}
		if err != nil {
			closeAll()
			return nil, err
		}
		if f == nil {
			// One gap is tolerated: a rotation in progress renames from the
			// oldest down, so NAME.i can be missing for a moment.
			if i > 0 {
				misses++
			}
			continue
		}
		misses = 0
		dup := false
		for _, g := range files {
			if os.SameFile(f.st, g.st) {
				dup = true
			}
		}
		if dup {
			f.close()
			continue
		}
		files = append(files, f)
	}
	for i, j := 0, len(files)-1; i < j; i, j = i+1, j-1 {
		files[i], files[j] = files[j], files[i]
	}
	return files, nil
}

// openGzip opens a rotated, compressed file as a decompressed copy (an
// unlinked temporary file next to it, so tail and offsets work as for a
// plain file). With since set, a file whose newest record (Docker's
// lastTime in the gzip header) is older is skipped without decompressing.
func openGzip(name string, since time.Time) (f *logFile, skip bool, err error) {
	in, err := os.Open(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("open log file: %w", err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		return nil, false, fmt.Errorf("open log file %s: %w", filepath.Base(name), err)
	}
	defer zr.Close()
	if !since.IsZero() {
		var x gzipExtra
		if json.Unmarshal(zr.Header.Extra, &x) == nil && !x.LastTime.IsZero() && x.LastTime.Before(since) {
			return nil, true, nil
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(name), ".read-*")
	if err != nil {
		tmp, err = os.CreateTemp("", "skiff-log-read-*")
		if err != nil {
			return nil, false, fmt.Errorf("decompress log file: %w", err)
		}
	}
	os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, zr); err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("decompress log file %s: %w", filepath.Base(name), err)
	}
	st, err := in.Stat() // the compressed file's identity, for openAll's duplicate check
	if err != nil {
		tmp.Close()
		return nil, false, fmt.Errorf("stat log file: %w", err)
	}
	return &logFile{f: tmp, st: st}, false, nil
}

// tail keeps the files (oldest first) that hold the last n complete records
// and sets the offset of the first one; it reads backwards from the end, so
// the cost is proportional to what is delivered, not to the log size.
func tail(files []*logFile, format Format, n int) ([]*logFile, error) {
	for i := len(files) - 1; i >= 0; i-- {
		f := files[i]
		st, err := f.f.Stat()
		if err != nil {
			return nil, fmt.Errorf("tail log file: %w", err)
		}
		off, found, err := format.TailStart(f.f, st.Size(), n)
		if err != nil {
			return nil, err
		}
		f.off = off
		if found >= n {
			for _, g := range files[:i] {
				g.close()
			}
			return files[i:], nil
		}
		n -= found
	}
	return files, nil
}

// inotify wakes a follower when anything in the log's directory changes
// (writes, renames, creations). When inotify is unavailable it falls back to
// a short poll, only while following.
type inotify struct {
	f    *os.File
	wake chan struct{}
	tick <-chan time.Time
	t    *time.Ticker
}

func newInotify(dir string) *inotify {
	in := &inotify{wake: make(chan struct{}, 1)}
	fd, err := syscall.InotifyInit1(syscall.IN_NONBLOCK | syscall.IN_CLOEXEC)
	if err == nil {
		const mask = syscall.IN_MODIFY | syscall.IN_CREATE | syscall.IN_MOVED_TO |
			syscall.IN_MOVED_FROM | syscall.IN_DELETE | syscall.IN_CLOSE_WRITE
		if _, err = syscall.InotifyAddWatch(fd, dir, mask); err != nil {
			syscall.Close(fd)
		}
	}
	if err != nil {
		in.t = time.NewTicker(200 * time.Millisecond)
		in.tick = in.t.C
		return in
	}
	// A non-blocking fd goes to the runtime poller, so closing the file
	// unblocks the goroutine's Read.
	in.f = os.NewFile(uintptr(fd), "inotify")
	go func() {
		buf := make([]byte, 4096)
		for {
			if _, err := in.f.Read(buf); err != nil {
				return
			}
			select {
			case in.wake <- struct{}{}:
			default:
			}
		}
	}()
	return in
}

func (in *inotify) close() {
	if in.f != nil {
		in.f.Close()
	}
	if in.t != nil {
		in.t.Stop()
	}
}
