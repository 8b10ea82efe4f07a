package cri

import (
	"context"
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// UpdateContainerResources changes a container's CPU and memory limits
// through the engine's update (a running container's cgroup at once).
// Limits skiff cannot set are refused, never dropped.
func (s *Server) UpdateContainerResources(ctx context.Context, req *runtimeapi.UpdateContainerResourcesRequest) (*runtimeapi.UpdateContainerResourcesResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	r := req.GetLinux()
	if r == nil {
		return &runtimeapi.UpdateContainerResourcesResponse{}, nil
	}
	if len(r.Unified) > 0 {
		return nil, errdefs.NotImplemented("UpdateContainerResources: unified cgroup v2 settings are not supported")
	}
	for _, h := range r.HugepageLimits {
		if h.Limit != 0 {
			return nil, errdefs.NotImplemented("UpdateContainerResources: hugepage limits are not supported")
		}
	}
	u := &container.UpdateConfig{Resources: container.Resources{
		CPUShares: r.CpuShares, CPUQuota: r.CpuQuota, CPUPeriod: r.CpuPeriod,
		Memory: r.MemoryLimitInBytes, MemorySwap: r.MemorySwapLimitInBytes,
		CpusetCpus: r.CpusetCpus, CpusetMems: r.CpusetMems,
	}}
	if _, err := s.b.ContainerUpdate(ctx, c.ID, u); err != nil {
		return nil, fmt.Errorf("UpdateContainerResources: %w", err)
	}
	return &runtimeapi.UpdateContainerResourcesResponse{}, nil
}

// ContainerStats takes one sample of a container's cgroup.
func (s *Server) ContainerStats(ctx context.Context, req *runtimeapi.ContainerStatsRequest) (*runtimeapi.ContainerStatsResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	st, err := s.containerStats(ctx, c.ID, c.Config.Labels)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerStatsResponse{Stats: st}, nil
}

// ListContainerStats samples the running pod containers the filter selects.
func (s *Server) ListContainerStats(ctx context.Context, req *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	f := req.GetFilter()
	args := filters.Args{"label": {labelKind + "=" + kindContainer}, "status": {"running"}}
	if f.GetPodSandboxId() != "" {
		sb, err := s.sandbox(ctx, f.PodSandboxId)
		if errdefs.IsNotFound(err) {
			return &runtimeapi.ListContainerStatsResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		args["label"] = append(args["label"], labelSandbox+"="+sb.ID)
	}
	cs, err := s.b.ContainerList(ctx, engine.ListOptions{Filters: args})
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.ContainerStats{}
	for _, c := range cs {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.Id) || !matchSelector(f.GetLabelSelector(), jsonMap(c.Labels[labelLabels])) {
			continue
		}
		st, err := s.containerStats(ctx, c.ID, c.Labels)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return &runtimeapi.ListContainerStatsResponse{Stats: out}, nil
}

// containerStats converts the engine's Docker-format sample: CPU time,
// memory usage, working set (usage less inactive file pages, as the
// kubelet counts it) and RSS.
func (s *Server) containerStats(ctx context.Context, id string, labels map[string]string) (*runtimeapi.ContainerStats, error) {
	d, err := s.b.ContainerStats(ctx, id)
	if err != nil {
		return nil, err
	}
	ts := d.Read.UnixNano()
	m := d.MemoryStats
	inactive := m.Stats["total_inactive_file"]
	if v, ok := m.Stats["inactive_file"]; ok {
		inactive = v
	}
	working := uint64(0)
	if m.Usage > inactive {
		working = m.Usage - inactive
	}
	rss := m.Stats["total_rss"]
	if v, ok := m.Stats["rss"]; ok {
		rss = v
	} else if v, ok := m.Stats["anon"]; ok {
		rss = v
	}
	return &runtimeapi.ContainerStats{
		Attributes: &runtimeapi.ContainerAttributes{Id: id, Metadata: containerMetadata(labels),
			Labels: jsonMap(labels[labelLabels]), Annotations: jsonMap(labels[labelAnnotations])},
		Cpu: &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: d.CPUStats.CPUUsage.TotalUsage}},
		Memory: &runtimeapi.MemoryUsage{Timestamp: ts, UsageBytes: &runtimeapi.UInt64Value{Value: m.Usage},
			WorkingSetBytes: &runtimeapi.UInt64Value{Value: working}, RssBytes: &runtimeapi.UInt64Value{Value: rss}},
	}, nil
}
