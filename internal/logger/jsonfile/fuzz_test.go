package jsonfile

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/logger"
)

// FuzzDecode checks the hand-written decoder against encoding/json: every
// record decodeFast accepts must decode the same way through encoding/json
// (the fallback, and what Docker's reader does), and Format.Decode never
// panics. Run it by hand:
//
//	go test ./internal/logger/jsonfile -run '^$' -fuzz '^FuzzDecode$' -fuzztime 1m
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"log":"hello\n","stream":"stdout","time":"2024-01-02T03:04:05.123456789Z"}`,
		`{"log":"tab\there \u00e9 \ud83d\ude00 \\ \" \/","stream":"stderr","time":"2024-01-02T03:04:05Z"}`,
		`{"log":"x","stream":"stdout","attrs":{"a":"1","b":"\u0026"},"time":"2024-01-02T03:04:05+02:00"}`,
		`{"stream":"stdout","time":"2024-01-02T03:04:05Z"}`,
		`{"log":"\ud800","time":"2024-01-02T03:04:05Z"}`,
		`{"log":"a","log":"b","time":"2024-01-02T03:04:05Z"}`,
		`{ "log": "spaced" }`,
		`{"log":"\xff\xfe","time":"2024-01-02T03:04:05Z"}`,
		`{}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		Format.Decode(append(slices.Clone(line), '\n'))
		fast, ok := decodeFast(line)
		if !ok {
			return
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("decodeFast accepted %q, encoding/json refuses it: %v", line, err)
		}
		slow := Entry{Stream: rec.Stream, Line: []byte(rec.Log), Time: rec.Time, Attrs: sortedAttrs(rec.Attrs)}
		if !bytes.Equal(fast.Line, slow.Line) || fast.Stream != slow.Stream || !fast.Time.Equal(slow.Time) ||
			!slices.Equal(fast.Attrs, slow.Attrs) {
			t.Fatalf("%q:\ndecodeFast   %+v\nencoding/json %+v", line, fast, slow)
		}
	})
}

// FuzzRecordRoundTrip writes a record as the log writer does and reads it
// back: the same line (valid UTF-8 as it is; anything else becomes valid
// UTF-8), stream, time and attributes.
func FuzzRecordRoundTrip(f *testing.F) {
	f.Add([]byte("hello\n"), "stdout", int64(1700000000123456789), "k", "v")
	f.Add([]byte("\x00\x1f\t\r\n\u2028<>&\"\\"), "stderr", int64(0), "", "")
	f.Add([]byte("\xff\xc3("), "stdout", int64(-1), "a\x00", "\xff")
	f.Fuzz(func(t *testing.T, line []byte, stream string, nanos int64, key, value string) {
		if !utf8.ValidString(stream) || !utf8.ValidString(key) || !utf8.ValidString(value) {
			return // the engine's own strings: always UTF-8
		}
		ts := time.Unix(0, nanos).UTC()
		if ts.Year() < 1 || ts.Year() > 9999 {
			return
		}
		in := Entry{Stream: stream, Line: line, Time: ts}
		var attrs []logger.Attr
		if key != "" {
			attrs = []logger.Attr{{Key: key, Value: value}}
		}
		b := appendRecordAttrs(nil, &in, encodeAttrs(attrs))
		if bytes.Count(b, []byte{'\n'}) != 1 || b[len(b)-1] != '\n' {
			t.Fatalf("record %q is not one line", b)
		}
		out, err := Format.Decode(b)
		if err != nil {
			t.Fatalf("decode %q: %v", b, err)
		}
		wantLine := line
		if !utf8.Valid(line) {
			if !utf8.Valid(out.Line) {
				t.Fatalf("invalid UTF-8 read back: %q", out.Line)
			}
			wantLine = out.Line
		}
		if !bytes.Equal(out.Line, wantLine) || out.Stream != stream || !out.Time.Equal(ts) || !slices.Equal(out.Attrs, attrs) {
			t.Fatalf("wrote %+v attrs %v as %q, read %+v", in, attrs, b, out)
		}
	})
}

// Found by FuzzDecode: raw bytes that are not UTF-8 in a record read as
// U+FFFD, as encoding/json (and Docker's reader) read them.
func TestDecodeInvalidUTF8(t *testing.T) {
	e, err := Format.Decode([]byte("{\"log\":\"000\xff\"}\n"))
	if err != nil || string(e.Line) != "000\uFFFD" {
		t.Fatalf("got %q, %v; want \"000\\uFFFD\"", e.Line, err)
	}
}

// Found by FuzzDecode: repeated attribute keys (and repeated "attrs"
// objects) read as encoding/json reads them: the last value wins, the
// objects merge.
func TestDecodeRepeatedAttrs(t *testing.T) {
	for _, tc := range []struct {
		rec  string
		want []logger.Attr
	}{
		{`{"attrs":{"":"","":""}}`, []logger.Attr{{}}},
		{`{"log":"x","attrs":{"a":"1","a":"2"},"time":"2024-01-02T03:04:05Z"}`, []logger.Attr{{Key: "a", Value: "2"}}},
		{`{"attrs":{"a":"1"},"attrs":{"b":"2"}}`, []logger.Attr{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}},
	} {
		e, err := Format.Decode([]byte(tc.rec + "\n"))
		if err != nil || !slices.Equal(e.Attrs, tc.want) {
			t.Errorf("%s: attrs %v, %v; want %v", tc.rec, e.Attrs, err, tc.want)
		}
	}
}
