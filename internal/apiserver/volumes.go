package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"path"

	"github.com/moby/moby/api/types/container"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/filters"
)

// VolumeBackend is the /volumes route group.
type VolumeBackend interface {
	VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error)
	VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error)
	VolumeList(ctx context.Context, f filters.Args) (*volumetypes.ListResponse, error)
	// VolumeRemove refuses a volume in use (Conflict); force hides NotFound.
	VolumeRemove(ctx context.Context, name string, force bool) error
	VolumePrune(ctx context.Context, f filters.Args) (*volumetypes.PruneReport, error)
}

// ArchiveBackend is /containers/{id}/archive (docker cp).
type ArchiveBackend interface {
	ContainerStatPath(ctx context.Context, id, path string) (*container.PathStat, error)
	// ContainerArchivePath calls start with the stat before writing the tar
	// to the writer start returns; errors before that become the status.
	ContainerArchivePath(ctx context.Context, id, path string, start func(*container.PathStat) io.Writer) error
	ContainerExtract(ctx context.Context, id, path string, opts engine.ExtractOptions, r io.Reader) error
}

func (s *Server) volumeRoutes() {
	s.handle("POST /volumes/create", s.volumeCreate)
	s.handle("GET /volumes", s.volumeList)
	s.handle("POST /volumes/prune", s.volumePrune)
	s.handle("GET /volumes/{name}", s.volumeInspect)
	s.handle("DELETE /volumes/{name}", s.volumeRemove)

	s.handle("HEAD /containers/{id}/archive", s.archiveHead)
	s.handle("GET /containers/{id}/archive", s.archiveGet)
	s.handle("PUT /containers/{id}/archive", s.archivePut)
}

func (s *Server) volumeCreate(w *respWriter, r *http.Request) error {
	var req volumetypes.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	v, err := s.b.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeList(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	resp, err := s.b.VolumeList(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) volumeInspect(w *respWriter, r *http.Request) error {
	v, err := s.b.VolumeInspect(r.Context(), r.PathValue("name"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeRemove(w *respWriter, r *http.Request) error {
	if err := s.b.VolumeRemove(r.Context(), r.PathValue("name"), boolValue(r.URL.Query(), "force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumePrune(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	rep, err := s.b.VolumePrune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func archivePath(r *http.Request) (string, error) {
	p := r.URL.Query().Get("path")
	if p == "" {
		return "", invalidf("path cannot be empty")
	}
	if !path.IsAbs(p) {
		p = "/" + p
	}
	return p, nil
}

func setStatHeader(w http.ResponseWriter, st *container.PathStat) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	w.Header().Set("X-Docker-Container-Path-Stat", base64.StdEncoding.EncodeToString(b))
	return nil
}

func (s *Server) archiveHead(w *respWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	st, err := s.b.ContainerStatPath(r.Context(), r.PathValue("id"), p)
	if err != nil {
		return err
	}
	if err := setStatHeader(w, st); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) archiveGet(w *respWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	started := false
	err = s.b.ContainerArchivePath(r.Context(), r.PathValue("id"), p, func(st *container.PathStat) io.Writer {
		setStatHeader(w, st)
		w.Header().Set("Content-Type", "application/x-tar")
		w.WriteHeader(http.StatusOK)
		started = true
		return w
	})
	if err != nil && started {
		// The status is sent: all we can do is cut the stream short.
		return nil
	}
	return err
}

func (s *Server) archivePut(w *respWriter, r *http.Request) error {
	p, err := archivePath(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	opts := engine.ExtractOptions{NoOverwriteDirNonDir: boolValue(q, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(q, "copyUIDGID")}
	if err := s.b.ContainerExtract(r.Context(), r.PathValue("id"), p, opts, r.Body); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
