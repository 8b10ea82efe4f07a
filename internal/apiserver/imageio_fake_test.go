package apiserver

import (
	"context"
	"io"

	"github.com/moby/moby/api/types/image"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// The image exchange routes are tested end to end (tests/imageio_test.go);
// the fake only has to satisfy the interface.

func (f *fakeBackend) ImageSave(ctx context.Context, names []string, w io.Writer) error {
	return errdefs.NotImplemented("fake")
}

func (f *fakeBackend) ImageLoad(ctx context.Context, r io.Reader, opts engine.LoadOptions) error {
	return errdefs.NotImplemented("fake")
}

func (f *fakeBackend) ContainerCommit(ctx context.Context, opts engine.CommitOptions) (string, error) {
	return "", errdefs.NotImplemented("fake")
}

func (f *fakeBackend) ContainerExport(ctx context.Context, id string, w io.Writer) error {
	return errdefs.NotImplemented("fake")
}

func (f *fakeBackend) ImagesPrune(ctx context.Context, fl filters.Args) (image.PruneReport, error) {
	return image.PruneReport{}, errdefs.NotImplemented("fake")
}

func (f *fakeBackend) SystemDiskUsage(ctx context.Context, types []string) (*engine.DiskUsage, error) {
	return nil, errdefs.NotImplemented("fake")
}
