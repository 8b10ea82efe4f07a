package apiserver

import (
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/engine"
)

func (s *Server) execCreate(w *respWriter, r *http.Request) error {
	var req container.ExecCreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cmd) == 0 {
		return invalidf("No exec command specified")
	}
	if w.minor < 42 {
		req.ConsoleSize = nil
	}
	id, err := s.b.ExecCreate(r.Context(), r.PathValue("id"), &req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

// execStart runs an exec: detached, it answers 200 once started; otherwise
// it hijacks the connection like attach and returns when the process has
// exited and its output is written.
func (s *Server) execStart(w *respWriter, r *http.Request) error {
	var req container.ExecStartRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	id := r.PathValue("id")
	tty, err := s.b.ExecTTY(r.Context(), id)
	if err != nil {
		return err
	}
	if req.Detach {
		if err := s.b.ExecStart(r.Context(), id, engine.ExecStartOptions{Detach: true}); err != nil {
			return err
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	st, err := s.hijack(w, r, !tty)
	if err != nil {
		return err
	}
	defer st.close()
	err = s.b.ExecStart(st.ctx, id, engine.ExecStartOptions{Stdin: st.stdin, Stdout: st.stdout, Stderr: st.stderr})
	if err != nil && st.ctx.Err() == nil {
		// dockerd writes the error as output; the CLI then takes the exit
		// code (126, 127, ...) from the exec's inspect.
		io.WriteString(st.stdout, err.Error()+"\r\n")
	}
	return nil
}

func (s *Server) execInspect(w *respWriter, r *http.Request) error {
	e, err := s.b.ExecInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, e)
}

// execResize sets the size of the exec's terminal.
func (s *Server) execResize(w *respWriter, r *http.Request) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.ExecResize(r.Context(), r.PathValue("id"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
