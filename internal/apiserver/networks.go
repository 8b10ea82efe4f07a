package apiserver

import (
	"context"
	"net/http"

	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/filters"
)

// NetworkBackend is the /networks route group.
type NetworkBackend interface {
	NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error)
	NetworkInspect(ctx context.Context, ref string) (network.Inspect, error)
	NetworkList(ctx context.Context, f filters.Args) ([]network.Summary, error)
	NetworkRemove(ctx context.Context, ref string) error
	NetworkPrune(ctx context.Context, f filters.Args) (network.PruneReport, error)
	NetworkConnect(ctx context.Context, ref, container string, es *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, ref, container string, force bool) error
}

func (s *Server) networkRoutes() {
	s.handle("GET /networks", s.networkList)
	s.handle("POST /networks/create", s.networkCreate)
	s.handle("POST /networks/prune", s.networkPrune)
	s.handle("GET /networks/{id}", s.networkInspect)
	s.handle("DELETE /networks/{id}", s.networkRemove)
	s.handle("POST /networks/{id}/connect", s.networkConnect)
	s.handle("POST /networks/{id}/disconnect", s.networkDisconnect)
}

func (s *Server) networkList(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	out, err := s.b.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) networkCreate(w *respWriter, r *http.Request) error {
	var req network.CreateRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	resp, err := s.b.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkPrune(w *respWriter, r *http.Request) error {
	f, err := parseFilters(r.URL.Query())
	if err != nil {
		return err
	}
	rep, err := s.b.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, rep)
}

func (s *Server) networkInspect(w *respWriter, r *http.Request) error {
	doc, err := s.b.NetworkInspect(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, doc)
}

func (s *Server) networkRemove(w *respWriter, r *http.Request) error {
	if err := s.b.NetworkRemove(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkConnect(w *respWriter, r *http.Request) error {
	var req network.ConnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := s.b.NetworkConnect(r.Context(), r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w *respWriter, r *http.Request) error {
	var req network.DisconnectRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := s.b.NetworkDisconnect(r.Context(), r.PathValue("id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}
