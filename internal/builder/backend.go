package builder

import (
	"context"
	"io"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/image"
)

// Backend is what a build needs from the engine. The engine implements it
// (internal/engine/build.go); tests use a fake.
type Backend interface {
	// ImageGet returns the local image refOrID; errdefs NotFound when absent.
	ImageGet(ctx context.Context, refOrID string) (*image.Image, error)
	// ImagePull pulls ref (FROM of an image not present, or --pull) for
	// platform ("" = the host's) with registryAuth (an X-Registry-Auth
	// value, "" for none), writing one human line per status to out.
	ImagePull(ctx context.Context, ref, platform, registryAuth string, out io.Writer) error
	// ImageRootFS gives read-only access to the root filesystem of image
	// imageID ("" = scratch: an empty directory) as a directory path that
	// works from any goroutine, valid until release is called. Nothing is
	// mounted where the host could see it.
	ImageRootFS(ctx context.Context, imageID string) (root string, release func(), err error)
	// AddLayer unpacks the layer tar r on top of image imageID's layers
	// ("" = no parent) and stores it (image.Store.AddLayer on the image's
	// chain id), held in the lease ctx carries.
	AddLayer(ctx context.Context, imageID string, r io.Reader) (image.Layer, error)
	// Lease starts the build's lease: what the backend stores with the
	// returned context (layers, Run's layers, images, pulls) is kept from
	// GC and image prune until release. The builder takes one for the
	// whole build.
	Lease(ctx context.Context) (leased context.Context, release func(), err error)
	// CreateImage records an image; parent is the id of the image it was
	// built from ("" for none). It is untagged.
	CreateImage(ctx context.Context, cfg dockerspec.DockerOCIImage, layers []image.Layer, parent string) (*image.Image, error)
	// TagImage points ref (normalized name:tag) at imageID and publishes
	// Docker's "tag" event.
	TagImage(ctx context.Context, imageID, ref string) error
	// Run runs one RUN step: a throwaway container of image imageID with
	// cfg (Cmd is the step's command; Env, User, WorkingDir, Shell as the
	// step has them) and hostCfg (NetworkMode), stdout and stderr copied
	// to out as they come. When the command exits 0 it returns the layer
	// of the container's changes (stored, parent = imageID's layers); an
	// empty diff gives a layer whose DiffID is the empty tar's. A non-zero
	// exit returns its code with a nil error (and no layer). The container
	// is removed in every case. cfg is complete, as Docker's builder makes
	// it: Entrypoint is nil (none, not the image's), Healthcheck is NONE,
	// Volumes are the image's (Docker gives them anonymous volumes, so a
	// RUN's writes there are not in the layer). The layer is held in the
	// lease ctx carries.
	Run(ctx context.Context, imageID string, cfg *container.Config, hostCfg *container.HostConfig, out io.Writer) (layer image.Layer, exitCode int, err error)
}

// RunOutput is implemented by the out the builder passes to Backend.Run.
// A Backend calls ContainerCreated once with the throwaway container's id
// when it exists, before the command writes anything, so the build log
// shows Docker's " ---> Running in <id>" and " ---> Removed intermediate
// container <id>" lines. A Backend that does not call it only loses those
// two lines.
type RunOutput interface {
	io.Writer
	ContainerCreated(id string)
}
