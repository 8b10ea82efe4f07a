// Package jsonfile reads and writes container logs in Docker's json-file
// format: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// rotated NAME → NAME.1 → ... → NAME.(max-file-1). The writer lives in the
// per-container monitor and the reader in the engine, so the package uses the
// standard library only.
package jsonfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Entry is one log record. Line holds the bytes as the container wrote them,
// including the trailing newline when there was one.
type Entry struct {
	Stream string
	Line   []byte
	Time   time.Time
}

// Writer appends records to a json-file log and rotates it. It is safe for
// concurrent use (stdout and stderr are copied by two goroutines).
type Writer struct {
	mu       sync.Mutex
	path     string
	maxSize  int64 // 0: unlimited
	maxFiles int
	f        *os.File
	size     int64
	buf      []byte
}

// NewWriter opens (or creates) the log at path for appending. maxSize 0 means
// no rotation; maxFiles is the number of files kept including the live one
// (1 means the file is truncated when it is full).
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("json-file log %s: negative max-size %d", path, maxSize)
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open json-file log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat json-file log: %w", err)
	}
	return &Writer{path: path, maxSize: maxSize, maxFiles: maxFiles, f: f, size: st.Size()}, nil
}

// Write appends one record with a single write(2), so a reader never sees
// half of it unless it reads in the middle of that call.
func (w *Writer) Write(e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writeLocked(&e)
}

// WriteEntries appends records in as few write(2) calls as rotation allows:
// the monitor passes all the lines of one read from the container at once.
func (w *Writer) WriteEntries(es []Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return errors.New("json-file log: writer closed")
	}
	w.buf = w.buf[:0]
	for i := range es {
		start := len(w.buf)
		w.buf = appendRecord(w.buf, &es[i])
		n := int64(len(w.buf) - start)
		if w.maxSize > 0 && w.size+int64(start)+n > w.maxSize && w.size+int64(start) > 0 {
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
		if len(w.buf) >= 64<<10 {
			// Bound the buffer: a batch of long lines is written in parts.
			if err := w.flush(w.buf); err != nil {
				return err
			}
			w.buf = w.buf[:0]
		}
	}
	return w.flush(w.buf)
}

func (w *Writer) writeLocked(e *Entry) error {
	if w.f == nil {
		return errors.New("json-file log: writer closed")
	}
	w.buf = appendRecord(w.buf[:0], e)
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(w.buf)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	return w.flush(w.buf)
}

func (w *Writer) flush(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	if err != nil {
		return fmt.Errorf("write json-file log: %w", err)
	}
	return nil
}

// rotate shifts NAME.i → NAME.(i+1), NAME → NAME.1 and starts a new NAME. A
// reader holding the old file open keeps reading it to its end and then
// moves to the new one (it notices that the path names another inode).
func (w *Writer) rotate() error {
	if w.maxFiles > 1 {
		for i := w.maxFiles - 1; i > 1; i-- {
			err := os.Rename(w.path+"."+strconv.Itoa(i-1), w.path+"."+strconv.Itoa(i))
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("rotate json-file log: %w", err)
			}
		}
		if err := os.Rename(w.path, w.path+".1"); err != nil {
			return fmt.Errorf("rotate json-file log: %w", err)
		}
	} else if err := os.Remove(w.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		// One file only: start over. Unlinking instead of truncating lets a
		// follower finish the old file and see a new inode, as for a rename.
		return fmt.Errorf("rotate json-file log: %w", err)
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("rotate json-file log: %w", err)
	}
	w.f.Close()
	w.f, w.size = f, 0
	return nil
}

// Close closes the log file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// appendRecord encodes e exactly as Docker's jsonlog.JSONLogs.MarshalJSONBuf
// does (field order, escaping, RFC3339Nano UTC time) followed by "\n".
func appendRecord(b []byte, e *Entry) []byte {
	t := e.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = append(b, '{')
	first := true
	if len(e.Line) > 0 {
		first = false
		b = append(b, `"log":`...)
		b = appendString(b, e.Line)
	}
	if e.Stream != "" {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"stream":`...)
		b = appendString(b, []byte(e.Stream))
	}
	if !first {
		b = append(b, ',')
	}
	b = append(b, `"time":"`...)
	b = t.UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"', '}', '\n')
}

// appendString is Docker's ffjsonWriteJSONBytesAsString: like encoding/json
// with HTML escaping, except that every control character other than \n and
// \r is written as \u00XX (Go's encoder writes \t, \b and \f short).
func appendString(b, s []byte) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if 0x20 <= c && c != '\\' && c != '"' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
