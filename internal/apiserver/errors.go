package apiserver

import (
	"encoding/json"
	"log/slog"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// statusFor is the one map from an error's kind to an HTTP status.
//
// A command that cannot be found or run is a 400, as dockerd answers a start
// whose execve failed; the docker CLI derives exit 127 or 126 from the
// message ("executable file not found", "permission denied").
func statusFor(err error) int {
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		return http.StatusNotFound
	case errdefs.KindInvalid, errdefs.KindCommandNotFound, errdefs.KindCannotInvoke:
		return http.StatusBadRequest
	case errdefs.KindConflict:
		return http.StatusConflict
	case errdefs.KindNotModified:
		return http.StatusNotModified
	case errdefs.KindForbidden:
		return http.StatusForbidden
	case errdefs.KindUnavailable:
		return http.StatusServiceUnavailable
	case errdefs.KindNotImplemented:
		return http.StatusNotImplemented
	}
	return http.StatusInternalServerError
}

// writeError replies with err as {"message": ...} and the status of its
// kind. Once a reply has started, the error can only be logged.
func (s *Server) writeError(w *respWriter, r *http.Request, err error) {
	status := statusFor(err)
	if status >= 500 {
		s.log.LogAttrs(r.Context(), slog.LevelError, "api request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("error", err))
	}
	if w.started() {
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "error after reply started",
			slog.String("path", r.URL.Path), slog.Any("error", err))
		return
	}
	if status == http.StatusNotModified {
		// A 304 has no body; the client treats it as success.
		w.WriteHeader(status)
		return
	}
	h := w.Header()
	h["Content-Type"] = hdrJSON
	// Only a stray Content-Length from a route could confuse the client.
	h.Del("Content-Length")
	w.WriteHeader(status)
	if r.Method == http.MethodHead {
		return
	}
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(common.ErrorResponse{Message: err.Error()})
}

func invalidf(format string, args ...any) error  { return errdefs.Invalid(format, args...) }
func notFoundf(format string, args ...any) error { return errdefs.NotFound(format, args...) }
