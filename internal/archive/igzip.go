package archive

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Inflating gzip is the slowest part of unpacking a pulled layer: Go's
// fastest inflater does about 130 MB/s on this kind of VM, one core, while
// Intel's ISA-L (`igzip`, Debian package isal) does three to four times that.
// So, like containerd with unpigz, a gzip stream goes through igzip when the
// host has it, and through klauspost/compress otherwise. igzip parses
// untrusted input, so it runs as nobody with nothing but a pipe in and a
// pipe out, and dies with the daemon.

// SKIFF_IGZIP=0 turns the external inflater off (an operator's escape hatch,
// and how tests compare both paths).
var igzipPath = sync.OnceValue(func() string {
	if os.Getenv("SKIFF_IGZIP") == "0" {
		return ""
	}
	p, err := exec.LookPath("igzip")
	if err != nil {
		return ""
	}
	return p
})

// nobody is the unprivileged user igzip runs as.
const nobody = 65534

// procReader is the output of an external decompressor.
type procReader struct {
	io.Reader
	out    *os.File
	fed    chan struct{} // closed when the feeder is done with src
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	once   sync.Once
	err    error
	srcErr error // src's own read error (the feeder's), set before fed closes
}

// srcReader remembers the error src itself returned, so that a failed
// source (a blob write that ran out of space behind a TeeReader, a
// dropped connection) is reported as such and not as the truncated gzip
// stream igzip then complains about.
type srcReader struct {
	r   io.Reader
	err *error
}

func (s srcReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		*s.err = err
	}
	return n, err
}

// pipeSize is the capacity asked for igzip's pipes: with the default 64 KiB
// the three parties (feeder, igzip, reader) switch every 64 KiB.
const pipeSize = 1 << 20

// startIgzip returns src inflated by igzip at path.
func startIgzip(path string, src io.Reader) (*procReader, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("igzip: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("igzip: %w", err)
	}
	for _, f := range []*os.File{inW, outW} {
		// Best effort: the default size works, only slower.
		unix.FcntlInt(f.Fd(), unix.F_SETPIPE_SZ, pipeSize)
	}
	cmd := exec.Command(path, "-d", "-c")
	cmd.Stdin, cmd.Stdout = inR, outW
	stderr := &bytes.Buffer{}
	cmd.Stderr = stderr
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: nobody, Gid: nobody, NoSetGroups: true},
		Pdeathsig:  syscall.SIGKILL,
	}
	err = cmd.Start()
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, fmt.Errorf("start igzip: %w", err)
	}
	p := &procReader{Reader: outR, out: outR, cmd: cmd, stderr: stderr, fed: make(chan struct{})}
	go func() {
		// Feed igzip until src ends or igzip stops reading (it exited:
		// its status tells what went wrong).
		defer close(p.fed)
		buf := make([]byte, pipeSize)
		io.CopyBuffer(inW, srcReader{src, &p.srcErr}, buf)
		inW.Close()
	}()
	return p, nil
}

// Read returns the inflated bytes; at their end it waits for igzip, so a
// corrupt stream (igzip exits non-zero) is an error, not a short EOF.
func (p *procReader) Read(b []byte) (int, error) {
	n, err := p.Reader.Read(b)
	if err == io.EOF {
		if werr := p.wait(); werr != nil {
			return n, werr
		}
	}
	return n, err
}

func (p *procReader) wait() error {
	p.once.Do(func() {
		err := p.cmd.Wait()
		p.out.Close() // igzip is gone: nothing more will come, and the feeder's writes fail
		<-p.fed       // src is not read after this returns
		if p.srcErr != nil {
			p.err = p.srcErr // what cut the stream short
			return
		}
		if err != nil {
			msg := bytes.TrimSpace(p.stderr.Bytes())
			p.err = errdefs.Invalid("bad gzip stream: %v: %s", err, msg)
		}
	})
	return p.err
}

// Close stops igzip if it is still running (the reader gave up early) and
// reaps it.
func (p *procReader) Close() error {
	p.cmd.Process.Kill()
	p.wait()
	return nil
}
