package cri

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/filters"
)

// Backend is what the CRI services need from the engine (the same methods
// the Docker API's routes call), split so a test fakes one group at a time.
// Errors carry an errdefs kind; toStatus turns it into a gRPC code.
type Backend interface {
	ImageBackend
	ContainerBackend
	// SubscribeEvents feeds GetContainerEvents (the engine's /events).
	SubscribeEvents(since, until time.Time, f filters.Args) (past []events.Message, live <-chan events.Message, cancel func())
}

// ImageBackend serves the ImageService.
type ImageBackend interface {
	// ImagePull fetches ref; opts.RegistryAuth is the X-Registry-Auth
	// encoding of the credentials.
	ImagePull(ctx context.Context, ref string, opts engine.PullOptions) error
	ImageList(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error)
	ImageInspect(ctx context.Context, ref string) (*image.InspectResponse, error)
	ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error)
	// ImageImport makes the pause image from skiff-init (sandbox.go).
	ImageImport(ctx context.Context, src io.Reader, opts engine.ImportOptions) (id string, err error)
}

// ContainerBackend runs pod sandboxes and their containers as engine
// containers (labelled, see labels.go).
type ContainerBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	// ContainerCreateCRI is ContainerCreate of a pod container: its log in
	// the CRI format, the sandbox's UTS namespace and hostname.
	ContainerCreateCRI(ctx context.Context, name string, req *container.CreateRequest, opts engine.CRIOptions) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, id string) error
	ContainerStop(ctx context.Context, id string, timeout *int, signal string) error
	ContainerRemove(ctx context.Context, id string, force, removeVolumes bool) error
	ContainerList(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string, size bool) (*container.InspectResponse, error)
	ExecCreate(ctx context.Context, containerID string, req *container.ExecCreateRequest) (string, error)
	ExecStart(ctx context.Context, execID string, opts engine.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	// ExecResize, ContainerAttach and ContainerResize serve the streaming
	// server (stream.go).
	ExecResize(ctx context.Context, execID string, height, width uint) error
	ContainerAttach(ctx context.Context, id string, opts engine.AttachOptions) error
	ContainerResize(ctx context.Context, id string, height, width uint) error
	// ContainerReopenLog starts a new CRI log file (the kubelet rotated it).
	ContainerReopenLog(ctx context.Context, id string) error
	ContainerUpdate(ctx context.Context, id string, u *container.UpdateConfig) (container.UpdateResponse, error)
	// ContainerStats takes one sample of the container's cgroup.
	ContainerStats(ctx context.Context, id string) (container.StatsResponse, error)
}
