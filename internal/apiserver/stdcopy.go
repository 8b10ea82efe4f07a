package apiserver

import (
	"encoding/binary"
	"io"
	"sync"
)

// Stream numbers of the Docker multiplexed stream.
const (
	streamStdout    = 1
	streamStderr    = 2
	streamSystemErr = 3 // the client's StdCopy returns it as an error
)

// muxer frames writes for Docker's multiplexed stream: an 8-byte header
// (stream, three zero bytes, big-endian payload length) and the payload.
// Its stdout and stderr writers share one lock and one buffer, so frames
// written from two goroutines never interleave, and a frame of ordinary size
// reaches the connection in a single write.
type muxer struct {
	mu  sync.Mutex
	w   io.Writer
	buf []byte
}

// bigFrame is the payload size above which header and payload are written
// separately instead of being copied into the buffer.
const bigFrame = 64 << 10

func newMuxer(w io.Writer) *muxer { return &muxer{w: w} }

func (m *muxer) stream(n byte) io.Writer { return &muxWriter{m: m, stream: n} }

type muxWriter struct {
	m      *muxer
	stream byte
}

func (s *muxWriter) Write(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	m := s.m
	m.mu.Lock()
	defer m.mu.Unlock()
	var hdr [8]byte
	hdr[0] = s.stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if len(p) > bigFrame {
		if _, err := m.w.Write(hdr[:]); err != nil {
			return 0, err
		}
		return m.w.Write(p)
	}
	m.buf = append(append(m.buf[:0], hdr[:]...), p...)
	n, err := m.w.Write(m.buf)
	n -= len(hdr)
	if n < 0 {
		n = 0
	}
	return n, err
}
