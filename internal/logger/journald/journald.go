// Package journald sends a container's records to systemd-journald over its
// native protocol, as Docker's journald driver (go-systemd's journal.Send)
// does: one datagram per record to /run/systemd/journal/socket holding
// PRIORITY (6 for stdout, 3 for stderr), MESSAGE (the line without its
// newline) and the container's fields (CONTAINER_ID, CONTAINER_ID_FULL,
// CONTAINER_NAME, CONTAINER_TAG, IMAGE_NAME, SYSLOG_IDENTIFIER,
// CONTAINER_LOG_EPOCH and the extra attributes), then SYSLOG_TIMESTAMP,
// Docker's partial-message fields for pieces of long lines, and
// CONTAINER_LOG_ORDINAL. A value holding a newline is sent in the
// protocol's binary form; a record too big for a datagram goes in a file
// passed as a descriptor.
package journald

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// Writer sends records to the journal.
type Writer struct {
	conn   *net.UnixConn
	addr   *net.UnixAddr
	fields []logger.Attr

	mu      sync.Mutex
	ordinal uint64
	partial map[string]*logger.Partial
	buf     []byte
}

// ErrNotEnabled is Docker's error where the journal's socket does not answer.
var ErrNotEnabled = errors.New("journald is not enabled on this host")

// Open checks that the journal listens and opens the sending socket.
func Open(cfg logger.JournaldConfig) (*Writer, error) {
	sock := cfg.Socket
	if sock == "" {
		sock = logger.JournalSocket
	}
	probe, err := net.Dial("unixgram", sock)
	if err != nil {
		return nil, ErrNotEnabled
	}
	probe.Close()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Net: "unixgram"}) // autobind
	if err != nil {
		return nil, ErrNotEnabled
	}
	fields := append(append([]logger.Attr(nil), cfg.Fields...),
		logger.Attr{Key: "CONTAINER_LOG_EPOCH", Value: randomID()})
	return &Writer{conn: conn, addr: &net.UnixAddr{Name: sock, Net: "unixgram"}, fields: fields,
		partial: map[string]*logger.Partial{}}, nil
}

func newID() string {
	return randomID()
}

// WriteEntries sends one datagram per record.
func (w *Writer) WriteEntries(es []logger.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first error
	for i := range es {
		e := &es[i]
		p := w.partial[e.Stream]
		if p == nil {
			p = &logger.Partial{}
			w.partial[e.Stream] = p
		}
		partial, last, id, ordinal := p.Next(e, newID)
		line := e.Line
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		pri := "6"
		if e.Stream == "stderr" {
			pri = "3"
		}
		b := appendField(w.buf[:0], "PRIORITY", []byte(pri))
		b = appendField(b, "MESSAGE", line)
		for _, f := range w.fields {
			b = appendField(b, f.Key, []byte(f.Value))
		}
		if !e.Time.IsZero() {
			b = appendField(b, "SYSLOG_TIMESTAMP", e.Time.UTC().AppendFormat(nil, time.RFC3339Nano)) // Docker's copier stamps UTC
		}
		if partial {
			b = appendField(b, "CONTAINER_PARTIAL_ID", []byte(id))
			b = appendField(b, "CONTAINER_PARTIAL_ORDINAL", strconv.AppendInt(nil, int64(ordinal), 10))
			b = appendField(b, "CONTAINER_PARTIAL_LAST", strconv.AppendBool(nil, last))
			if !last {
				b = appendField(b, "CONTAINER_PARTIAL_MESSAGE", []byte("true"))
			}
		}
		w.ordinal++
		b = appendField(b, "CONTAINER_LOG_ORDINAL", strconv.AppendUint(nil, w.ordinal, 10))
		w.buf = b
		if err := w.send(b); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// appendField is the native protocol's NAME=VALUE\n, or for a value with a
// newline NAME\n, its length as a little-endian uint64, VALUE\n.
func appendField(b []byte, name string, value []byte) []byte {
	for _, c := range value {
		if c == '\n' {
			b = append(append(b, name...), '\n')
			b = binary.LittleEndian.AppendUint64(b, uint64(len(value)))
			return append(append(b, value...), '\n')
		}
	}
	b = append(append(b, name...), '=')
	return append(append(b, value...), '\n')
}

func (w *Writer) send(b []byte) error {
	_, _, err := w.conn.WriteMsgUnix(b, nil, w.addr)
	if err == nil || !(errors.Is(err, syscall.EMSGSIZE) || errors.Is(err, syscall.ENOBUFS)) {
		return err
	}
	// Too big for a datagram: pass it in an unlinked file, as journal.Send.
	f, err := os.CreateTemp("/dev/shm", "journal.")
	if err != nil {
		return err
	}
	defer f.Close()
	os.Remove(f.Name())
	if _, err := f.Write(b); err != nil {
		return err
	}
	_, _, err = w.conn.WriteMsgUnix(nil, syscall.UnixRights(int(f.Fd())), w.addr)
	return err
}

// Close closes the socket.
func (w *Writer) Close() error { return w.conn.Close() }

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
