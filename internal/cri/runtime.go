package cri

import (
	"context"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
)

const (
	runtimeName = "skiff"
	// apiVersion is the CRI version served: the kubelet checks it.
	apiVersion = "v1"
	// kubeAPIVersion is the deprecated Version.version field, which
	// containerd and CRI-O fill with this constant.
	kubeAPIVersion = "0.1.0"
)

// Version reports the runtime and the CRI version it speaks.
func (s *Server) Version(ctx context.Context, req *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{
		Version: kubeAPIVersion, RuntimeName: runtimeName,
		RuntimeVersion: engine.Version, RuntimeApiVersion: apiVersion,
	}, nil
}

// Status reports the runtime and network conditions the kubelet waits for
// before it schedules pods here.
func (s *Server) Status(ctx context.Context, req *runtimeapi.StatusRequest) (*runtimeapi.StatusResponse, error) {
	conds := []*runtimeapi.RuntimeCondition{
		{Type: runtimeapi.RuntimeReady, Status: true},
		s.networkCondition(),
	}
	resp := &runtimeapi.StatusResponse{Status: &runtimeapi.RuntimeStatus{Conditions: conds}}
	if req.GetVerbose() {
		resp.Info = map[string]string{}
	}
	return resp, nil
}

// networkCondition is NetworkReady: true once a CNI network configuration
// is there, as containerd reports it.
func (s *Server) networkCondition() *runtimeapi.RuntimeCondition {
	list, err := s.cniConfList()
	if err == nil && list != nil {
		return &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: true}
	}
	msg := "skiff: no CNI network configuration (*.conflist) in " + s.opts.CNIConfDir
	if err != nil {
		msg = "skiff: " + err.Error()
	}
	return &runtimeapi.RuntimeCondition{Type: runtimeapi.NetworkReady, Status: false, Reason: "NetworkPluginNotReady", Message: msg}
}

// RuntimeConfig tells the kubelet which cgroup driver to match: skiff
// manages cgroups itself through cgroupfs, never through systemd.
func (s *Server) RuntimeConfig(ctx context.Context, req *runtimeapi.RuntimeConfigRequest) (*runtimeapi.RuntimeConfigResponse, error) {
	return &runtimeapi.RuntimeConfigResponse{
		Linux: &runtimeapi.LinuxRuntimeConfiguration{CgroupDriver: runtimeapi.CgroupDriver_CGROUPFS},
	}, nil
}
