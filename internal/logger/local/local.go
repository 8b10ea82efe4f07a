// Package local writes and reads Docker's "local" log format: each record is
// a protobuf LogEntry (Docker's daemon/logger/internal/logdriver/entry.proto)
// framed by its size, a big-endian uint32, before and after it:
//
//	[size][LogEntry][size][size][LogEntry][size]...
//
// so a file can be read forwards and tailed backwards. The message is
// encoded by hand (a handful of fields): the monitor links this package and
// must stay small. Lines are stored without their newline; a piece of a line
// longer than 16 KiB is marked partial, with Docker's partial metadata.
package local

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// Defaults of Docker's local driver.
const (
	DefaultMaxSize  = 20 << 20
	DefaultMaxFiles = 5
	DefaultCompress = true
)

// maxRecord bounds a record's size when reading (Docker's maxMsgLen).
const maxRecord = 1_000_000

// Writer appends records to a local-format log and rotates it.
type Writer struct {
	f       *logger.File
	attrs   []logger.Attr
	partial map[string]*logger.Partial // per stream; used under f's lock
	enc     logger.Encoder
}

// Open opens (or creates) the log described by cfg for appending. attrs
// (labels, env, tag) are stored with every record, sorted by key.
func Open(cfg logger.FileConfig, attrs []logger.Attr) (*Writer, error) {
	f, err := logger.OpenFile(cfg)
	if err != nil {
		return nil, fmt.Errorf("local log: %w", err)
	}
	attrs = slices.Clone(attrs)
	slices.SortFunc(attrs, func(a, b logger.Attr) int {
		if c := strings.Compare(a.Key, b.Key); c != 0 {
			return c
		}
		return strings.Compare(a.Value, b.Value)
	})
	w := &Writer{f: f, attrs: attrs, partial: map[string]*logger.Partial{}}
	w.enc = w.encode
	return w, nil
}

// WriteEntries appends records.
func (w *Writer) WriteEntries(es []logger.Entry) error {
	return w.f.WriteEntries(es, w.enc)
}

// Close closes the log.
func (w *Writer) Close() error { return w.f.Close() }

func newPartialID() string {
	return randomID()
}

func (w *Writer) encode(b []byte, e *logger.Entry) []byte {
	p := w.partial[e.Stream]
	if p == nil {
		p = &logger.Partial{}
		w.partial[e.Stream] = p
	}
	partial, last, id, ordinal := p.Next(e, newPartialID)
	return AppendRecord(b, e, w.attrs, partial, last, id, ordinal)
}

// AppendRecord appends the framed record of e.
func AppendRecord(b []byte, e *logger.Entry, attrs []logger.Attr, partial, last bool, id string, ordinal int) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // size, set below
	line := e.Line
	if n := len(line); n > 0 && line[n-1] == '\n' {
		line = line[:n-1]
	}
	b = appendString(b, 1, e.Stream)
	if ns := timeNano(e.Time); ns != 0 {
		b = appendVarint(b, 2<<3|0, uint64(ns))
	}
	b = appendString(b, 3, string(line))
	if partial {
		b = appendVarint(b, 4<<3|0, 1)
		var md []byte
		if last {
			md = appendVarint(md, 1<<3|0, 1)
		}
		md = appendString(md, 2, id)
		if ordinal != 0 {
			md = appendVarint(md, 3<<3|0, uint64(int64(int32(ordinal))))
		}
		b = appendBytesField(b, 5, md)
	}
	for _, a := range attrs {
		var m []byte
		m = appendString(m, 1, a.Key)
		m = appendString(m, 2, a.Value)
		b = appendBytesField(b, 6, m)
	}
	size := uint32(len(b) - start - 4)
	binary.BigEndian.PutUint32(b[start:], size)
	return binary.BigEndian.AppendUint32(b, size)
}

func timeNano(t time.Time) int64 {
	if t.IsZero() {
		t = time.Now()
	}
	return t.UnixNano()
}

func appendVarint(b []byte, key uint64, v uint64) []byte {
	b = binary.AppendUvarint(b, key)
	return binary.AppendUvarint(b, v)
}

// appendString appends a string or bytes field; proto3 omits empty ones.
func appendString(b []byte, field int, s string) []byte {
	if s == "" {
		return b
	}
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytesField(b []byte, field int, m []byte) []byte {
	b = binary.AppendUvarint(b, uint64(field)<<3|2)
	b = binary.AppendUvarint(b, uint64(len(m)))
	return append(b, m...)
}

// Read delivers the records of the local-format log at path (and its
// rotated files), oldest first, to fn.
func Read(ctx context.Context, path string, opts logger.ReadOptions, fn func(logger.Entry) error) error {
	return logger.ReadFiles(ctx, path, Format, opts, fn)
}

// Format frames local-format records.
var Format logger.Format = format{}

type format struct{}

func (format) Split(data []byte) int {
	if len(data) < 4 {
		return 0
	}
	n := int(binary.BigEndian.Uint32(data))
	if n > maxRecord {
		// Not a record boundary (a torn file): give up on the rest of the
		// file, as Docker's decoder does ("log message is too large").
		return 0
	}
	if len(data) < n+8 {
		return 0
	}
	return n + 8
}

var errCorrupt = errors.New("local log: corrupt record")

func (format) Decode(rec []byte) (logger.Entry, error) {
	n := len(rec) - 8
	if n < 0 || binary.BigEndian.Uint32(rec[n+4:]) != uint32(n) {
		return logger.Entry{}, errCorrupt
	}
	return decode(rec[4 : 4+n])
}

// TailStart walks the size footers backwards from the end.
func (format) TailStart(f *os.File, size int64, n int) (off int64, found int, err error) {
	var buf [4]byte
	off = size
	for found < n && off >= 8 {
		if _, err := f.ReadAt(buf[:], off-4); err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("tail local log: %w", err)
		}
		l := int64(binary.BigEndian.Uint32(buf[:]))
		start := off - 8 - l
		ok := start >= 0
		if ok {
			if _, err := f.ReadAt(buf[:], start); err != nil && err != io.EOF {
				return 0, 0, fmt.Errorf("tail local log: %w", err)
			}
			ok = int64(binary.BigEndian.Uint32(buf[:])) == l
		}
		if !ok {
			if found == 0 && off == size {
				// A torn record at the end (the writer died mid-write):
				// find where the complete records end, forwards, and
				// tail from there.
				end, err := completeEnd(f, size)
				if err != nil || end == size {
					return 0, 0, err
				}
				return format{}.TailStart(f, end, n)
			}
			break
		}
		off = start
		found++
	}
	return off, found, nil
}

// completeEnd is the offset just after the last complete record of f.
func completeEnd(f *os.File, size int64) (int64, error) {
	var buf [4]byte
	pos := int64(0)
	for pos+8 <= size {
		if _, err := f.ReadAt(buf[:], pos); err != nil && err != io.EOF {
			return 0, fmt.Errorf("tail local log: %w", err)
		}
		l := int64(binary.BigEndian.Uint32(buf[:]))
		if pos+8+l > size {
			break
		}
		if _, err := f.ReadAt(buf[:], pos+4+l); err != nil && err != io.EOF {
			return 0, fmt.Errorf("tail local log: %w", err)
		}
		if int64(binary.BigEndian.Uint32(buf[:])) != l {
			break
		}
		pos += 8 + l
	}
	return pos, nil
}

// decode parses a LogEntry; fields it does not know are skipped.
func decode(b []byte) (logger.Entry, error) {
	var e logger.Entry
	partial, last := false, false
	for len(b) > 0 {
		key, k := binary.Uvarint(b)
		if k <= 0 {
			return e, errCorrupt
		}
		b = b[k:]
		field, wire := key>>3, key&7
		switch wire {
		case 0:
			v, k := binary.Uvarint(b)
			if k <= 0 {
				return e, errCorrupt
			}
			b = b[k:]
			switch field {
			case 2:
				e.Time = time.Unix(0, int64(v)).UTC()
			case 4:
				partial = v != 0
			}
		case 2:
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return e, errCorrupt
			}
			v := b[k : k+int(l)]
			b = b[k+int(l):]
			switch field {
			case 1:
				e.Stream = string(v)
			case 3:
				e.Line = append(make([]byte, 0, len(v)+1), v...)
			case 5:
				last = metaLast(v)
			case 6:
				k, val := attr(v)
				e.Attrs = append(e.Attrs, logger.Attr{Key: k, Value: val})
			}
		case 1:
			if len(b) < 8 {
				return e, errCorrupt
			}
			b = b[8:]
		case 5:
			if len(b) < 4 {
				return e, errCorrupt
			}
			b = b[4:]
		default:
			return e, errCorrupt
		}
	}
	if !partial || last {
		e.Line = append(e.Line, '\n')
	}
	return e, nil
}

// metaLast reads PartialLogEntryMetadata.last.
func metaLast(b []byte) bool {
	for len(b) > 0 {
		key, k := binary.Uvarint(b)
		if k <= 0 {
			return false
		}
		b = b[k:]
		switch key & 7 {
		case 0:
			v, k := binary.Uvarint(b)
			if k <= 0 {
				return false
			}
			b = b[k:]
			if key>>3 == 1 {
				return v != 0
			}
		case 2:
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return false
			}
			b = b[k+int(l):]
		default:
			return false
		}
	}
	return false
}

func attr(b []byte) (key, value string) {
	for len(b) > 0 {
		tag, k := binary.Uvarint(b)
		if k <= 0 || tag&7 != 2 {
			return
		}
		b = b[k:]
		l, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < l {
			return
		}
		v := string(b[k : k+int(l)])
		b = b[k+int(l):]
		switch tag >> 3 {
		case 1:
			key = v
		case 2:
			value = v
		}
	}
	return
}

// randomID is 64 hex digits, like Docker's stringid.GenerateRandomID. The
// IDs only tell records apart: math/rand (seeded by the runtime) serves,
// and crypto/rand would link the whole crypto stack into the monitor.
func randomID() string {
	var b [32]byte
	for i := 0; i < 32; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], rand.Uint64())
	}
	return hex.EncodeToString(b[:])
}
