package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client/pkg/jsonmessage"
)

// renderJSONMessages prints a JSON progress stream (pull, push, load,
// import, build) as docker does: on a terminal each layer keeps one line,
// redrawn in place, with progress bars; elsewhere plain "ID: status" lines.
// aux, when set, gets the messages that carry aux data.
func renderJSONMessages(in io.Reader, w io.Writer, aux func(jsonstream.Message)) error {
	s, ok := w.(*OutStream)
	if !ok {
		s = NewOutStream(w)
	}
	if s.IsTerminal() {
		return jsonmessage.DisplayJSONMessagesStream(in, s, uintptr(s.fd), true, aux)
	}
	if aux != nil {
		return jsonmessage.DisplayJSONMessagesStream(in, w, 0, false, aux)
	}
	return displayJSONMessages(in, w)
}

// displayJSONMessages prints a JSON progress stream (pull, import) the way
// docker does on a non-terminal: "ID: status" lines, no progress bars. An
// error in the stream ends it and is returned.
func displayJSONMessages(in io.Reader, out io.Writer) error {
	dec := json.NewDecoder(in)
	for {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if m.Error != nil {
			return m.Error
		}
		if m.Aux != nil {
			continue
		}
		if m.Progress != nil && (m.Progress.Current > 0 || m.Progress.Total > 0) {
			continue
		}
		if m.ID != "" {
			fmt.Fprintf(out, "%s: ", m.ID)
		}
		if m.Stream != "" {
			fmt.Fprint(out, m.Stream)
		} else {
			fmt.Fprintf(out, "%s\n", m.Status)
		}
	}
}
