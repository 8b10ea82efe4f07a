// Package syslog sends a container's records to a syslog server the way
// Docker's syslog driver (RackSec/srslog underneath) does: one message per
// record, severity info for stdout and err for stderr, the configured
// facility, and the same four formats:
//
//	""             <PRI>Jan _2 15:04:05 TAG[PID]: MSG\n          (local syslog style)
//	rfc3164        <PRI>Jan _2 15:04:05 HOST TAG[PID]: MSG\n
//	rfc5424        <PRI>1 2006-01-02T15:04:05Z07:00 HOST TAG PID TAG - MSG\n
//	rfc5424micro   as rfc5424 with microseconds
//
// over udp, tcp, unix (stream) or unixgram sockets, or the local syslog (/dev/log ...) when
// no address is given. PID is the monitor's, as Docker's is dockerd's.
// Empty lines are not sent; a write that fails is retried once on a new
// connection.
package syslog

import (
	"errors"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

// Severities of stdout and stderr records.
const (
	sevErr  = 3
	sevInfo = 6
)

// Writer is a connection to a syslog server.
type Writer struct {
	cfg      logger.SyslogConfig
	hostname string
	pid      string

	mu   sync.Mutex
	conn net.Conn
	buf  []byte
}

// Open connects to the server. Like Docker, a server that cannot be reached
// fails the container's start.
func Open(cfg logger.SyslogConfig) (*Writer, error) {
	w := &Writer{cfg: cfg, pid: strconv.Itoa(os.Getpid())}
	w.hostname, _ = os.Hostname()
	if err := w.connect(); err != nil {
		return nil, err
	}
	return w, nil
}

func (w *Writer) connect() error {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
	var (
		c   net.Conn
		err error
	)
	switch w.cfg.Network {
	case "":
		c, err = dialLocal()
		if err == nil && w.hostname == "" {
			w.hostname = "localhost"
		}
	case "tcp+tls":
		// Refused at create (logopts): crypto/tls would cost every
		// container's monitor about 270 KiB of memory.
		return errors.New("syslog-address tcp+tls is not supported by skiff")
	default:
		c, err = net.Dial(w.cfg.Network, w.cfg.Address)
	}
	if err != nil {
		return err
	}
	if w.hostname == "" {
		w.hostname = c.LocalAddr().String()
	}
	w.conn = c
	return nil
}

// dialLocal finds the local syslog daemon as srslog does.
func dialLocal() (net.Conn, error) {
	for _, network := range []string{"unixgram", "unix"} {
		for _, path := range []string{"/dev/log", "/var/run/syslog", "/var/run/log"} {
			if c, err := net.Dial(network, path); err == nil {
				return c, nil
			}
		}
	}
	return nil, errors.New("Unix syslog delivery error")
}

// WriteEntries sends one message per record.
func (w *Writer) WriteEntries(es []logger.Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var first error
	for i := range es {
		e := &es[i]
		line := e.Line
		if n := len(line); n > 0 && line[n-1] == '\n' {
			line = line[:n-1]
		}
		if len(line) == 0 {
			continue
		}
		sev := sevInfo
		if e.Stream == "stderr" {
			sev = sevErr
		}
		w.buf = Format(w.buf[:0], w.cfg.Format, w.cfg.Facility|sev,
			e.Time, w.hostname, w.cfg.Tag, w.pid, line)
		if err := w.send(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

func (w *Writer) send() error {
	if w.conn != nil {
		if _, err := w.conn.Write(w.buf); err == nil {
			return nil
		}
	}
	if err := w.connect(); err != nil {
		return err
	}
	_, err := w.conn.Write(w.buf)
	return err
}

// Format appends one message. t is the record's time (srslog takes the
// time of sending, which is the same to a few microseconds), shown in the
// local time zone as syslog expects.
func Format(b []byte, format string, pri int, t time.Time, hostname, tag, pid string, msg []byte) []byte {
	if t.IsZero() {
		t = time.Now()
	}
	t = t.Local()
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, '>')
	switch format {
	case "", "rfc3164":
		b = t.AppendFormat(b, time.Stamp)
		b = append(b, ' ')
		if format == "rfc3164" {
			b = append(append(b, hostname...), ' ')
		}
		b = append(append(append(b, tag...), '['), pid...)
		b = append(b, "]: "...)
	default: // rfc5424, rfc5424micro
		b = append(b, "1 "...)
		layout := time.RFC3339
		if format == "rfc5424micro" {
			layout = "2006-01-02T15:04:05.000000Z07:00"
		}
		b = t.AppendFormat(b, layout)
		b = append(append(append(b, ' '), hostname...), ' ')
		b = append(append(append(b, tag...), ' '), pid...)
		b = append(append(append(b, ' '), tag...), " - "...)
	}
	b = append(b, msg...)
	b = append(b, '\n')
	return b
}

// Close closes the connection.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn == nil {
		return nil
	}
	err := w.conn.Close()
	w.conn = nil
	return err
}
