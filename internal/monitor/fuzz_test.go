package monitor

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
)

// FuzzLineSplitter cuts arbitrary output, delivered in arbitrary chunks,
// into log records, and checks what Docker's copier guarantees: the records
// put together are the output, byte for byte; a record holds at most one
// '\n', as its last byte; one without '\n' is a full maxLine piece, or the
// last record; and records never alias the caller's chunk (it is reused).
//
//	go test ./internal/monitor -run '^$' -fuzz '^FuzzLineSplitter$' -fuzztime 1m
func FuzzLineSplitter(f *testing.F) {
	f.Add([]byte("a\nb\n"), []byte{1})
	f.Add([]byte("abc\nde\nf"), []byte{2, 3, 1})
	f.Add([]byte("\n\n\n"), []byte{0, 0})
	f.Add(bytes.Repeat([]byte("x"), maxLine+1), []byte{200, 7})
	f.Add(append(bytes.Repeat([]byte("y"), 2*maxLine-1), '\n', 'z'), []byte{255, 255, 3})
	f.Fuzz(func(t *testing.T, data, cuts []byte) {
		var got [][]byte
		ls := lineSplitter{stream: "stdout", out: func(es []logger.Entry) {
			for _, e := range es {
				got = append(got, bytes.Clone(e.Line))
			}
		}}
		rest := data
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if len(cuts) > 0 {
				// Chunk sizes from cuts, scaled so that long lines
				// also arrive in several pieces.
				n = min(n, 1+int(cuts[i%len(cuts)])*int(cuts[i%len(cuts)]))
			}
			chunk := bytes.Clone(rest[:n])
			ls.split(chunk, time.Time{})
			for j := range chunk {
				chunk[j] = '#'
			}
			rest = rest[n:]
		}
		ls.flush(time.Time{})
		if joined := bytes.Join(got, nil); !bytes.Equal(joined, data) {
			t.Fatalf("records %q do not add up to the output %q", got, data)
		}
		for i, r := range got {
			if len(r) == 0 || len(r) > maxLine {
				t.Fatalf("record %d has %d bytes", i, len(r))
			}
			if k := bytes.IndexByte(r, '\n'); k >= 0 && k != len(r)-1 {
				t.Fatalf("record %d %q has a '\\n' before its end", i, r)
			}
			if r[len(r)-1] != '\n' && len(r) != maxLine && i != len(got)-1 {
				t.Fatalf("record %d %q is cut short (%d bytes, no '\\n')", i, r, len(r))
			}
		}
	})
}

// FuzzErrorLine sends an error over the monitor's status line and reads it
// back as the engine does: the same kind (System for one the line cannot
// name) and the same message on one line.
func FuzzErrorLine(f *testing.F) {
	f.Add(uint8(errdefs.KindCommandNotFound), "exec: \"nosuch\": executable file not found in $PATH")
	f.Add(uint8(errdefs.KindInvalid), "two\nlines: and: colons")
	f.Add(uint8(0), "")
	f.Add(uint8(200), " : ")
	f.Fuzz(func(t *testing.T, kind uint8, msg string) {
		err := errdefs.Wrap(errdefs.Kind(kind), errors.New(msg))
		line := errorLine(err)
		if !strings.HasSuffix(line, "\n") || strings.Count(line, "\n") != 1 {
			t.Fatalf("status line %q is not one line", line)
		}
		rest, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), errorPrefix)
		if !ok {
			t.Fatalf("status line %q lacks %q", line, errorPrefix)
		}
		back := parseErrorLine(rest)
		// A kind without a name travels as system.
		want := errdefs.KindByName(errdefs.KindName(err))
		if got := errdefs.KindOf(back); got != want {
			t.Fatalf("%q: kind %v read back as %v", line, want, got)
		}
		if back.Error() != oneLine(err.Error()) {
			t.Fatalf("%q: message %q read back as %q", line, oneLine(err.Error()), back.Error())
		}
	})
}
