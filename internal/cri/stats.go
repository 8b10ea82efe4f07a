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
	working := workingSet(m)
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

// PodSandboxStats samples a pod: the sum of its pause process's and its
// containers' CPU, memory and process counts, the network of the pod's
// namespace, and each running container's own sample.
func (s *Server) PodSandboxStats(ctx context.Context, req *runtimeapi.PodSandboxStatsRequest) (*runtimeapi.PodSandboxStatsResponse, error) {
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	st, err := s.podStats(ctx, sb.ID, sb.Config.Labels)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PodSandboxStatsResponse{Stats: st}, nil
}

// ListPodSandboxStats samples the ready pods the filter selects.
func (s *Server) ListPodSandboxStats(ctx context.Context, req *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	f := req.GetFilter()
	cs, err := s.b.ContainerList(ctx, engine.ListOptions{Filters: filters.Args{
		"label": {labelKind + "=" + kindSandbox}, "status": {"running"}}})
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.PodSandboxStats{}
	for _, c := range cs {
		if f.GetId() != "" && !strings.HasPrefix(c.ID, f.Id) || !matchSelector(f.GetLabelSelector(), jsonMap(c.Labels[labelLabels])) {
			continue
		}
		st, err := s.podStats(ctx, c.ID, c.Labels)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return &runtimeapi.ListPodSandboxStatsResponse{Stats: out}, nil
}

func (s *Server) podStats(ctx context.Context, id string, labels map[string]string) (*runtimeapi.PodSandboxStats, error) {
	pause, err := s.b.ContainerStats(ctx, id)
	if err != nil {
		return nil, err
	}
	ts := pause.Read.UnixNano()
	cpu, mem, working, procs := pause.CPUStats.CPUUsage.TotalUsage, pause.MemoryStats.Usage, workingSet(pause.MemoryStats), pause.PidsStats.Current
	linux := &runtimeapi.LinuxPodSandboxStats{}
	cl, err := s.b.ContainerList(ctx, engine.ListOptions{Filters: filters.Args{
		"label": {labelKind + "=" + kindContainer, labelSandbox + "=" + id}, "status": {"running"}}})
	if err != nil {
		return nil, err
	}
	for _, c := range cl {
		cst, err := s.containerStats(ctx, c.ID, c.Labels)
		if errdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		linux.Containers = append(linux.Containers, cst)
		cpu += cst.Cpu.GetUsageCoreNanoSeconds().GetValue()
		mem += cst.Memory.GetUsageBytes().GetValue()
		working += cst.Memory.GetWorkingSetBytes().GetValue()
	}
	linux.Cpu = &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: cpu}}
	linux.Memory = &runtimeapi.MemoryUsage{Timestamp: ts, UsageBytes: &runtimeapi.UInt64Value{Value: mem},
		WorkingSetBytes: &runtimeapi.UInt64Value{Value: working}}
	linux.Process = &runtimeapi.ProcessUsage{Timestamp: ts, ProcessCount: &runtimeapi.UInt64Value{Value: procs}}
	if len(pause.Networks) > 0 {
		nu := &runtimeapi.NetworkUsage{Timestamp: ts}
		for name, n := range pause.Networks {
			iu := &runtimeapi.NetworkInterfaceUsage{Name: name,
				RxBytes: &runtimeapi.UInt64Value{Value: n.RxBytes}, RxErrors: &runtimeapi.UInt64Value{Value: n.RxErrors},
				TxBytes: &runtimeapi.UInt64Value{Value: n.TxBytes}, TxErrors: &runtimeapi.UInt64Value{Value: n.TxErrors}}
			nu.Interfaces = append(nu.Interfaces, iu)
			if name == "eth0" {
				nu.DefaultInterface = iu
			}
		}
		linux.Network = nu
	}
	return &runtimeapi.PodSandboxStats{
		Attributes: &runtimeapi.PodSandboxAttributes{Id: id, Metadata: sandboxMetadata(labels),
			Labels: jsonMap(labels[labelLabels]), Annotations: jsonMap(labels[labelAnnotations])},
		Linux: linux,
	}, nil
}

// workingSet is memory usage less inactive file pages, as the kubelet
// counts it.
func workingSet(m container.MemoryStats) uint64 {
	inactive := m.Stats["total_inactive_file"]
	if v, ok := m.Stats["inactive_file"]; ok {
		inactive = v
	}
	if m.Usage > inactive {
		return m.Usage - inactive
	}
	return 0
}
