package apiserver

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/distribution/reference"

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
	// DistributionInspect asks n's registry for the descriptor and the
	// platforms of what n names; registryAuth is X-Registry-Auth as sent.
	DistributionInspect(ctx context.Context, n reference.Named, registryAuth string) (*registry.DistributionInspect, error)
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

// distributionInspect is GET /distribution/{name}/json: the registry's
// descriptor of an image reference, parsed as dockerd parses it.
func (s *Server) distributionInspect(w *respWriter, r *http.Request) error {
	name, ok := strings.CutSuffix(r.PathValue("name"), "/json")
	if !ok || name == "" {
		return notFoundf("page not found")
	}
	rb, err := s.registryBackend()
	if err != nil {
		return err
	}
	ref, err := reference.ParseAnyReference(name)
	if err != nil {
		return invalidf("%v", err)
	}
	n, ok := ref.(reference.Named)
	if !ok {
		if _, ok := ref.(reference.Digested); ok {
			return errdefs.System("no manifest found for full image ID")
		}
		return invalidf("unknown image reference format: %s", name)
	}
	d, err := rb.DistributionInspect(r.Context(), n, r.Header.Get("X-Registry-Auth"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, d)
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
