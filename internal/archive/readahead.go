package archive

import (
	"io"
	"sync"
)

// readahead reads src in a goroutine of its own, a few chunks ahead of the
// consumer, so decompressing a layer overlaps with writing its files.
type readahead struct {
	full chan []byte
	free chan []byte
	done chan struct{}
	wg   sync.WaitGroup
	buf  []byte // the chunk being consumed
	cur  []byte // its unread part
	err  error  // set by the goroutine before it closes full
}

const (
	readaheadChunk  = 1 << 20
	readaheadChunks = 4
)

func newReadahead(src io.Reader) *readahead {
	ra := &readahead{
		full: make(chan []byte, readaheadChunks),
		free: make(chan []byte, readaheadChunks),
		done: make(chan struct{}),
	}
	for i := 0; i < readaheadChunks; i++ {
		ra.free <- *(chunkPool.Get().(*[]byte))
	}
	ra.wg.Add(1)
	go func() {
		defer ra.wg.Done()
		defer close(ra.full)
		for {
			var buf []byte
			select {
			case buf = <-ra.free:
			case <-ra.done:
				return
			}
			n, err := io.ReadFull(src, buf)
			if n > 0 {
				select {
				case ra.full <- buf[:n]:
				case <-ra.done:
					return
				}
			}
			if err == io.ErrUnexpectedEOF {
				err = io.EOF
			}
			if err != nil {
				ra.err = err
				return
			}
		}
	}()
	return ra
}

func (ra *readahead) Read(p []byte) (int, error) {
	if len(ra.cur) == 0 {
		if ra.buf != nil {
			ra.free <- ra.buf[:cap(ra.buf)]
			ra.buf = nil
		}
		buf, ok := <-ra.full
		if !ok {
			return 0, ra.err // safe: written before close(full)
		}
		ra.buf, ra.cur = buf, buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	return n, nil
}

// Close stops the goroutine and waits for it, so that nobody reads src
// once Close returns.
func (ra *readahead) Close() {
	close(ra.done)
	ra.wg.Wait()
	// Every chunk is now in free, in full or being consumed.
	put := func(b []byte) {
		b = b[:cap(b)]
		chunkPool.Put(&b)
	}
	if ra.buf != nil {
		put(ra.buf)
		ra.buf, ra.cur = nil, nil
	}
	for {
		select {
		case b := <-ra.free:
			put(b)
		case b, ok := <-ra.full:
			if ok {
				put(b)
				continue
			}
			// full is closed: drain free and stop.
			for {
				select {
				case b := <-ra.free:
					put(b)
				default:
					return
				}
			}
		}
	}
}

// chunkPool keeps readahead chunks between Applies: a small layer should not
// pay for allocating and zeroing megabytes.
var chunkPool = sync.Pool{New: func() any { b := make([]byte, readaheadChunk); return &b }}
