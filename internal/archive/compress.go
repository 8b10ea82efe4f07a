package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Compression is how a stream is compressed.
type Compression int

const (
	Uncompressed Compression = iota
	Gzip
	Zstd
	Bzip2
	Xz
)

func (c Compression) String() string {
	switch c {
	case Uncompressed:
		return "uncompressed"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	case Bzip2:
		return "bzip2"
	case Xz:
		return "xz"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

var magics = []struct {
	c     Compression
	magic []byte
}{
	{Gzip, []byte{0x1f, 0x8b, 0x08}},
	{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
	{Bzip2, []byte{'B', 'Z', 'h'}},
	{Xz, []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}},
}

// DetectCompression names the compression whose magic number starts head.
func DetectCompression(head []byte) Compression {
	for _, m := range magics {
		if bytes.HasPrefix(head, m.magic) {
			return m.c
		}
	}
	return Uncompressed
}

// readBufSize is the read-side buffer: large reads from a file or a socket
// keep the syscall count of a big layer low.
const readBufSize = 1 << 20

// DecompressStream returns r's content, decompressed if r starts with a gzip,
// zstd or bzip2 header, and which compression it found. Closing the result
// releases the decompressor (not r).
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, readBufSize)
	}
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, Uncompressed, fmt.Errorf("read archive header: %w", err)
	}
	c := DetectCompression(head)
	switch c {
	case Uncompressed:
		return io.NopCloser(br), c, nil
	case Gzip:
		if path := igzipPath(); path != "" {
			pr, err := startIgzip(path, br)
			if err == nil {
				return pr, c, nil
			}
			// igzip is there but won't start: inflate here.
		}
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, errdefs.Invalid("bad gzip stream: %v", err)
		}
		return zr, c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(0))
		if err != nil {
			return nil, c, errdefs.Invalid("bad zstd stream: %v", err)
		}
		return zr.IOReadCloser(), c, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), c, nil
	}
	return nil, c, errdefs.Invalid("unsupported compression: %s", c)
}
