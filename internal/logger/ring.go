package logger

import (
	"fmt"
	"os"
	"sync"
)

// DefaultMaxBufferSize is Docker's buffer for mode=non-blocking (1 MB).
const DefaultMaxBufferSize = 1_000_000

// Ring is log-opt mode=non-blocking: records are copied into a buffer of at
// most max bytes and written by a goroutine of their own, so a slow driver
// never holds up the container's output; records that do not fit are dropped
// (counted, and reported on stderr, the monitor's log, as Docker reports
// them in its own log).
type Ring struct {
	d    Driver
	max  int64
	mu   sync.Mutex
	cond *sync.Cond
	q    []Entry
	size int64
	done bool
	drop int64
	wg   sync.WaitGroup
}

// NewRing starts the writer goroutine of a non-blocking driver.
func NewRing(d Driver, max int64) *Ring {
	if max <= 0 {
		max = DefaultMaxBufferSize
	}
	r := &Ring{d: d, max: max}
	r.cond = sync.NewCond(&r.mu)
	r.wg.Add(1)
	go r.run()
	return r
}

// WriteEntries queues copies of the records; it never blocks on the driver.
func (r *Ring) WriteEntries(es []Entry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range es {
		n := int64(len(e.Line))
		if r.size+n > r.max && len(r.q) > 0 {
			r.drop++
			continue
		}
		e.Line = append([]byte(nil), e.Line...)
		r.q = append(r.q, e)
		r.size += n
	}
	r.cond.Signal()
	return nil
}

func (r *Ring) run() {
	defer r.wg.Done()
	reported := int64(0)
	for {
		r.mu.Lock()
		for len(r.q) == 0 && !r.done {
			r.cond.Wait()
		}
		q, drop := r.q, r.drop
		r.q, r.size = nil, 0
		done := r.done
		r.mu.Unlock()
		if drop > reported {
			fmt.Fprintf(os.Stderr, "log buffer full (mode=non-blocking): %d records dropped\n", drop-reported)
			reported = drop
		}
		if len(q) > 0 {
			// Group by stream: a driver call holds one stream's records.
			for start := 0; start < len(q); {
				end := start + 1
				for end < len(q) && q[end].Stream == q[start].Stream {
					end++
				}
				if err := r.d.WriteEntries(q[start:end]); err != nil {
					fmt.Fprintf(os.Stderr, "log: %v\n", err)
				}
				start = end
			}
			continue
		}
		if done {
			return
		}
	}
}

// Close writes what is queued, then closes the driver.
func (r *Ring) Close() error {
	r.mu.Lock()
	r.done = true
	r.cond.Signal()
	r.mu.Unlock()
	r.wg.Wait()
	return r.d.Close()
}

// Tee writes to a driver and to its local cache (Docker's dual logging).
// The driver's error is the one reported; the cache is written regardless.
type Tee struct {
	Main, Cache Driver
}

// WriteEntries writes to both.
func (t Tee) WriteEntries(es []Entry) error {
	err := t.Main.WriteEntries(es)
	if cerr := t.Cache.WriteEntries(es); err == nil && cerr != nil {
		err = fmt.Errorf("log cache: %w", cerr)
	}
	return err
}

// Close closes both.
func (t Tee) Close() error {
	err := t.Main.Close()
	if cerr := t.Cache.Close(); err == nil {
		err = cerr
	}
	return err
}
