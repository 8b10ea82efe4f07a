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
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// fakeBackend answers with its func fields; a nil field means "no such
// object" for calls that name one and an empty answer otherwise.
type fakeBackend struct {
	info      func(ctx context.Context) (*system.Info, error)
	subscribe func(since, until time.Time, f filters.Args) ([]events.Message, <-chan events.Message, func())

	create     func(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error)
	start      func(ctx context.Context, id string) error
	stop       func(ctx context.Context, id string, timeout *int, signal string) error
	restart    func(ctx context.Context, id string, timeout *int, signal string) error
	kill       func(ctx context.Context, id string, signal string) error
	wait       func(ctx context.Context, id string, condition string) (<-chan container.WaitResponse, error)
	remove     func(ctx context.Context, id string, force, volumes bool) error
	list       func(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error)
	inspect    func(ctx context.Context, id string, size bool) (*container.InspectResponse, error)
	logs       func(ctx context.Context, id string, opts engine.LogsOptions) (<-chan engine.LogMessage, bool, error)
	attachTTY  func(ctx context.Context, id string) (bool, error)
	attach     func(ctx context.Context, id string, opts engine.AttachOptions) error
	prune      func(ctx context.Context, f filters.Args) (container.PruneReport, error)
	rename     func(ctx context.Context, id, name string) error
	execCreate func(ctx context.Context, id string, req *container.ExecCreateRequest) (string, error)
	execStart  func(ctx context.Context, id string, opts engine.ExecStartOptions) error
	execInsp   func(ctx context.Context, id string) (*container.ExecInspectResponse, error)
	execTTY    func(ctx context.Context, id string) (bool, error)

	imgImport  func(ctx context.Context, src io.Reader, opts engine.ImportOptions) (string, error)
	imgPull    func(ctx context.Context, ref string, opts engine.PullOptions) error
	imgList    func(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error)
	imgInspect func(ctx context.Context, ref string) (*image.InspectResponse, error)
	imgTag     func(ctx context.Context, source, repo, tag string) error
	imgRemove  func(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error)
	imgHistory func(ctx context.Context, ref string) ([]image.HistoryResponseItem, error)
}

var _ Backend = (*fakeBackend)(nil)

func noContainer(id string) error { return errdefs.NotFound("No such container: %s", id) }
func noImage(ref string) error    { return errdefs.NotFound("No such image: %s", ref) }

func (f *fakeBackend) Info(ctx context.Context) (*system.Info, error) {
	if f.info != nil {
		return f.info(ctx)
	}
	return &system.Info{ID: "fake", OSType: "linux", Name: "fakehost"}, nil
}

func (f *fakeBackend) Version(ctx context.Context) system.VersionResponse {
	return system.VersionResponse{Version: "test", Os: "linux", Arch: "amd64", GoVersion: "go1.26",
		Components: []system.ComponentVersion{{Name: "Engine", Version: "test"}}}
}

func (f *fakeBackend) SubscribeEvents(since, until time.Time, fl filters.Args) ([]events.Message, <-chan events.Message, func()) {
	if f.subscribe != nil {
		return f.subscribe(since, until, fl)
	}
	return nil, nil, func() {}
}

func (f *fakeBackend) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (container.CreateResponse, error) {
	if f.create != nil {
		return f.create(ctx, name, req)
	}
	return container.CreateResponse{}, noImage(req.Image)
}

func (f *fakeBackend) ContainerStart(ctx context.Context, id string) error {
	if f.start != nil {
		return f.start(ctx, id)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerStop(ctx context.Context, id string, timeout *int, signal string) error {
	if f.stop != nil {
		return f.stop(ctx, id, timeout, signal)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerRestart(ctx context.Context, id string, timeout *int, signal string) error {
	if f.restart != nil {
		return f.restart(ctx, id, timeout, signal)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerKill(ctx context.Context, id string, signal string) error {
	if f.kill != nil {
		return f.kill(ctx, id, signal)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerWait(ctx context.Context, id string, condition string) (<-chan container.WaitResponse, error) {
	if f.wait != nil {
		return f.wait(ctx, id, condition)
	}
	return nil, noContainer(id)
}

func (f *fakeBackend) ContainerRemove(ctx context.Context, id string, force, volumes bool) error {
	if f.remove != nil {
		return f.remove(ctx, id, force, volumes)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerList(ctx context.Context, opts engine.ListOptions) ([]container.Summary, error) {
	if f.list != nil {
		return f.list(ctx, opts)
	}
	return nil, nil
}

func (f *fakeBackend) ContainerInspect(ctx context.Context, id string, size bool) (*container.InspectResponse, error) {
	if f.inspect != nil {
		return f.inspect(ctx, id, size)
	}
	return nil, noContainer(id)
}

func (f *fakeBackend) ContainerLogs(ctx context.Context, id string, opts engine.LogsOptions) (<-chan engine.LogMessage, bool, error) {
	if f.logs != nil {
		return f.logs(ctx, id, opts)
	}
	return nil, false, noContainer(id)
}

func (f *fakeBackend) ContainerAttachTTY(ctx context.Context, id string) (bool, error) {
	if f.attachTTY != nil {
		return f.attachTTY(ctx, id)
	}
	return false, noContainer(id)
}

func (f *fakeBackend) ContainerAttach(ctx context.Context, id string, opts engine.AttachOptions) error {
	if f.attach != nil {
		return f.attach(ctx, id, opts)
	}
	return noContainer(id)
}

func (f *fakeBackend) ContainerPrune(ctx context.Context, fl filters.Args) (container.PruneReport, error) {
	if f.prune != nil {
		return f.prune(ctx, fl)
	}
	return container.PruneReport{}, nil
}

func (f *fakeBackend) ContainerRename(ctx context.Context, id, name string) error {
	if f.rename != nil {
		return f.rename(ctx, id, name)
	}
	return noContainer(id)
}

func (f *fakeBackend) ExecCreate(ctx context.Context, id string, req *container.ExecCreateRequest) (string, error) {
	if f.execCreate != nil {
		return f.execCreate(ctx, id, req)
	}
	return "", noContainer(id)
}

func (f *fakeBackend) ExecStart(ctx context.Context, id string, opts engine.ExecStartOptions) error {
	if f.execStart != nil {
		return f.execStart(ctx, id, opts)
	}
	return errdefs.NotFound("No such exec instance: %s", id)
}

func (f *fakeBackend) ExecInspect(ctx context.Context, id string) (*container.ExecInspectResponse, error) {
	if f.execInsp != nil {
		return f.execInsp(ctx, id)
	}
	return nil, errdefs.NotFound("No such exec instance: %s", id)
}

func (f *fakeBackend) ExecTTY(ctx context.Context, id string) (bool, error) {
	if f.execTTY != nil {
		return f.execTTY(ctx, id)
	}
	return false, errdefs.NotFound("No such exec instance: %s", id)
}

func (f *fakeBackend) ImageImport(ctx context.Context, src io.Reader, opts engine.ImportOptions) (string, error) {
	if f.imgImport != nil {
		return f.imgImport(ctx, src, opts)
	}
	return "", errdefs.NotImplemented("import")
}

func (f *fakeBackend) ImagePull(ctx context.Context, ref string, opts engine.PullOptions) error {
	if f.imgPull != nil {
		return f.imgPull(ctx, ref, opts)
	}
	return errdefs.NotFound("pull access denied for %s, repository does not exist or may require 'docker login'", ref)
}

func (f *fakeBackend) ImageList(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error) {
	if f.imgList != nil {
		return f.imgList(ctx, opts)
	}
	return nil, nil
}

func (f *fakeBackend) ImageInspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	if f.imgInspect != nil {
		return f.imgInspect(ctx, ref)
	}
	return nil, noImage(ref)
}

func (f *fakeBackend) ImageTag(ctx context.Context, source, repo, tag string) error {
	if f.imgTag != nil {
		return f.imgTag(ctx, source, repo, tag)
	}
	return noImage(source)
}

func (f *fakeBackend) ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error) {
	if f.imgRemove != nil {
		return f.imgRemove(ctx, ref, force, noPrune)
	}
	return nil, noImage(ref)
}

func (f *fakeBackend) ImageHistory(ctx context.Context, ref string) ([]image.HistoryResponseItem, error) {
	if f.imgHistory != nil {
		return f.imgHistory(ctx, ref)
	}
	return nil, noImage(ref)
}

func (f *fakeBackend) ContainerResize(ctx context.Context, id string, h, w uint) error {
	_, err := f.ContainerAttachTTY(ctx, id)
	return err
}

func (f *fakeBackend) ExecResize(ctx context.Context, id string, h, w uint) error {
	_, err := f.ExecTTY(ctx, id)
	return err
}

func (f *fakeBackend) ContainerPause(ctx context.Context, id string) error   { return noContainer(id) }
func (f *fakeBackend) ContainerUnpause(ctx context.Context, id string) error { return noContainer(id) }
func (f *fakeBackend) ContainerUpdate(ctx context.Context, id string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	return container.UpdateResponse{}, noContainer(id)
}
func (f *fakeBackend) ContainerTop(ctx context.Context, id, psArgs string) (container.TopResponse, error) {
	return container.TopResponse{}, noContainer(id)
}
func (f *fakeBackend) ContainerStats(ctx context.Context, id string) (container.StatsResponse, error) {
	return container.StatsResponse{}, noContainer(id)
}
func (f *fakeBackend) ContainerChanges(ctx context.Context, id string) ([]container.FilesystemChange, error) {
	return nil, noContainer(id)
}
