package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// ReadOptions select the records Read delivers (logger.ReadOptions).
type ReadOptions = logger.ReadOptions

// Read delivers the records of the json-file log at path (and its rotated
// files), oldest first, to fn. An error from fn ends the read and is
// returned. A log that does not exist reads as empty.
func Read(ctx context.Context, path string, opts ReadOptions, fn func(Entry) error) error {
	return logger.ReadFiles(ctx, path, Format, opts, fn)
}

// Format frames json-file records: one JSON object per line.
var Format logger.Format = format{}

type format struct{}

func (format) Split(data []byte) int {
	return bytes.IndexByte(data, '\n') + 1
}

func (format) Decode(rec []byte) (Entry, error) {
	rec = bytes.TrimSuffix(rec, []byte{'\n'})
	if len(rec) == 0 {
		return Entry{}, errEmpty
	}
	return decode(rec)
}

var errEmpty = fmt.Errorf("empty line")

// TailStart returns the offset of the first of the last n complete lines of
// f and how many complete lines it found (fewer than n when the file is
// short). A line is complete when its '\n' is there; the start of the last n
// lines is just after the (n+1)-th '\n' counted from the end.
func (format) TailStart(f *os.File, size int64, n int) (off int64, found int, err error) {
	buf := make([]byte, 32<<10)
	pos := size
	newlines := 0
	for pos > 0 {
		k := int64(len(buf))
		if pos < k {
			k = pos
		}
		pos -= k
		if _, err := f.ReadAt(buf[:k], pos); err != nil && err != io.EOF {
			return 0, 0, fmt.Errorf("tail json-file log: %w", err)
		}
		chunk := buf[:k]
		for {
			j := bytes.LastIndexByte(chunk, '\n')
			if j < 0 {
				break
			}
			newlines++
			if newlines == n+1 {
				return pos + int64(j) + 1, n, nil
			}
			chunk = chunk[:j]
		}
	}
	return 0, newlines, nil
}

// record is the JSON shape of one line.
type record struct {
	Log    string            `json:"log"`
	Stream string            `json:"stream"`
	Attrs  map[string]string `json:"attrs"`
	Time   time.Time         `json:"time"`
}

func decode(line []byte) (Entry, error) {
	if e, ok := decodeFast(line); ok {
		return e, nil
	}
	var rec record
	if err := json.Unmarshal(line, &rec); err != nil {
		return Entry{}, err
	}
	e := Entry{Stream: rec.Stream, Line: []byte(rec.Log), Time: rec.Time}
	e.Attrs = sortedAttrs(rec.Attrs)
	return e, nil
}
