package cri

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// pauseRepo is the image skiff makes, never pulls, for sandboxes: one file,
// skiff-init, run as `/pause --pause` (it sleeps and reaps).
const pauseRepo = engine.PauseRepo

// sandboxOOMScoreAdj is the pause process's oom_score_adj before the
// clamp: the kubelet's for critical pods, as containerd sets it.
const sandboxOOMScoreAdj = -998

func pauseRef() string { return pauseRepo + ":" + engine.Version }

// ensurePauseImage imports the pause image from skiff-init when the store
// lacks it (first pod, or someone removed it).
func (s *Server) ensurePauseImage(ctx context.Context) (string, error) {
	s.pauseMu.Lock()
	defer s.pauseMu.Unlock()
	if img, err := s.b.ImageInspect(ctx, pauseRef()); err == nil {
		return img.ID, nil
	} else if !errdefs.IsNotFound(err) {
		return "", err
	}
	if s.opts.PauseBinary == "" {
		return "", errdefs.System("no pause binary configured")
	}
	bin, err := os.ReadFile(s.opts.PauseBinary)
	if err != nil {
		return "", errdefs.System("pause image: read skiff-init: %v", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, d := range []string{"dev/", "etc/", "proc/", "sys/"} {
		tw.WriteHeader(&tar.Header{Name: d, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(0, 0)})
	}
	tw.WriteHeader(&tar.Header{Name: "pause", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0)})
	tw.Write(bin)
	if err := tw.Close(); err != nil {
		return "", err
	}
	return s.b.ImageImport(ctx, &buf, engine.ImportOptions{
		Repo: pauseRepo, Tag: engine.Version,
		Changes: []string{`ENTRYPOINT ["/pause", "--pause"]`},
	})
}

// RunPodSandbox starts the pause process that holds the pod's network, IPC
// and UTS namespaces (and PID, when the pod shares one): an engine
// container of the pause image. Its id is the sandbox id.
func (s *Server) RunPodSandbox(ctx context.Context, req *runtimeapi.RunPodSandboxRequest) (*runtimeapi.RunPodSandboxResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" || md.GetNamespace() == "" || md.GetUid() == "" {
		return nil, errdefs.Invalid("RunPodSandbox: metadata needs a name, a namespace and a uid")
	}
	if h := req.GetRuntimeHandler(); h != "" {
		return nil, errdefs.NotImplemented("RunPodSandbox: runtime handler %q: skiff has only its default runtime", h)
	}
	s.gcPodNetworks(ctx) // free what removed sandboxes hold before taking more
	pauseID, err := s.ensurePauseImage(ctx)
	if err != nil {
		return nil, err
	}
	linux := cfg.GetLinux()
	nsOpts := linux.GetSecurityContext().GetNamespaceOptions()
	if nsOpts == nil {
		nsOpts = &runtimeapi.NamespaceOption{}
	}
	nsJSON, _ := json.Marshal(nsOpts)
	labels := criLabels(kindSandbox, cfg.GetLabels(), cfg.GetAnnotations())
	labels[labelName], labels[labelNamespace], labels[labelUID] = md.Name, md.Namespace, md.Uid
	labels[labelAttempt] = strconv.FormatUint(uint64(md.Attempt), 10)
	labels[labelNamespaces] = string(nsJSON)
	if d := cfg.GetLogDirectory(); d != "" {
		if !filepath.IsAbs(d) {
			return nil, errdefs.Invalid("RunPodSandbox: log directory %q is not absolute", d)
		}
		labels[labelLogDir] = d
	}

	hc := &container.HostConfig{
		NetworkMode: "none", // loopback only until CNI lands
		IpcMode:     "shareable",
		Sysctls:     linux.GetSysctls(),
		Privileged:  linux.GetSecurityContext().GetPrivileged(),
		LogConfig:   container.LogConfig{Type: "none"},
		// The pause process is the last thing the OOM killer should take
		// (containerd's defaultSandboxOOMAdj), clamped to what the engine
		// may set.
		OomScoreAdj: clampOOMScoreAdj(sandboxOOMScoreAdj),
	}
	hc.CgroupParent = linux.GetCgroupParent()
	if err := checkAppArmor(linux.GetSecurityContext().GetApparmor(), ""); err != nil {
		return nil, fmt.Errorf("RunPodSandbox: %w", err)
	}
	if sc := linux.GetSecurityContext(); !sc.GetPrivileged() {
		opt, err := seccompOpt(sc.GetSeccomp(), sc.GetSeccompProfilePath())
		if err != nil {
			return nil, fmt.Errorf("RunPodSandbox: %w", err)
		}
		if opt != "" {
			hc.SecurityOpt = append(hc.SecurityOpt, opt)
		}
	}
	c := &container.Config{Image: pauseID, Hostname: cfg.GetHostname(), Labels: labels}
	if nsOpts.Network == runtimeapi.NamespaceMode_NODE {
		hc.NetworkMode, hc.UTSMode, c.Hostname = "host", "host", ""
	}
	if nsOpts.Ipc == runtimeapi.NamespaceMode_NODE {
		hc.IpcMode = "host"
	}
	if nsOpts.Pid == runtimeapi.NamespaceMode_NODE {
		hc.PidMode = "host"
	}
	if dns := cfg.GetDnsConfig(); dns != nil {
		for _, a := range dns.Servers {
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return nil, errdefs.Invalid("RunPodSandbox: DNS server %q: %v", a, err)
			}
			hc.DNS = append(hc.DNS, ip)
		}
		hc.DNSSearch, hc.DNSOptions = dns.Searches, dns.Options
	}
	name := fmt.Sprintf("k8s_POD_%s_%s_%s_%d", md.Name, md.Namespace, md.Uid, md.Attempt)
	created, err := s.b.ContainerCreate(ctx, name, &container.CreateRequest{Config: c, HostConfig: hc})
	if err != nil {
		return nil, fmt.Errorf("RunPodSandbox %s/%s: %w", md.Namespace, md.Name, err)
	}
	if err := s.b.ContainerStart(ctx, created.ID); err != nil {
		s.b.ContainerRemove(context.WithoutCancel(ctx), created.ID, true, true)
		return nil, fmt.Errorf("RunPodSandbox %s/%s: start the pause process: %w", md.Namespace, md.Name, err)
	}
	if !hc.NetworkMode.IsHost() {
		pause, err := s.b.ContainerInspect(ctx, created.ID, false)
		if err == nil && (pause.State == nil || pause.State.Pid == 0) {
			err = errdefs.System("the pause process is not running")
		}
		if err == nil {
			_, err = s.setupPodNetwork(ctx, created.ID, pause.State.Pid, md, cfg.GetPortMappings())
		}
		if err != nil {
			s.b.ContainerRemove(context.WithoutCancel(ctx), created.ID, true, true)
			return nil, fmt.Errorf("RunPodSandbox %s/%s: %w", md.Namespace, md.Name, err)
		}
	}
	return &runtimeapi.RunPodSandboxResponse{PodSandboxId: created.ID}, nil
}

// sandbox inspects the engine container behind a sandbox id (or prefix);
// other objects are NotFound, so CRI clients never touch Docker's.
func (s *Server) sandbox(ctx context.Context, id string) (*container.InspectResponse, error) {
	if id == "" {
		return nil, errdefs.Invalid("no pod sandbox id given")
	}
	c, err := s.b.ContainerInspect(ctx, id, false)
	if err == nil && c.Config.Labels[labelKind] != kindSandbox {
		err = errdefs.NotFound("pod sandbox %s not found", id)
	}
	return c, err
}

// podContainers lists the engine containers of a sandbox.
func (s *Server) podContainers(ctx context.Context, sandboxID string) ([]container.Summary, error) {
	return s.b.ContainerList(ctx, engine.ListOptions{All: true, Filters: filters.Args{
		"label": {labelKind + "=" + kindContainer, labelSandbox + "=" + sandboxID}}})
}

// StopPodSandbox stops the pod's containers, then its pause process. A
// sandbox that is gone is stopped: success, as the CRI asks.
func (s *Server) StopPodSandbox(ctx context.Context, req *runtimeapi.StopPodSandboxRequest) (*runtimeapi.StopPodSandboxResponse, error) {
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopPodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cs, err := s.podContainers(ctx, sb.ID)
	if err != nil {
		return nil, err
	}
	// The kubelet stops containers with their grace period first; what is
	// left now is killed after a short one.
	timeout := 2
	for _, c := range cs {
		if err := s.stopEngine(ctx, c.ID, timeout); err != nil {
			return nil, fmt.Errorf("StopPodSandbox: stop container %s: %w", c.ID, err)
		}
	}
	// The network goes before the pause process, as under containerd.
	if err := s.teardownPodNetwork(ctx, sb.ID, sandboxMetadata(sb.Config.Labels)); err != nil {
		return nil, fmt.Errorf("StopPodSandbox: %w", err)
	}
	if err := s.stopEngine(ctx, sb.ID, timeout); err != nil {
		return nil, fmt.Errorf("StopPodSandbox: stop the pause process: %w", err)
	}
	return &runtimeapi.StopPodSandboxResponse{}, nil
}

// RemovePodSandbox removes the pod's containers and the sandbox, running
// or not; a sandbox that is gone is success.
func (s *Server) RemovePodSandbox(ctx context.Context, req *runtimeapi.RemovePodSandboxRequest) (*runtimeapi.RemovePodSandboxResponse, error) {
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemovePodSandboxResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	cs, err := s.podContainers(ctx, sb.ID)
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		if err := s.b.ContainerRemove(ctx, c.ID, true, true); err != nil && !errdefs.IsNotFound(err) {
			return nil, fmt.Errorf("RemovePodSandbox: remove container %s: %w", c.ID, err)
		}
	}
	if err := s.teardownPodNetwork(ctx, sb.ID, sandboxMetadata(sb.Config.Labels)); err != nil {
		return nil, fmt.Errorf("RemovePodSandbox: %w", err)
	}
	if err := s.b.ContainerRemove(ctx, sb.ID, true, true); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("RemovePodSandbox: %w", err)
	}
	return &runtimeapi.RemovePodSandboxResponse{}, nil
}

// PodSandboxStatus reports a sandbox; a missing one is NotFound.
func (s *Server) PodSandboxStatus(ctx context.Context, req *runtimeapi.PodSandboxStatusRequest) (*runtimeapi.PodSandboxStatusResponse, error) {
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, err
	}
	l := sb.Config.Labels
	var nsOpts runtimeapi.NamespaceOption
	json.Unmarshal([]byte(l[labelNamespaces]), &nsOpts)
	st := &runtimeapi.PodSandboxStatus{
		Id: sb.ID, Metadata: sandboxMetadata(l), State: sandboxState(sb.State != nil && sb.State.Running),
		CreatedAt: parseTime(sb.Created), Network: &runtimeapi.PodSandboxNetworkStatus{Ip: s.podIP(sb.ID)},
		Linux:  &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &nsOpts}},
		Labels: jsonMap(l[labelLabels]), Annotations: jsonMap(l[labelAnnotations]),
	}
	resp := &runtimeapi.PodSandboxStatusResponse{Status: st}
	if req.GetVerbose() {
		pid := 0
		if sb.State != nil {
			pid = sb.State.Pid
		}
		resp.Info = map[string]string{"pid": strconv.Itoa(pid)}
	}
	return resp, nil
}

// ListPodSandbox lists sandboxes by id (prefix), state and labels.
func (s *Server) ListPodSandbox(ctx context.Context, req *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	f := req.GetFilter()
	cs, err := s.b.ContainerList(ctx, engine.ListOptions{All: true, Filters: filters.Args{"label": {labelKind + "=" + kindSandbox}}})
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.PodSandbox{}
	for _, c := range cs {
		labels := jsonMap(c.Labels[labelLabels])
		state := sandboxState(c.State == container.StateRunning)
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.ID, f.Id) ||
				f.State != nil && f.State.State != state ||
				!matchSelector(f.LabelSelector, labels) {
				continue
			}
		}
		out = append(out, &runtimeapi.PodSandbox{
			Id: c.ID, Metadata: sandboxMetadata(c.Labels), State: state,
			CreatedAt: time.Unix(c.Created, 0).UnixNano(), Labels: labels,
			Annotations: jsonMap(c.Labels[labelAnnotations]),
		})
	}
	return &runtimeapi.ListPodSandboxResponse{Items: out}, nil
}

func sandboxState(running bool) runtimeapi.PodSandboxState {
	if running {
		return runtimeapi.PodSandboxState_SANDBOX_READY
	}
	return runtimeapi.PodSandboxState_SANDBOX_NOTREADY
}

// parseTime reads the engine's RFC 3339 times as CRI's nanoseconds; the
// zero time ("0001-01-01...") and garbage are 0.
func parseTime(s string) int64 {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Year() < 1970 {
		return 0
	}
	return t.UnixNano()
}
