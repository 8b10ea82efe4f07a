package local

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// One record, byte for byte as Docker's gogo-protobuf marshaling writes it:
// fields in order, proto3 zero values left out, framed by its size.
func TestRecordBytes(t *testing.T) {
	e := logger.Entry{Stream: "stdout", Line: []byte("hi\n"), Time: time.Unix(0, 1)}
	got := AppendRecord(nil, &e, []logger.Attr{{Key: "k", Value: "v"}}, false, false, "", 0)
	want := "00000016" + "0a06" + hex.EncodeToString([]byte("stdout")) + "1001" + "1a02" + hex.EncodeToString([]byte("hi")) +
		"3206" + "0a016b" + "120176" + "00000016"
	if hex.EncodeToString(got) != want {
		t.Errorf("got  %x\nwant %s", got, want)
	}
	// A middle piece of a long line: partial, metadata with id and ordinal.
	got = AppendRecord(nil, &logger.Entry{Stream: "stderr", Line: []byte("ab"), Time: time.Unix(0, 1)}, nil, true, false, "x", 2)
	want = "0a06" + hex.EncodeToString([]byte("stderr")) + "1001" + "1a026162" + "2001" + "2a05" + "120178" + "1802"
	if h := hex.EncodeToString(got); h[8:len(h)-8] != want {
		t.Errorf("partial got %x\nwant %s", got, want)
	}
}

func readAll(t *testing.T, path string, opts logger.ReadOptions) []logger.Entry {
	t.Helper()
	var es []logger.Entry
	if err := Read(context.Background(), path, opts, func(e logger.Entry) error { es = append(es, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return es
}

func TestRoundTripRotationCompression(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "container.log")
	w, err := Open(logger.FileConfig{Path: path, MaxSize: 1024, MaxFiles: 4, Compress: true}, []logger.Attr{{Key: "tag", Value: "web"}})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	var want []string
	for i := 0; i < 60; i++ {
		line := fmt.Sprintf("line %d\n", i)
		want = append(want, line)
		if err := w.WriteEntries([]logger.Entry{{Stream: "stdout", Line: []byte(line), Time: t0.Add(time.Duration(i) * time.Second)}}); err != nil {
			t.Fatal(err)
		}
	}
	// A line in three pieces, and an unfinished one at the end.
	w.WriteEntries([]logger.Entry{{Stream: "stderr", Line: []byte("aaa"), Time: t0}, {Stream: "stderr", Line: []byte("bbb"), Time: t0}, {Stream: "stderr", Line: []byte("ccc\n"), Time: t0}})
	w.WriteEntries([]logger.Entry{{Stream: "stderr", Line: []byte("tail"), Time: t0}})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"container.log", "container.log.1.gz", "container.log.2.gz", "container.log.3.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}
	for _, f := range []string{"container.log.1", "container.log.4.gz"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s exists", f)
		}
	}
	es := readAll(t, path, logger.ReadOptions{Tail: -1})
	var got []string
	for _, e := range es {
		got = append(got, string(e.Line))
		if len(e.Attrs) != 1 || e.Attrs[0] != (logger.Attr{Key: "tag", Value: "web"}) {
			t.Fatalf("attrs %v", e.Attrs)
		}
	}
	all := strings.Join(got, "")
	if !strings.HasSuffix(all, "line 59\naaabbbccc\ntail") {
		t.Errorf("end of log: %q", all[max(0, len(all)-60):])
	}
	// What survived is a contiguous run of the newest lines.
	first := strings.Index(strings.Join(want, ""), got[0])
	if first < 0 || !strings.HasPrefix(strings.Join(want, "")[first:]+"aaabbbccc\ntail", all) {
		t.Errorf("records not contiguous: %q", all)
	}
	if es[0].Time.IsZero() || es[0].Stream != "stdout" {
		t.Errorf("first %+v", es[0])
	}
	// Tail counts records across files (pieces are records, as Docker's).
	tail := readAll(t, path, logger.ReadOptions{Tail: 6})
	var tl []string
	for _, e := range tail {
		tl = append(tl, string(e.Line))
	}
	if strings.Join(tl, "|") != "line 58\n|line 59\n|aaa|bbb|ccc\n|tail" {
		t.Errorf("tail 6: %q", tl)
	}
	// A torn record at the end (writer died mid-write) is skipped.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 0, 40, 1, 2})
	f.Close()
	tail = readAll(t, path, logger.ReadOptions{Tail: 1})
	if len(tail) != 1 || string(tail[0].Line) != "tail" {
		t.Errorf("tail after torn record: %+v", tail)
	}
	if n := len(readAll(t, path, logger.ReadOptions{Tail: -1})); n != len(es) {
		t.Errorf("all after torn record: %d records, want %d", n, len(es))
	}
	_ = bytes.MinRead
}
