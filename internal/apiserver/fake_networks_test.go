package apiserver

import (
	"context"

	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

func noNetwork(ref string) error { return errdefs.NotFound("network %s not found", ref) }

func (f *fakeBackend) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	return network.CreateResponse{ID: "net1"}, nil
}
func (f *fakeBackend) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	return network.Inspect{}, noNetwork(ref)
}
func (f *fakeBackend) NetworkList(ctx context.Context, fl filters.Args) ([]network.Summary, error) {
	return []network.Summary{}, nil
}
func (f *fakeBackend) NetworkRemove(ctx context.Context, ref string) error { return noNetwork(ref) }
func (f *fakeBackend) NetworkPrune(ctx context.Context, fl filters.Args) (network.PruneReport, error) {
	return network.PruneReport{NetworksDeleted: []string{}}, nil
}
func (f *fakeBackend) NetworkConnect(ctx context.Context, ref, c string, es *network.EndpointSettings) error {
	return noNetwork(ref)
}
func (f *fakeBackend) NetworkDisconnect(ctx context.Context, ref, c string, force bool) error {
	return noNetwork(ref)
}
