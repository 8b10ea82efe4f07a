package apiserver

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/container"
	volumetypes "github.com/moby/moby/api/types/volume"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

func noVolume(name string) error { return errdefs.NotFound("get %s: no such volume", name) }

func (f *fakeBackend) VolumeCreate(ctx context.Context, req volumetypes.CreateRequest) (*volumetypes.Volume, error) {
	return &volumetypes.Volume{Name: req.Name, Driver: "local"}, nil
}
func (f *fakeBackend) VolumeInspect(ctx context.Context, name string) (*volumetypes.Volume, error) {
	return nil, noVolume(name)
}
func (f *fakeBackend) VolumeList(ctx context.Context, fl filters.Args) (*volumetypes.ListResponse, error) {
	return &volumetypes.ListResponse{Volumes: []volumetypes.Volume{}, Warnings: []string{}}, nil
}
func (f *fakeBackend) VolumeRemove(ctx context.Context, name string, force bool) error {
	return noVolume(name)
}
func (f *fakeBackend) VolumePrune(ctx context.Context, fl filters.Args) (*volumetypes.PruneReport, error) {
	return &volumetypes.PruneReport{VolumesDeleted: []string{}}, nil
}
func (f *fakeBackend) ContainerStatPath(ctx context.Context, id, path string) (*container.PathStat, error) {
	return nil, noContainer(id)
}
func (f *fakeBackend) ContainerArchivePath(ctx context.Context, id, path string, start func(*container.PathStat) io.Writer) error {
	return noContainer(id)
}
func (f *fakeBackend) ContainerExtract(ctx context.Context, id, path string, opts engine.ExtractOptions, r io.Reader) error {
	return noContainer(id)
}
