// Package crilog writes container logs in the Kubernetes CRI log format,
// the one the kubelet and crictl read from the file the kubelet names:
//
//	2024-01-02T03:04:05.123456789Z stdout F a whole line
//	2024-01-02T03:04:05.123456789Z stderr P the start of a longer line
//
// one record per line: the time (RFC 3339, nanoseconds), the stream, a tag
// (F: the line ends here; P: a partial line that the next records of the
// stream continue) and the bytes without their newline. The monitor links
// it, so it uses the standard library only.
package crilog

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// Writer appends records to a CRI log file. It is safe for concurrent use
// (stdout and stderr are copied by two goroutines).
type Writer struct {
	mu   sync.Mutex
	path string
	f    *os.File
	buf  []byte
}

// Open opens (appends to, creating it and its directory) the log at path.
func Open(path string) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("cri log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("cri log: %w", err)
	}
	return &Writer{path: path, f: f}, nil
}

// Reopen starts writing to a new file at the path: the kubelet renamed the
// old one to rotate it (CRI ReopenContainerLog).
func (w *Writer) Reopen() error {
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("cri log: reopen: %w", err)
	}
	w.mu.Lock()
	old := w.f
	w.f = f
	w.mu.Unlock()
	return old.Close()
}

// WriteEntries writes es in one write, so records of stdout and stderr
// never interleave inside a line.
func (w *Writer) WriteEntries(es []logger.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.buf[:0]
	for _, e := range es {
		b = Append(b, e)
	}
	w.buf = b
	_, err := w.f.Write(b)
	return err
}

// Append appends the record of e to b.
func Append(b []byte, e logger.Entry) []byte {
	b = e.Time.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, ' ')
	b = append(b, e.Stream...)
	line, full := bytes.CutSuffix(e.Line, []byte{'\n'})
	if full {
		b = append(b, " F "...)
	} else {
		b = append(b, " P "...)
	}
	b = append(b, line...)
	return append(b, '\n')
}

func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.f.Close()
}
