package apiserver

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/moby/moby/api/types/registry"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// RegistryBackend is what push and login need. It is separate from
// Backend so that backends without registry support still serve the rest.
type RegistryBackend interface {
	ImagePush(ctx context.Context, name string, opts engine.PushOptions) error
	RegistryLogin(ctx context.Context, auth regclient.Auth) (identityToken string, err error)
}

func (s *Server) registryBackend() (RegistryBackend, error) {
	rb, ok := s.b.(RegistryBackend)
	if !ok {
		return nil, errdefs.NotImplemented("registry operations are not supported by this backend")
	}
	return rb, nil
}

// imagePush is POST /images/{name}/push?tag=TAG with X-Registry-Auth.
func (s *Server) imagePush(w *respWriter, r *http.Request, name string) error {
	rb, err := s.registryBackend()
	if err != nil {
		return err
	}
	js := newJSONStream(w)
	err = rb.ImagePush(r.Context(), name, engine.PushOptions{
		Tag:          r.URL.Query().Get("tag"),
		RegistryAuth: r.Header.Get("X-Registry-Auth"),
		Progress:     js.send,
	})
	return js.finish(err)
}

// auth is POST /auth: check credentials as `docker login` does.
func (s *Server) auth(w *respWriter, r *http.Request) error {
	rb, err := s.registryBackend()
	if err != nil {
		return err
	}
	var cfg registry.AuthConfig
	if err := json.NewDecoder(r.Body).Decode(&cfg); err != nil {
		return invalidf("decode credentials: %v", err)
	}
	token, err := rb.RegistryLogin(r.Context(), regclient.Auth{
		Username: cfg.Username, Password: cfg.Password, Auth: cfg.Auth,
		ServerAddress: cfg.ServerAddress, IdentityToken: cfg.IdentityToken, RegistryToken: cfg.RegistryToken,
	})
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, registry.AuthResponse{Status: "Login Succeeded", IdentityToken: token})
}
