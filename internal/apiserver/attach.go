package apiserver

import (
	"log/slog"
	"net/http"

	"github.com/skiff-dev/skiff/internal/engine"
)

// containerAttach hijacks the connection and hands its streams to the
// backend, which returns when the container's output ends or the client
// hangs up. Whether the container has a tty is asked first, so a missing
// container is still an ordinary 404.
func (s *Server) containerAttach(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	id := r.PathValue("id")
	tty, err := s.b.ContainerAttachTTY(r.Context(), id)
	if err != nil {
		return err
	}
	st, err := s.hijack(w, r, !tty)
	if err != nil {
		return err
	}
	defer st.close()
	opts := engine.AttachOptions{
		Stream:     boolValue(q, "stream"),
		Logs:       boolValue(q, "logs"),
		DetachKeys: q.Get("detachKeys"),
	}
	if boolValue(q, "stdin") {
		opts.Stdin = st.stdin
	}
	if boolValue(q, "stdout") {
		opts.Stdout = st.stdout
	}
	if boolValue(q, "stderr") {
		opts.Stderr = st.stderr
	}
	if err := s.b.ContainerAttach(st.ctx, id, opts); err != nil && st.ctx.Err() == nil {
		// As with dockerd, nothing goes in-band: a start that fails reports
		// its error on the start request, and the stream just ends.
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "attach ended with error",
			slog.String("container", id), slog.Any("error", err))
	}
	return nil
}
