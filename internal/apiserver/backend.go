package apiserver

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/system"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/filters"
)

// Backend is what the routes need from the engine. It is split by route
// group so a test can fake one group at a time. Errors carry an errdefs kind;
// statusFor turns it into the HTTP status.
type Backend interface {
	SystemBackend
	ContainerBackend
	LivingBackend // living.go
	ExecBackend
	ImageBackend
	VolumeBackend
	NetworkBackend // networks.go
	ArchiveBackend
	ImageIOBackend
}

type SystemBackend interface {
	Info(ctx context.Context) (*system.Info, error)
	Version(ctx context.Context) system.VersionResponse
	// SubscribeEvents returns the stored events between since and until that
	// match f, and, when until is zero, a channel of live ones. cancel ends
	// the subscription and closes the channel.
	SubscribeEvents(since, until time.Time, f filters.Args) (past []events.Message, live <-chan events.Message, cancel func())
}

type ContainerBackend interface {
	ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, id string) error
	// ContainerStop sends the stop signal (signal, else the container's
	// StopSignal, else SIGTERM), waits timeout seconds (nil: the container's
	// StopTimeout, else 10; -1: forever), then SIGKILL.
	ContainerStop(ctx context.Context, id string, timeout *int, signal string) error
	ContainerRestart(ctx context.Context, id string, timeout *int, signal string) error
	ContainerKill(ctx context.Context, id string, signal string) error
	// ContainerWait returns once the wait is registered; the channel yields
	// one response when condition ("not-running", "next-exit", "removed")
	// is met. The apiserver flushes the 200 header before reading it.
	ContainerWait(ctx context.Context, id string, condition string) (<-chan container.WaitResponse, error)
	ContainerRemove(ctx context.Context, id string, force, removeVolumes bool) error
	ContainerList(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, id string, size bool) (*container.InspectResponse, error)
	// ContainerLogs streams log records; the channel closes at the end (or,
	// with Follow, when the container stops or ctx ends). tty reports whether
	// the container has a terminal (then the output is not multiplexed).
	ContainerLogs(ctx context.Context, id string, opts engine.LogsOptions) (msgs <-chan engine.LogMessage, tty bool, err error)
	// ContainerAttachTTY reports whether the container has a terminal, so the
	// apiserver knows whether to multiplex before it hijacks.
	ContainerAttachTTY(ctx context.Context, id string) (bool, error)
	// ContainerAttach blocks until the container's output ends or the client
	// goes away. Attaching to a created container waits for its start.
	ContainerAttach(ctx context.Context, id string, opts engine.AttachOptions) error
	ContainerPrune(ctx context.Context, f filters.Args) (container.PruneReport, error)
	ContainerRename(ctx context.Context, id, newName string) error
	// ContainerResize sets the size of the container's terminal.
	ContainerResize(ctx context.Context, id string, height, width uint) error
}

type ExecBackend interface {
	ExecCreate(ctx context.Context, containerID string, req *container.ExecCreateRequest) (string, error)
	// ExecStart runs the exec; without Detach it blocks until the process
	// exits and its output is written.
	ExecStart(ctx context.Context, execID string, opts engine.ExecStartOptions) error
	ExecInspect(ctx context.Context, execID string) (*container.ExecInspectResponse, error)
	ExecTTY(ctx context.Context, execID string) (bool, error)
	ExecResize(ctx context.Context, execID string, height, width uint) error
}

type ImageBackend interface {
	ImageImport(ctx context.Context, src io.Reader, opts engine.ImportOptions) (id string, err error)
	// ImagePull fetches ref from its registry: fromImage with the tag or
	// digest appended, in whatever form the client sent it ("busybox:latest",
	// "docker.io/library/busybox:latest"). An error before the first
	// Progress message becomes the HTTP status (docker run prints it and
	// exits 125); a later one is sent as an error message in the stream.
	ImagePull(ctx context.Context, ref string, opts engine.PullOptions) error
	ImageList(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error)
	ImageInspect(ctx context.Context, ref string) (*image.InspectResponse, error)
	ImageTag(ctx context.Context, source, repo, tag string) error
	ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error)
	ImageHistory(ctx context.Context, ref string) ([]image.HistoryResponseItem, error)
}
