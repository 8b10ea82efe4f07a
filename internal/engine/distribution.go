package engine

import (
	"context"

	"github.com/distribution/reference"
	registrytypes "github.com/moby/moby/api/types/registry"

	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// DistributionInspect answers GET /distribution/{name}/json from n's
// registry: the descriptor of the manifest or index n names, and its
// platforms. registryAuth is the X-Registry-Auth header; like dockerd, an
// undecodable one is sent as no credentials rather than refused.
func (e *Engine) DistributionInspect(ctx context.Context, n reference.Named, registryAuth string) (*registrytypes.DistributionInspect, error) {
	auth, err := regclient.DecodeAuth(registryAuth)
	if err != nil {
		auth = regclient.Auth{}
	}
	d, err := e.registryClient().Inspect(ctx, n, auth)
	if err != nil {
		return nil, err
	}
	return &registrytypes.DistributionInspect{Descriptor: d.Descriptor, Platforms: d.Platforms}, nil
}
