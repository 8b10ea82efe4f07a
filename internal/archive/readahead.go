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
	cur  []byte
	err  error // set by the goroutine before it closes full
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
		ra.free <- make([]byte, readaheadChunk)
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
			n, err := io.ReadFull(src, buf[:cap(buf)])
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
	for len(ra.cur) == 0 {
		if ra.cur != nil {
			ra.free <- ra.cur[:0]
			ra.cur = nil
		}
		buf, ok := <-ra.full
		if !ok {
			return 0, ra.err // safe: written before close(full)
		}
		ra.cur = buf
	}
	n := copy(p, ra.cur)
	ra.cur = ra.cur[n:]
	if len(ra.cur) == 0 {
		ra.free <- ra.cur[:0]
		ra.cur = nil
	}
	return n, nil
}

// Close stops the goroutine and waits for it, so that nobody reads src
// once Close returns.
func (ra *readahead) Close() {
	close(ra.done)
	ra.wg.Wait()
}
