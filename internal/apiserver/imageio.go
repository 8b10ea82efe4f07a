package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"slices"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/filters"
)

// ImageIOBackend is save/load, commit, export, image prune and disk usage.
type ImageIOBackend interface {
	ImageSave(ctx context.Context, names []string, w io.Writer) error
	// ImageLoad sends the load's messages to opts.Progress: layer progress
	// (unless Quiet), then a line per image ("Loaded image: ...").
	ImageLoad(ctx context.Context, r io.Reader, opts engine.LoadOptions) error
	ContainerCommit(ctx context.Context, opts engine.CommitOptions) (id string, err error)
	ContainerExport(ctx context.Context, id string, w io.Writer) error
	ImagesPrune(ctx context.Context, f filters.Args) (image.PruneReport, error)
	SystemDiskUsage(ctx context.Context, types []string) (*engine.DiskUsage, error)
}

const mediaTar = "application/x-tar"

var hdrTar = []string{mediaTar}

// lazyWriter sends the 200 and the tar content type with the first byte,
// so an error found before anything is written still becomes the status.
type lazyWriter struct{ w *respWriter }

func (l lazyWriter) Write(p []byte) (int, error) {
	if !l.w.started() {
		l.w.Header()["Content-Type"] = hdrTar
		l.w.WriteHeader(http.StatusOK)
	}
	return l.w.Write(p)
}

// finishTar ends a tar reply: an error after the first byte can only cut
// the stream short (the client sees a truncated archive), as with dockerd.
func finishTar(w *respWriter, err error) error {
	if err != nil && w.started() {
		panic(http.ErrAbortHandler)
	}
	if err == nil && !w.started() {
		w.Header()["Content-Type"] = hdrTar
		w.WriteHeader(http.StatusOK)
	}
	return err
}

// imagesGet serves GET /images/get?names=A&names=B.
func (s *Server) imagesGet(w *respWriter, r *http.Request) error {
	names := r.URL.Query()["names"]
	return finishTar(w, s.b.ImageSave(r.Context(), names, lazyWriter{w}))
}

// imageSaveOne serves GET /images/{name}/get.
func (s *Server) imageSaveOne(w *respWriter, r *http.Request, name string) error {
	return finishTar(w, s.b.ImageSave(r.Context(), []string{name}, lazyWriter{w}))
}

// imagesLoad serves POST /images/load: a JSON message stream (or, with
// quiet, the same messages without progress) naming the loaded images.
func (s *Server) imagesLoad(w *respWriter, r *http.Request) error {
	js := newJSONStream(w)
	err := s.b.ImageLoad(r.Context(), r.Body, engine.LoadOptions{Quiet: boolValue(r.URL.Query(), "quiet"), Progress: js.send})
	if err != nil {
		return js.finish(err)
	}
	if !w.started() {
		w.Header()["Content-Type"] = hdrJSON
		w.WriteHeader(http.StatusOK)
	}
	return nil
}

// commit serves POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=.
func (s *Server) commit(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	var cfg *container.Config
	if r.ContentLength != 0 && r.Body != nil {
		c := &container.Config{}
		if err := json.NewDecoder(r.Body).Decode(c); err != nil && err != io.EOF {
			return invalidf("decode commit config: %v", err)
		}
		cfg = c
	}
	name := q.Get("container")
	if name == "" {
		return invalidf("container name or ID is required")
	}
	repo, tag := splitTag(q.Get("repo"), q.Get("tag"))
	ref := repo
	if repo != "" && tag != "" {
		ref += ":" + tag
	}
	pause := true
	if q.Has("pause") {
		pause = boolValue(q, "pause")
	}
	id, err := s.b.ContainerCommit(r.Context(), engine.CommitOptions{
		Container: name, Ref: ref, Comment: q.Get("comment"), Author: q.Get("author"),
		Changes: q["changes"], Pause: pause, Config: cfg,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, container.CommitResponse{ID: id})
}

// containerExport serves GET /containers/{id}/export.
func (s *Server) containerExport(w *respWriter, r *http.Request) error {
	return finishTar(w, s.b.ContainerExport(r.Context(), r.PathValue("id"), lazyWriter{w}))
}

// imagesPrune serves POST /images/prune.
func (s *Server) imagesPrune(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	rep, err := s.b.ImagesPrune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

// systemDF serves GET /system/df in the form API 1.51 and older answer.
func (s *Server) systemDF(w *respWriter, r *http.Request) error {
	types := r.URL.Query()["type"]
	du, err := s.b.SystemDiskUsage(r.Context(), types)
	if err != nil {
		return err
	}
	if s.builds != nil && (len(types) == 0 || slices.Contains(types, "build-cache")) {
		if du.BuildCache, err = s.builds.CacheUsage(r.Context()); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, du)
}
