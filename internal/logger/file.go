package logger

import (
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// File appends encoded records to a log file and rotates it: NAME →
// NAME.1 → ... → NAME.(MaxFiles-1), the oldest dropped. With Compress a
// rotated file is gzipped in the background into NAME.1.gz (Docker's
// names, with Docker's gzip header: {"lastTime": the newest record's time}
// in Extra); a reader finds NAME.1 until NAME.1.gz is complete. A record is
// never split between files: the file rotates before a record that would
// take it past MaxSize. It is safe for concurrent use.
type File struct {
	mu       sync.Mutex
	cfg      FileConfig
	f        *os.File
	size     int64
	buf      []byte
	lastTime time.Time
	// compressing is held by the goroutine gzipping NAME.1; the next
	// rotation and Close wait for it.
	compressing sync.WaitGroup
	compressErr error
}

// OpenFile opens (or creates) the live file for appending.
func OpenFile(cfg FileConfig) (*File, error) {
	if cfg.MaxSize < 0 {
		return nil, fmt.Errorf("log %s: negative max-size %d", cfg.Path, cfg.MaxSize)
	}
	if cfg.MaxFiles < 1 {
		cfg.MaxFiles = 1
	}
	if cfg.MaxFiles < 2 || cfg.MaxSize == 0 {
		cfg.Compress = false // nothing is ever rotated into a kept file
	}
	f, err := os.OpenFile(cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open log file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat log file: %w", err)
	}
	return &File{cfg: cfg, f: f, size: st.Size()}, nil
}

// Encoder appends the encoding of one record to b. It is called with the
// File's lock held, so it may keep state between records.
type Encoder func(b []byte, e *Entry) []byte

// WriteEntries appends records in as few write(2) calls as rotation allows
// (each write holds whole records, so a reader never sees half of one unless
// it reads in the middle of that call).
func (w *File) WriteEntries(es []Entry, enc Encoder) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("log file: writer closed")
	}
	w.buf = w.buf[:0]
	for i := range es {
		start := len(w.buf)
		w.buf = enc(w.buf, &es[i])
		n := int64(len(w.buf) - start)
		if w.cfg.MaxSize > 0 && w.size+int64(start)+n > w.cfg.MaxSize && w.size+int64(start) > 0 {
			// This record would overflow the file: write what precedes it,
			// rotate, and keep the record for the new file.
			if err := w.flush(w.buf[:start]); err != nil {
				return err
			}
			if err := w.rotate(); err != nil {
				return err
			}
			w.buf = w.buf[:copy(w.buf, w.buf[start:])]
		}
		if t := es[i].Time; t.After(w.lastTime) {
			w.lastTime = t
		}
		if len(w.buf) >= 64<<10 {
			// Bound the buffer: a batch of long lines is written in parts.
			if err := w.flush(w.buf); err != nil {
				return err
			}
			w.buf = w.buf[:0]
		}
	}
	err := w.flush(w.buf)
	if cap(w.buf) > 256<<10 {
		w.buf = nil // one huge batch must not pin its buffer
	}
	return err
}

func (w *File) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write log file: %w", err)
	}
	return nil
}

func (w *File) name(i int, gz bool) string {
	s := w.cfg.Path + "." + strconv.Itoa(i)
	if gz {
		s += ".gz"
	}
	return s
}

// rotate shifts the rotated files up by one, NAME → NAME.1, and starts a new
// NAME. A reader holding the old file open reads it to its end and then
// moves to the new one (it notices that the path names another inode).
func (w *File) rotate() error {
	// The previous compression renames NAME.1 away: let it finish first.
	w.compressing.Wait()
	if err := w.compressErr; err != nil {
		w.compressErr = nil
		fmt.Fprintf(os.Stderr, "compress rotated log: %v\n", err)
	}
	if w.cfg.MaxFiles > 1 {
		for i := w.cfg.MaxFiles - 1; i > 1; i-- {
			// Both forms: a compression that did not happen (the monitor
			// died in it) leaves a plain file among the .gz ones.
			for _, gz := range []bool{true, false} {
				err := os.Rename(w.name(i-1, gz), w.name(i, gz))
				if err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("rotate log file: %w", err)
				}
			}
		}
		if err := os.Rename(w.cfg.Path, w.name(1, false)); err != nil {
			return fmt.Errorf("rotate log file: %w", err)
		}
		os.Remove(w.name(1, true)) // it moved up to .2.gz; a stale one must not shadow nothing
	} else if err := os.Remove(w.cfg.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// One file only: start over. Unlinking instead of truncating lets a
		// follower finish the old file and see a new inode, as for a rename.
		return fmt.Errorf("rotate log file: %w", err)
	}
	f, err := os.OpenFile(w.cfg.Path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate log file: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	if w.cfg.Compress {
		w.compressing.Add(1)
		go func(src string, last time.Time) {
			defer w.compressing.Done()
			w.compressErr = compressFile(src, last)
		}(w.name(1, false), w.lastTime)
	}
	return nil
}

// gzipExtra is Docker's metadata in the gzip header of a rotated file.
type gzipExtra struct {
	LastTime time.Time `json:"lastTime"`
}

// compressFile writes src.gz and then removes src, so that a reader always
// finds one complete copy.
func compressFile(src string, last time.Time) (err error) {
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return err
	}
	defer in.Close()
	tmp := src + ".gz.tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o640)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			out.Close()
			os.Remove(tmp)
		}
	}()
	zw, err := gzip.NewWriterLevel(out, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	zw.Header.Extra, _ = json.Marshal(gzipExtra{LastTime: last})
	if _, err = io.Copy(zw, in); err != nil {
		return err
	}
	if err = zw.Close(); err != nil {
		return err
	}
	if err = out.Close(); err != nil {
		return err
	}
	// Written aside and renamed: a reader never opens a half-written .gz.
	if err = os.Rename(tmp, src+".gz"); err != nil {
		return err
	}
	return os.Remove(src)
}

// Close waits for a compression in progress and closes the live file.
func (w *File) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	w.compressing.Wait()
	err := w.f.Close()
	w.f = nil
	if err == nil {
		err = w.compressErr
	}
	return err
}
