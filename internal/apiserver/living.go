package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"time"

	"github.com/moby/moby/api/types/container"
)

// LivingBackend is what people do with running containers: pause, update,
// top, stats, diff.
type LivingBackend interface {
	ContainerPause(ctx context.Context, id string) error
	ContainerUnpause(ctx context.Context, id string) error
	ContainerUpdate(ctx context.Context, id string, u *container.UpdateConfig) (container.UpdateResponse, error)
	// ContainerTop runs ps with psArgs and keeps the container's processes.
	ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error)
	// ContainerStats takes one sample; PreCPUStats is filled by the route.
	ContainerStats(ctx context.Context, id string) (container.StatsResponse, error)
	// ContainerChanges lists the changes of the container's filesystem
	// against its image.
	ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error)
}

func (s *Server) livingRoutes() {
	s.handle("POST /containers/{id}/pause", s.containerPause)
	s.handle("POST /containers/{id}/unpause", s.containerUnpause)
	s.handle("POST /containers/{id}/update", s.containerUpdate)
	s.handle("GET /containers/{id}/top", s.containerTop)
	s.handle("GET /containers/{id}/stats", s.containerStats)
	s.handle("GET /containers/{id}/changes", s.containerChanges)
}

func (s *Server) containerPause(w *respWriter, r *http.Request) error {
	if err := s.b.ContainerPause(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUnpause(w *respWriter, r *http.Request) error {
	if err := s.b.ContainerUnpause(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerUpdate(w *respWriter, r *http.Request) error {
	var u container.UpdateConfig
	if err := readJSON(r, &u); err != nil {
		return err
	}
	resp, err := s.b.ContainerUpdate(r.Context(), r.PathValue("id"), &u)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerTop(w *respWriter, r *http.Request) error {
	resp, err := s.b.ContainerTop(r.Context(), r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, resp)
}

func (s *Server) containerChanges(w *respWriter, r *http.Request) error {
	ch, err := s.b.ContainerChanges(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if ch == nil {
		ch = []container.FilesystemChange{}
	}
	return writeJSON(w, http.StatusOK, ch)
}

// statsInterval is Docker's: one sample a second while streaming.
const statsInterval = time.Second

// statsPairDelay separates the two samples of a non-streamed answer (the
// CPU percentage needs a previous one). Docker waits a whole interval;
// 100 ms keeps `stats --no-stream` fast with many containers.
const statsPairDelay = 100 * time.Millisecond

// containerStats answers one sample (stream=false), or one a second until
// the client leaves (the default) or the container is removed.
func (s *Server) containerStats(w *respWriter, r *http.Request) error {
	q := r.URL.Query()
	id := r.PathValue("id")
	stream := boolDefault(q, "stream", true)
	oneShot := boolValue(q, "one-shot")
	ctx := r.Context()
	first, err := s.b.ContainerStats(ctx, id)
	if err != nil {
		return err
	}
	if !stream && oneShot {
		return writeJSON(w, http.StatusOK, first)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	prev := first
	if !stream {
		t := time.NewTimer(statsPairDelay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		cur, err := s.b.ContainerStats(ctx, id)
		if err != nil {
			return nil
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		return enc.Encode(cur)
	}
	// Streaming: the first sample goes out at once (without a previous one).
	if err := enc.Encode(first); err != nil {
		return nil
	}
	w.Flush()
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		cur, err := s.b.ContainerStats(ctx, id)
		if err != nil {
			return nil // removed: the stream ends
		}
		cur.PreCPUStats, cur.PreRead = prev.CPUStats, prev.Read
		if err := enc.Encode(cur); err != nil {
			return nil
		}
		w.Flush()
		prev = cur
	}
}
