// Package jsonfile reads and writes container logs in Docker's json-file
// format: one JSON object per line,
//
//	{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}
//
// rotated NAME → NAME.1 → ... → NAME.(max-file-1) (gzipped as NAME.1.gz ...
// with compress). The writer lives in the per-container monitor and the
// reader in the engine, so the package uses the standard library only.
package jsonfile

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/logger"
)

// Entry is one log record (logger.Entry).
type Entry = logger.Entry

// Options configure a Writer beyond its rotation.
type Options struct {
	MaxSize  int64 // 0: unlimited
	MaxFiles int   // files kept including the live one
	Compress bool  // gzip rotated files (NAME.1.gz ...)
	// Attrs are written as every record's "attrs" object (labels, env and
	// tag, as Docker's json-file does).
	Attrs []logger.Attr
}

// Writer appends records to a json-file log and rotates it. It is safe for
// concurrent use (stdout and stderr are copied by two goroutines).
type Writer struct {
	f     *logger.File
	attrs []byte         // the encoded "attrs" object, nil without attributes
	enc   logger.Encoder // w.encode, made once (a method value allocates)
}

// NewWriter opens (or creates) the log at path for appending. maxSize 0 means
// no rotation; maxFiles is the number of files kept including the live one
// (1 means the file is truncated when it is full).
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	return Open(path, Options{MaxSize: maxSize, MaxFiles: maxFiles})
}

// Open is NewWriter with every option.
func Open(path string, o Options) (*Writer, error) {
	if o.MaxSize < 0 {
		return nil, fmt.Errorf("json-file log %s: negative max-size %d", path, o.MaxSize)
	}
	f, err := logger.OpenFile(logger.FileConfig{Path: path, MaxSize: o.MaxSize, MaxFiles: o.MaxFiles, Compress: o.Compress})
	if err != nil {
		return nil, fmt.Errorf("json-file: %w", err)
	}
	w := &Writer{f: f, attrs: encodeAttrs(o.Attrs)}
	w.enc = w.encode
	return w, nil
}

// encodeAttrs is Docker's json.Marshal of a map[string]string: keys sorted,
// HTML characters escaped.
func encodeAttrs(as []logger.Attr) []byte {
	if len(as) == 0 {
		return nil
	}
	m := make(map[string]string, len(as))
	for _, a := range as {
		m[a.Key] = a.Value
	}
	b, _ := json.Marshal(m)
	return b
}

// Write appends one record with a single write(2).
func (w *Writer) Write(e Entry) error {
	return w.WriteEntries([]Entry{e})
}

// WriteEntries appends records in as few write(2) calls as rotation allows:
// the monitor passes all the lines of one read from the container at once.
func (w *Writer) WriteEntries(es []Entry) error {
	return w.f.WriteEntries(es, w.enc)
}

func (w *Writer) encode(b []byte, e *Entry) []byte {
	return appendRecordAttrs(b, e, w.attrs)
}

// Close closes the log file (after a compression in progress).
func (w *Writer) Close() error {
	return w.f.Close()
}

func appendRecord(b []byte, e *Entry) []byte { return appendRecordAttrs(b, e, nil) }

// appendRecordAttrs encodes e exactly as Docker's jsonlog.JSONLogs.MarshalJSONBuf
// does (field order, escaping, attrs, RFC3339Nano UTC time) followed by "\n".
func appendRecordAttrs(b []byte, e *Entry, attrs []byte) []byte {
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
	if len(attrs) > 0 {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, `"attrs":`...)
		b = append(b, attrs...)
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
