// Package logger holds what every log driver shares: the record type, the
// Driver interface the monitor writes through, the resolved per-container
// configuration (Config, written by the engine into monitor.json), the
// rotating file both file drivers write (File) and the reader they are read
// back with (ReadFiles).
//
// Drivers live in subpackages: jsonfile (Docker's json-file), local (Docker's
// local: protobuf records framed by their size), syslog and journald. The
// engine validates and resolves options in logopts; the monitor opens the
// drivers (monitor/logdriver.go). This package and the drivers use the
// standard library only: the monitor links them.
package logger

import "time"

// Entry is one log record. Line holds the bytes as the container wrote them,
// including the trailing newline when there was one: a Line without it is a
// piece of a longer line (or the unfinished end of the stream).
type Entry struct {
	Stream string
	Line   []byte
	Time   time.Time
	// Attrs are the record's extra attributes (labels, env, tag) as read
	// back from a log; writers take them from their configuration instead.
	Attrs []Attr
}

// Attr is one extra attribute of a record.
type Attr struct {
	Key, Value string
}

// Driver receives a container's records. WriteEntries is called from the
// stdout and stderr copiers concurrently; one call holds records of one
// stream, which point into buffers that are reused after the call.
type Driver interface {
	WriteEntries(es []Entry) error
	Close() error
}

// Driver names.
const (
	JSONFile = "json-file"
	Local    = "local"
	Syslog   = "syslog"
	Journald = "journald"
	None     = "none"
	// CRI is the Kubernetes CRI log format (package crilog) of pod
	// containers; the engine sets it, Docker API clients cannot.
	CRI = "cri"
)

// Config is a container's resolved log configuration: what the monitor
// needs to open its drivers, without templates or regular expressions left
// to evaluate (the engine did that).
type Config struct {
	Driver string `json:"driver"`
	// File drivers (json-file, local): the live file and its rotation.
	File *FileConfig `json:"file,omitempty"`
	// Attrs go into every record of a file driver (json-file "attrs",
	// local's attrs): labels, env and tag as Docker selects them.
	Attrs    []Attr          `json:"attrs,omitempty"`
	Syslog   *SyslogConfig   `json:"syslog,omitempty"`
	Journald *JournaldConfig `json:"journald,omitempty"`
	// Cache is the local-format copy kept for drivers that cannot be read
	// back (Docker's dual logging); nil when disabled or not needed.
	Cache *FileConfig `json:"cache,omitempty"`
	// NonBlocking (log-opt mode=non-blocking) queues records in a buffer of
	// MaxBufferSize bytes and drops them when it is full, so a slow
	// destination never blocks the container's output.
	NonBlocking   bool  `json:"nonBlocking,omitempty"`
	MaxBufferSize int64 `json:"maxBufferSize,omitempty"`
}

// FileConfig is a rotated log file. MaxSize 0 means no rotation; MaxFiles
// counts the live file (1: it is started over when full); Compress gzips the
// rotated files (NAME.1.gz ...).
type FileConfig struct {
	Path     string `json:"path"`
	MaxSize  int64  `json:"maxSize,omitempty"`
	MaxFiles int    `json:"maxFiles,omitempty"`
	Compress bool   `json:"compress,omitempty"`
}

// SyslogConfig is a resolved syslog destination.
type SyslogConfig struct {
	// Network is udp, tcp, unix or unixgram; "" means the local syslog
	// (/dev/log, /var/run/syslog, /var/run/log). tcp+tls is refused at
	// create (logopts).
	Network  string `json:"network,omitempty"`
	Address  string `json:"address,omitempty"`
	Facility int    `json:"facility"` // already shifted: LOG_DAEMON is 3<<3
	// Format is "" (the local-syslog format), rfc3164, rfc5424 or
	// rfc5424micro.
	Format string `json:"format,omitempty"`
	Tag    string `json:"tag"`
}

// JournaldConfig is what the journald driver sends with every message.
type JournaldConfig struct {
	// Fields are sent with every record after PRIORITY and MESSAGE:
	// CONTAINER_ID, CONTAINER_ID_FULL, CONTAINER_NAME, CONTAINER_TAG,
	// IMAGE_NAME, SYSLOG_IDENTIFIER and the extra attributes.
	Fields []Attr `json:"fields"`
	// Socket is the journal's socket; "" means /run/systemd/journal/socket.
	Socket string `json:"socket,omitempty"`
}

// JournalSocket is where journald listens for native-protocol datagrams.
const JournalSocket = "/run/systemd/journal/socket"

// Partial tells, for a stream, whether the previous record was a piece of a
// longer line, so that drivers which mark pieces (local, journald) can say
// which piece is the last one. Docker's copier gives every piece of a line
// the same random ID and counts them from 1.
type Partial struct {
	ID      string
	Ordinal int
}

// Next returns the piece metadata of e and updates p: partial reports
// whether e is a piece at all, last whether it ends the line.
func (p *Partial) Next(e *Entry, newID func() string) (partial, last bool, id string, ordinal int) {
	ends := len(e.Line) > 0 && e.Line[len(e.Line)-1] == '\n'
	if p.ID == "" {
		if ends {
			return false, false, "", 0
		}
		p.ID, p.Ordinal = newID(), 0
	}
	p.Ordinal++
	id, ordinal = p.ID, p.Ordinal
	if ends {
		p.ID, p.Ordinal = "", 0
		return true, true, id, ordinal
	}
	return true, false, id, ordinal
}
