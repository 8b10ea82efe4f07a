package logger_test

import (
	"sync"
	"testing"
	"time"

	"github.com/skiff-dev/skiff/internal/logger"
)

type slowDriver struct {
	mu     sync.Mutex
	gate   chan struct{}
	got    []string
	closed bool
}

func (d *slowDriver) WriteEntries(es []logger.Entry) error {
	<-d.gate
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, e := range es {
		d.got = append(d.got, string(e.Line))
	}
	return nil
}

func (d *slowDriver) Close() error { d.closed = true; return nil }

// mode=non-blocking: writes return at once while the driver is stuck,
// records past the buffer are dropped, the buffer's copies survive the
// caller reusing its bytes, and Close writes what is queued.
func TestRingNonBlocking(t *testing.T) {
	d := &slowDriver{gate: make(chan struct{})}
	r := logger.NewRing(d, 10)
	buf := []byte("abcd\n")
	start := time.Now()
	r.WriteEntries([]logger.Entry{{Stream: "stdout", Line: buf}}) // taken by the writer, which blocks on the gate
	time.Sleep(50 * time.Millisecond)
	for i := 0; i < 5; i++ {
		r.WriteEntries([]logger.Entry{{Stream: "stdout", Line: buf}}) // 2 fit in 10 bytes, 3 dropped
	}
	copy(buf, "XXXX\n")
	if time.Since(start) > time.Second {
		t.Fatal("WriteEntries blocked")
	}
	close(d.gate)
	r.Close()
	if !d.closed || len(d.got) != 3 || d.got[0] != "abcd\n" || d.got[2] != "abcd\n" {
		t.Errorf("driver got %q closed %v", d.got, d.closed)
	}
}
