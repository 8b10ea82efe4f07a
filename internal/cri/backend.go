package cri

import (
	"context"

	"github.com/moby/moby/api/types/image"

	"github.com/skiff-dev/skiff/internal/engine"
)

// Backend is what the CRI services need from the engine (the same methods
// the Docker API's routes call), split so a test fakes one group at a time.
// Errors carry an errdefs kind; toStatus turns it into a gRPC code.
type Backend interface {
	ImageBackend
}

// ImageBackend serves the ImageService.
type ImageBackend interface {
	// ImagePull fetches ref; opts.RegistryAuth is the X-Registry-Auth
	// encoding of the credentials.
	ImagePull(ctx context.Context, ref string, opts engine.PullOptions) error
	ImageList(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error)
	ImageInspect(ctx context.Context, ref string) (*image.InspectResponse, error)
	ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error)
}
