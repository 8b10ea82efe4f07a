package jsonfile

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var t0 = time.Date(2024, 1, 2, 3, 4, 5, 123456789, time.UTC)

func TestFormat(t *testing.T) {
	est := time.FixedZone("EST", -5*3600)
	tests := []struct {
		name string
		e    Entry
		want string
	}{
		{"plain", Entry{Stream: "stdout", Line: []byte("hello\n"), Time: t0},
			`{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}` + "\n"},
		{"stderr partial", Entry{Stream: "stderr", Line: []byte("no newline"), Time: t0},
			`{"log":"no newline","stream":"stderr","time":"2024-01-02T03:04:05.123456789Z"}` + "\n"},
		// Docker writes every control character but \n and \r as \u00XX,
		// escapes HTML characters, and replaces invalid UTF-8.
		{"escapes", Entry{Stream: "stdout", Line: []byte("a\tb\"c\\d\re\x01f\x7f<g>&\n"), Time: t0},
			`{"log":"a\u0009b\"c\\d\re\u0001f` + "\x7f" + `\u003cg\u003e\u0026\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}` + "\n"},
		{"utf8", Entry{Stream: "stdout", Line: []byte("héllo \u2028\u2029 \xff\xfe 日本\n"), Time: t0},
			`{"log":"héllo \u2028\u2029 \ufffd\ufffd 日本\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}` + "\n"},
		{"trailing zeros trimmed, converted to UTC", Entry{Stream: "stdout", Line: []byte("x\n"), Time: time.Date(2024, 1, 1, 22, 0, 0, 500000000, est)},
			`{"log":"x\n","stream":"stdout","time":"2024-01-02T03:00:00.5Z"}` + "\n"},
		{"whole second", Entry{Stream: "stdout", Line: []byte("x\n"), Time: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)},
			`{"log":"x\n","stream":"stdout","time":"2024-01-02T03:04:05Z"}` + "\n"},
		{"no stream", Entry{Line: []byte("x\n"), Time: t0},
			`{"log":"x\n","time":"2024-01-02T03:04:05.123456789Z"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			w, err := NewWriter(path, 0, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Write(tt.e); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			// What we write, encoding/json reads back the same.
			var rec record
			if err := json.Unmarshal(got, &rec); err != nil {
				t.Fatal(err)
			}
			if want := string(bytes.ToValidUTF8(tt.e.Line, []byte("\ufffd"))); rec.Log != want && utf8.Valid(tt.e.Line) {
				t.Errorf("log read back %q, want %q", rec.Log, want)
			}
			if !rec.Time.Equal(tt.e.Time) {
				t.Errorf("time read back %v, want %v", rec.Time, tt.e.Time)
			}
		})
	}
}

// The reflection-free decoder must agree with encoding/json on every record
// the writer produces, whatever the bytes.
func TestDecodeMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	alphabet := []byte("ab \t\n\r\"\\/<>&\x00\x01\x1f\x7f\xc3\xa9\xe2\x80\xa8\xff\xf0\x9f\x98\x80")
	for i := 0; i < 5000; i++ {
		line := make([]byte, rng.Intn(40))
		for j := range line {
			line[j] = alphabet[rng.Intn(len(alphabet))]
		}
		in := Entry{Stream: "stdout", Line: line, Time: t0.Add(time.Duration(rng.Int63n(1e12)))}
		b := appendRecord(nil, &in)
		b = b[:len(b)-1]
		fast, ok := decodeFast(b)
		if !ok {
			t.Fatalf("decodeFast refused %s", b)
		}
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("encoding/json refused %s: %v", b, err)
		}
		if string(fast.Line) != rec.Log || fast.Stream != rec.Stream || !fast.Time.Equal(rec.Time) {
			t.Fatalf("decode %s:\nfast %q %q %v\njson %q %q %v", b, fast.Line, fast.Stream, fast.Time, rec.Log, rec.Stream, rec.Time)
		}
	}
	// Escapes the writer never produces but other writers may.
	for _, s := range []string{
		`{"log":"\t\b\f\/\u00e9\ud83d\ude00\ud83d x\n","stream":"stdout","time":"2024-01-02T03:04:05Z"}`,
		`{"stream":"stderr","log":"swapped","time":"2024-01-02T03:04:05Z"}`,
	} {
		fast, ok := decodeFast([]byte(s))
		var rec record
		if err := json.Unmarshal([]byte(s), &rec); err != nil {
			t.Fatal(err)
		}
		if !ok || string(fast.Line) != rec.Log || fast.Stream != rec.Stream {
			t.Errorf("decode %s: fast %q %q ok=%v, json %q %q", s, fast.Line, fast.Stream, ok, rec.Log, rec.Stream)
		}
	}
	// Unknown shapes fall back to encoding/json through decode.
	e, err := decode([]byte(`{ "log" : "spaced\n", "stream":"stdout", "time":"2024-01-02T03:04:05Z", "attrs":{"a":"b"}}`))
	if err != nil || string(e.Line) != "spaced\n" || e.Stream != "stdout" {
		t.Errorf("fallback decode: %+v %v", e, err)
	}
}

// writeN writes records "line i\n" with times t0+i seconds.
func writeN(t *testing.T, w *Writer, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		stream := "stdout"
		if i%3 == 0 {
			stream = "stderr"
		}
		if err := w.Write(Entry{Stream: stream, Line: []byte(fmt.Sprintf("line %d\n", i)), Time: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
}

func readAll(t *testing.T, path string, opts ReadOptions) []string {
	t.Helper()
	var got []string
	err := Read(context.Background(), path, opts, func(e Entry) error {
		got = append(got, strings.TrimSuffix(string(e.Line), "\n"))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func lines(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, fmt.Sprintf("line %d", i))
	}
	return out
}

// recordSize is the encoded size of the records writeN writes for i in 10..99.
var recordSize = len(appendRecord(nil, &Entry{Stream: "stdout", Line: []byte("line 10\n"), Time: t0.Add(10 * time.Second)}))

func TestRotation(t *testing.T) {
	tests := []struct {
		name      string
		perFile   int // records per file
		maxFiles  int
		n         int
		wantFiles int
	}{
		{"no rotation needed", 10, 3, 10, 1},
		{"one rotation", 10, 3, 11, 2},
		{"oldest dropped", 10, 3, 75, 3},
		{"single file truncates", 10, 1, 35, 1},
		{"many files", 4, 6, 80, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "c-json.log")
			max := int64(tt.perFile * recordSize)
			w, err := NewWriter(path, max, tt.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			// Records 10..99 all have the same size: perFile fit exactly.
			writeN(t, w, 10, 10+tt.n)
			w.Close()
			for i := 0; i < tt.maxFiles+2; i++ {
				name := path
				if i > 0 {
					name += "." + strconv.Itoa(i)
				}
				st, err := os.Stat(name)
				if exists := err == nil; exists != (i < tt.wantFiles) {
					t.Errorf("%s exists=%v, want %v", filepath.Base(name), exists, i < tt.wantFiles)
					continue
				}
				if err == nil && st.Size() > max {
					t.Errorf("%s has %d bytes, max-size %d", filepath.Base(name), st.Size(), max)
				}
				if err == nil && i > 0 && st.Size() != max {
					t.Errorf("rotated %s has %d bytes, want full %d", filepath.Base(name), st.Size(), max)
				}
			}
			// Whatever survived is the newest records, in order.
			kept := (tt.wantFiles-1)*tt.perFile + (tt.n-1)%tt.perFile + 1
			if kept > tt.n {
				kept = tt.n
			}
			want := lines(10+tt.n-kept, 10+tt.n)
			if got := readAll(t, path, ReadOptions{Tail: -1}); !equal(got, want) {
				t.Errorf("read all:\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestWriteEntriesRotatesInsideBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	max := int64(4 * recordSize)
	w, err := NewWriter(path, max, 5)
	if err != nil {
		t.Fatal(err)
	}
	var es []Entry
	for i := 10; i < 20; i++ {
		es = append(es, Entry{Stream: "stdout", Line: []byte(fmt.Sprintf("line %d\n", i)), Time: t0})
	}
	if err := w.WriteEntries(es); err != nil {
		t.Fatal(err)
	}
	w.Close()
	for _, name := range []string{path + ".2", path + ".1"} {
		if st, err := os.Stat(name); err != nil || st.Size() != max {
			t.Errorf("%s: %v (size want %d)", name, err, max)
		}
	}
	if got, want := readAll(t, path, ReadOptions{Tail: -1}), lines(10, 20); !equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
}

func TestReopenAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	for round := 0; round < 2; round++ {
		w, err := NewWriter(path, int64(10*recordSize), 3)
		if err != nil {
			t.Fatal(err)
		}
		writeN(t, w, 10+round*7, 17+round*7)
		w.Close()
	}
	// 14 records, 10 per file: the second writer knew the size it started at.
	if got, want := readAll(t, path, ReadOptions{Tail: -1}), lines(10, 24); !equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if st, err := os.Stat(path); err != nil || st.Size() != int64(4*recordSize) {
		t.Errorf("live file: %v, size want %d", err, 4*recordSize)
	}
}

func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, int64(10*recordSize), 4)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 10, 45) // files: .3 = 10..19, .2 = 20..29, .1 = 30..39, live = 40..44
	w.Close()
	for _, n := range []int{0, 1, 5, 6, 15, 25, 35, 36, 1000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			from := 45 - n
			if from < 10 {
				from = 10
			}
			if got, want := readAll(t, path, ReadOptions{Tail: n}), lines(from, 45); !equal(got, want) {
				t.Errorf("tail %d:\n got %v\nwant %v", n, got, want)
			}
		})
	}
	// A torn last line (writer died mid-write) is not a record.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"log":"torn`)
	f.Close()
	if got, want := readAll(t, path, ReadOptions{Tail: 2}), lines(43, 45); !equal(got, want) {
		t.Errorf("tail with torn line: got %v want %v", got, want)
	}
	if got, want := readAll(t, path, ReadOptions{Tail: -1}), lines(10, 45); !equal(got, want) {
		t.Errorf("all with torn line: got %v want %v", got, want)
	}
}

// Tail must read backwards: a log that starts with a 64 GiB hole is tailed
// at once (reading it forwards would take minutes).
func TestTailIsBackwards(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(64 << 30); err != nil {
		t.Skipf("cannot make a sparse file: %v", err)
	}
	f.Seek(0, 2)
	f.WriteString("\n")
	for i := 0; i < 100; i++ {
		f.Write(appendRecord(nil, &Entry{Stream: "stdout", Line: []byte(fmt.Sprintf("line %d\n", i)), Time: t0}))
	}
	f.Close()
	start := time.Now()
	if got, want := readAll(t, path, ReadOptions{Tail: 10}), lines(90, 100); !equal(got, want) {
		t.Errorf("got %v want %v", got, want)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("tail 10 took %v", d)
	}
}

func TestSinceUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, int64(10*recordSize), 5)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 10, 40)
	w.Close()
	at := func(i int) time.Time { return t0.Add(time.Duration(i) * time.Second) }
	tests := []struct {
		name     string
		opts     ReadOptions
		from, to int
	}{
		{"since inclusive", ReadOptions{Tail: -1, Since: at(25)}, 25, 40},
		{"until inclusive", ReadOptions{Tail: -1, Until: at(15)}, 10, 16},
		{"both across files", ReadOptions{Tail: -1, Since: at(18), Until: at(33)}, 18, 34},
		{"since between records", ReadOptions{Tail: -1, Since: at(25).Add(time.Millisecond)}, 26, 40},
		{"tail first, then since", ReadOptions{Tail: 5, Since: at(20)}, 35, 40},
		{"tail first, since filters it", ReadOptions{Tail: 5, Since: at(37)}, 37, 40},
		{"nothing", ReadOptions{Tail: -1, Since: at(50)}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := readAll(t, path, tt.opts), lines(tt.from, tt.to); !equal(got, want) {
				t.Errorf("got %v want %v", got, want)
			}
		})
	}
}

func TestReadMissingAndCallbackError(t *testing.T) {
	dir := t.TempDir()
	if got := readAll(t, filepath.Join(dir, "none.log"), ReadOptions{Tail: -1}); len(got) != 0 {
		t.Errorf("missing log read %v", got)
	}
	path := filepath.Join(dir, "c-json.log")
	w, _ := NewWriter(path, 0, 1)
	writeN(t, w, 10, 20)
	w.Close()
	boom := errors.New("boom")
	n := 0
	err := Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error {
		n++
		if n == 3 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || n != 3 {
		t.Errorf("err %v after %d records, want boom after 3", err, n)
	}
}

// follower runs Read with Follow in the background and collects lines.
type follower struct {
	ch   chan string
	done chan error
}

func follow(ctx context.Context, path string, opts ReadOptions) *follower {
	f := &follower{ch: make(chan string, 1000), done: make(chan error, 1)}
	opts.Follow = true
	go func() {
		f.done <- Read(ctx, path, opts, func(e Entry) error {
			f.ch <- strings.TrimSuffix(string(e.Line), "\n")
			return nil
		})
	}()
	return f
}

func (f *follower) expect(t *testing.T, want []string) {
	t.Helper()
	for _, w := range want {
		select {
		case got := <-f.ch:
			if got != w {
				t.Fatalf("followed %q, want %q", got, w)
			}
		case err := <-f.done:
			// Read may return right after delivering its last records;
			// select picks at random between ready cases, so the records
			// can still be waiting in ch.
			select {
			case got := <-f.ch:
				f.done <- err // for whoever waits for the end next
				if got != w {
					t.Fatalf("followed %q, want %q", got, w)
				}
				continue
			default:
			}
			t.Fatalf("follow ended early (%v) waiting for %q", err, w)
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out waiting for %q", w)
		}
	}
}

func TestFollow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, int64(10*recordSize), 3)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 10, 25)
	stopped := make(chan struct{})
	f := follow(context.Background(), path, ReadOptions{Tail: 3, Stopped: stopped})
	f.expect(t, lines(22, 25))
	writeN(t, w, 25, 28)
	f.expect(t, lines(25, 28))
	// Across several rotations, one line at a time, a few lines ahead of
	// the reader: never more than the kept files hold (3 x 10 lines), or
	// a slow reader on a loaded machine would lose lines as Docker's does.
	for i := 28; i < 60; i += 7 {
		end := min(i+7, 60)
		for j := i; j < end; j++ {
			writeN(t, w, j, j+1)
		}
		f.expect(t, lines(i, end))
	}
	// Written before stop: delivered; then Read returns nil.
	writeN(t, w, 60, 63)
	close(stopped)
	f.expect(t, lines(60, 63))
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after stop")
	}
	if len(f.ch) != 0 {
		t.Errorf("extra lines: %d", len(f.ch))
	}
	w.Close()
}

func TestFollowSingleFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, int64(5*recordSize), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	f := follow(ctx, path, ReadOptions{Tail: -1})
	for i := 10; i < 40; i++ {
		writeN(t, w, i, i+1)
		f.expect(t, lines(i, i+1)) // each line read before the next rotation
	}
	cancel()
	if err := <-f.done; !errors.Is(err, context.Canceled) {
		t.Errorf("follow returned %v, want context.Canceled", err)
	}
}

func TestFollowBeforeCreated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	stopped := make(chan struct{})
	f := follow(context.Background(), path, ReadOptions{Tail: 0, Stopped: stopped})
	time.Sleep(20 * time.Millisecond)
	w, err := NewWriter(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeN(t, w, 10, 12)
	f.expect(t, lines(10, 12))
	close(stopped)
	if err := <-f.done; err != nil {
		t.Error(err)
	}
	w.Close()
}

func TestFollowTailZeroAndUntil(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c-json.log")
	w, err := NewWriter(path, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	base := time.Now()
	write := func(from, to int) {
		for i := from; i < to; i++ {
			if err := w.Write(Entry{Stream: "stdout", Line: []byte(fmt.Sprintf("line %d\n", i)), Time: base.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	write(10, 20)
	// Follow with tail 0 skips the existing records; a record after Until
	// ends the read.
	f := follow(context.Background(), path, ReadOptions{Tail: 0, Until: base.Add(22 * time.Second)})
	time.Sleep(20 * time.Millisecond)
	write(20, 25)
	f.expect(t, lines(20, 23))
	if err := <-f.done; err != nil {
		t.Error(err)
	}
	// An Until the clock has passed: what is there, then the end.
	f = follow(context.Background(), path, ReadOptions{Tail: -1, Until: time.Now().Add(-time.Millisecond)})
	f.expect(t, lines(10, 10)) // nothing: every record is later than until
	select {
	case err := <-f.done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(5 * time.Second):
		t.Error("follow with a past until did not end")
	}
	if len(f.ch) != 0 {
		t.Errorf("delivered %d records after until", len(f.ch))
	}
	ctx, cancel := context.WithCancel(context.Background())
	f = follow(ctx, path, ReadOptions{Tail: 3, Until: base.Add(time.Hour)})
	f.expect(t, lines(22, 25))
	select {
	case err := <-f.done:
		t.Errorf("follow ended (%v) before until", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	<-f.done
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func BenchmarkWrite(b *testing.B) {
	w, err := NewWriter(filepath.Join(b.TempDir(), "c-json.log"), 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	e := Entry{Stream: "stdout", Line: []byte("a typical log line of some length, with \"quotes\" and a tab\t\n")}
	b.ReportAllocs()
	for b.Loop() {
		e.Time = time.Now()
		w.Write(e)
	}
}

// BenchmarkWriteEntries is the monitor's path: a batch of lines per read.
func BenchmarkWriteEntries(b *testing.B) {
	w, err := NewWriter(filepath.Join(b.TempDir(), "c-json.log"), 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	es := make([]Entry, 16)
	for i := range es {
		es[i] = Entry{Stream: "stdout", Line: []byte("a typical log line of some length, with \"quotes\" and a tab\t\n")}
	}
	b.ReportAllocs()
	for b.Loop() {
		now := time.Now()
		for i := range es {
			es[i].Time = now
		}
		w.WriteEntries(es)
	}
}

func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "c-json.log")
	w, err := NewWriter(path, 0, 1)
	if err != nil {
		b.Fatal(err)
	}
	var es []Entry
	for i := 0; i < 10000; i++ {
		es = append(es, Entry{Stream: "stdout", Line: []byte(fmt.Sprintf("a typical log line number %d, with \"quotes\" and a tab\t\n", i)), Time: time.Now()})
	}
	w.WriteEntries(es)
	w.Close()
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		Read(context.Background(), path, ReadOptions{Tail: -1}, func(Entry) error { n++; return nil })
		if n != 10000 {
			b.Fatal(n)
		}
	}
}
