package runtime

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// The parent (Create/Start) and `skiff-shim init` talk over a socketpair
// with typed, length-prefixed messages:
//
//	parent → init   msgConfig  initConfig as JSON
//	init → parent   msgReady   set up, waiting before execve
//	                 msgError   "KIND message"; init then exits
//	parent → init   msgGo      go on and execve
//	init → parent   (EOF)      execve succeeded: init's end is close-on-exec
//	                 msgError   execve or a step before it failed
//
// The EOF after msgGo is the only signal that needs no message: the kernel
// closes init's end exactly when execve succeeds. KIND is the errdefs kind's
// wire name (errdefs.KindName), as on the monitor protocol and skiff-shim
// exec's status pipe: the parent and init may be built apart, so the
// numbering of errdefs.Kind is never sent.
const (
	msgConfig byte = 'C'
	msgReady  byte = 'R'
	msgGo     byte = 'G'
	msgError  byte = 'E'
)

// maxMsg bounds a message so a corrupt length cannot make us allocate
// gigabytes.
const maxMsg = 16 << 20

func writeMsg(w io.Writer, typ byte, payload []byte) error {
	buf := make([]byte, 5+len(payload))
	buf[0] = typ
	binary.LittleEndian.PutUint32(buf[1:5], uint32(len(payload)))
	copy(buf[5:], payload)
	_, err := w.Write(buf)
	return err
}

// readMsg reads one message; io.EOF means the peer closed without sending.
func readMsg(r io.Reader) (byte, []byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return 0, nil, fmt.Errorf("truncated message: %w", err)
		}
		return 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[1:5])
	if n > maxMsg {
		return 0, nil, fmt.Errorf("message of %d bytes is too large", n)
	}
	payload := make([]byte, n)
	if _, err := io.ReadFull(r, payload); err != nil {
		return 0, nil, fmt.Errorf("truncated message: %w", err)
	}
	return hdr[0], payload, nil
}

// encodeError packs an error with its errdefs kind, by name, for the parent
// (an error without a kind is "system").
func encodeError(err error) []byte {
	return []byte(errdefs.KindName(err) + " " + err.Error())
}

// decodeError rebuilds an error sent by encodeError.
func decodeError(p []byte) error {
	kind, msg, ok := strings.Cut(string(p), " ")
	if len(p) == 0 || !ok {
		return errdefs.System("container init failed")
	}
	return errdefs.Wrap(errdefs.KindByName(kind), errors.New(msg))
}
