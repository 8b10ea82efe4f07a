package cri

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

// CreateContainer creates a container of a pod: an engine container that
// joins the sandbox's network and IPC namespaces (and PID, when the pod
// shares one).
func (s *Server) CreateContainer(ctx context.Context, req *runtimeapi.CreateContainerRequest) (*runtimeapi.CreateContainerResponse, error) {
	cfg := req.GetConfig()
	md := cfg.GetMetadata()
	if md.GetName() == "" {
		return nil, errdefs.Invalid("CreateContainer: metadata needs a name")
	}
	if err := refuseImageVolumes(cfg); err != nil { // images.go
		return nil, err
	}
	sb, err := s.sandbox(ctx, req.GetPodSandboxId())
	if err != nil {
		return nil, fmt.Errorf("CreateContainer: %w", err)
	}
	ref := cfg.GetImage().GetImage()
	img, err := s.b.ImageInspect(ctx, ref)
	if err != nil {
		return nil, fmt.Errorf("CreateContainer: image %q: %w", ref, err)
	}
	sbl := sb.Config.Labels
	// The kubelet names the log file relative to the pod's log directory;
	// without a path the container logs nowhere (as under containerd).
	logPath := ""
	if p := cfg.GetLogPath(); p != "" {
		if sbl[labelLogDir] == "" {
			return nil, errdefs.Invalid("CreateContainer: log path %q given, but the pod sandbox has no log directory", p)
		}
		logPath = filepath.Join(sbl[labelLogDir], p)
	}
	labels := criLabels(kindContainer, cfg.GetLabels(), cfg.GetAnnotations())
	labels[labelSandbox], labels[labelName] = sb.ID, md.Name
	labels[labelAttempt] = strconv.FormatUint(uint64(md.Attempt), 10)
	labels[labelImage] = ref
	labels[labelLogPath] = logPath
	if ms := cfg.GetMounts(); len(ms) > 0 {
		b, err := json.Marshal(ms)
		if err != nil {
			return nil, fmt.Errorf("CreateContainer: mounts: %w", err)
		}
		labels[labelMounts] = string(b)
	}

	c := &container.Config{
		Image: img.ID, Entrypoint: cfg.GetCommand(), Cmd: cfg.GetArgs(), WorkingDir: cfg.GetWorkingDir(),
		Labels: labels, Tty: cfg.GetTty(), OpenStdin: cfg.GetStdin(), StdinOnce: cfg.GetStdinOnce(),
	}
	for _, kv := range cfg.GetEnvs() {
		c.Env = append(c.Env, kv.Key+"="+string(kv.Value))
	}
	linux := cfg.GetLinux()
	sc := linux.GetSecurityContext()
	switch {
	case sc.GetRunAsUser() != nil:
		c.User = strconv.FormatInt(sc.GetRunAsUser().GetValue(), 10)
		if g := sc.GetRunAsGroup(); g != nil {
			c.User += ":" + strconv.FormatInt(g.GetValue(), 10)
		}
	case sc.GetRunAsUsername() != "":
		c.User = sc.GetRunAsUsername()
	}
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode("container:" + sb.ID),
		IpcMode:        container.IpcMode("container:" + sb.ID),
		Privileged:     sc.GetPrivileged(),
		ReadonlyRootfs: sc.GetReadonlyRootfs(),
		CapAdd:         sc.GetCapabilities().GetAddCapabilities(),
		CapDrop:        sc.GetCapabilities().GetDropCapabilities(),
		LogConfig:      container.LogConfig{Type: "none"},
	}
	hc.CgroupParent = sb.HostConfig.CgroupParent
	if sb.HostConfig.IpcMode.IsHost() {
		hc.IpcMode = "host"
	}
	switch sc.GetNamespaceOptions().GetPid() {
	case runtimeapi.NamespaceMode_POD:
		hc.PidMode = container.PidMode("container:" + sb.ID)
	case runtimeapi.NamespaceMode_NODE:
		hc.PidMode = "host"
	}
	for _, g := range sc.GetSupplementalGroups() {
		hc.GroupAdd = append(hc.GroupAdd, strconv.FormatInt(g, 10))
	}
	if sc.GetRunAsGroup() != nil && sc.GetRunAsUser() == nil && sc.GetRunAsUsername() == "" {
		return nil, errdefs.Invalid("CreateContainer: run_as_group needs run_as_user or run_as_username")
	}
	if !sc.GetPrivileged() {
		opt, err := seccompOpt(sc.GetSeccomp(), sc.GetSeccompProfilePath())
		if err != nil {
			return nil, fmt.Errorf("CreateContainer %s: %w", md.Name, err)
		}
		if opt != "" {
			hc.SecurityOpt = append(hc.SecurityOpt, opt)
		}
	}
	if err := checkAppArmor(sc.GetApparmor(), sc.GetApparmorProfile()); err != nil {
		return nil, fmt.Errorf("CreateContainer %s: %w", md.Name, err)
	}
	// The kubelet sends the masked and read-only path lists it wants (the
	// runtime's defaults unless the pod's procMount is Unmasked, then
	// none); a request without them keeps the engine's defaults, as under
	// containerd (protobuf cannot tell an empty list from none).
	// A privileged container has none.
	if p := sc.GetMaskedPaths(); len(p) > 0 && !sc.GetPrivileged() {
		hc.MaskedPaths = p
	}
	if p := sc.GetReadonlyPaths(); len(p) > 0 && !sc.GetPrivileged() {
		hc.ReadonlyPaths = p
	}
	if sc.GetNoNewPrivs() {
		hc.SecurityOpt = append(hc.SecurityOpt, "no-new-privileges")
	}
	for _, m := range cfg.GetMounts() {
		if err := checkPropagation(m); err != nil { // mountprop.go
			return nil, fmt.Errorf("CreateContainer %s: %w", md.Name, err)
		}
		bm := mount.Mount{Type: mount.TypeBind, Source: m.HostPath, Target: m.ContainerPath, ReadOnly: m.Readonly,
			BindOptions: &mount.BindOptions{}}
		switch m.Propagation {
		case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
			bm.BindOptions.Propagation = mount.PropagationRSlave
		case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
			bm.BindOptions.Propagation = mount.PropagationRShared
		default:
			bm.BindOptions.Propagation = mount.PropagationRPrivate
		}
		hc.Mounts = append(hc.Mounts, bm)
	}
	// The pod's /etc files are the sandbox's (its DNS config and hostname),
	// as under containerd, unless the request mounts its own (the kubelet
	// does /etc/hosts).
	for dst, src := range map[string]string{"/etc/resolv.conf": sb.ResolvConfPath, "/etc/hosts": sb.HostsPath, "/etc/hostname": sb.HostnamePath} {
		if src == "" || slices.ContainsFunc(hc.Mounts, func(m mount.Mount) bool { return m.Target == dst }) {
			continue
		}
		hc.Mounts = append(hc.Mounts, mount.Mount{Type: mount.TypeBind, Source: src, Target: dst, ReadOnly: sc.GetReadonlyRootfs()})
	}
	for _, d := range cfg.GetDevices() {
		perms := d.Permissions
		if perms == "" {
			perms = "rwm"
		}
		hc.Devices = append(hc.Devices, container.DeviceMapping{PathOnHost: d.HostPath, PathInContainer: d.ContainerPath, CgroupPermissions: perms})
	}
	if r := linux.GetResources(); r != nil {
		hc.CPUShares, hc.CPUQuota, hc.CPUPeriod = r.CpuShares, r.CpuQuota, r.CpuPeriod
		hc.Memory, hc.CpusetCpus, hc.CpusetMems = r.MemoryLimitInBytes, r.CpusetCpus, r.CpusetMems
		if r.OomScoreAdj != 0 {
			hc.OomScoreAdj = clampOOMScoreAdj(int(r.OomScoreAdj))
		}
	}
	name := fmt.Sprintf("k8s_%s_%s_%s_%s_%d", md.Name, sbl[labelName], sbl[labelNamespace], sbl[labelUID], md.Attempt)
	opts := engine.CRIOptions{LogPath: logPath}
	if sb.HostConfig.UTSMode.IsHost() {
		hc.UTSMode = "host" // a host-network pod has the node's hostname
	} else {
		opts.Sandbox, opts.Hostname = sb.ID, sb.Config.Hostname
	}
	created, err := s.b.ContainerCreateCRI(ctx, name, &container.CreateRequest{Config: c, HostConfig: hc}, opts)
	if err != nil {
		return nil, fmt.Errorf("CreateContainer %s: %w", md.Name, err)
	}
	return &runtimeapi.CreateContainerResponse{ContainerId: created.ID}, nil
}

// podContainer inspects the engine container behind a CRI container id;
// sandboxes and Docker's containers are NotFound here.
func (s *Server) podContainer(ctx context.Context, id string) (*container.InspectResponse, error) {
	if id == "" {
		return nil, errdefs.Invalid("no container id given")
	}
	c, err := s.b.ContainerInspect(ctx, id, false)
	if err == nil && c.Config.Labels[labelKind] != kindContainer {
		err = errdefs.NotFound("container %s not found", id)
	}
	return c, err
}

func (s *Server) StartContainer(ctx context.Context, req *runtimeapi.StartContainerRequest) (*runtimeapi.StartContainerResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.b.ContainerStart(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("StartContainer: %w", err)
	}
	return &runtimeapi.StartContainerResponse{}, nil
}

// StopContainer sends SIGTERM (or the image's stop signal), waits timeout
// seconds, then kills. Stopping a stopped or missing container succeeds.
func (s *Server) StopContainer(ctx context.Context, req *runtimeapi.StopContainerRequest) (*runtimeapi.StopContainerResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.StopContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	timeout := int(max(req.GetTimeout(), 0))
	if err := s.stopEngine(ctx, c.ID, timeout); err != nil {
		return nil, fmt.Errorf("StopContainer: %w", err)
	}
	return &runtimeapi.StopContainerResponse{}, nil
}

// stopEngine stops an engine container; one that is not running (never
// started, exited, gone) is stopped. A container that exits while it is
// being stopped can fail the stop with a conflict (its monitor went away
// before the engine recorded the exit): it is stopped once the engine says
// it no longer runs.
func (s *Server) stopEngine(ctx context.Context, id string, timeout int) error {
	err := s.b.ContainerStop(ctx, id, &timeout, "")
	if err == nil || errdefs.IsNotFound(err) || errdefs.IsNotModified(err) {
		return nil
	}
	if !errdefs.IsConflict(err) {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		c, ierr := s.b.ContainerInspect(ctx, id, false)
		if errdefs.IsNotFound(ierr) || ierr == nil && (c.State == nil || !c.State.Running) {
			return nil
		}
	}
	return err
}

// RemoveContainer removes a container, running or not; a missing one is
// success.
func (s *Server) RemoveContainer(ctx context.Context, req *runtimeapi.RemoveContainerRequest) (*runtimeapi.RemoveContainerResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveContainerResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	if err := s.b.ContainerRemove(ctx, c.ID, true, true); err != nil && !errdefs.IsNotFound(err) {
		return nil, fmt.Errorf("RemoveContainer: %w", err)
	}
	return &runtimeapi.RemoveContainerResponse{}, nil
}

func containerState(st container.ContainerState) runtimeapi.ContainerState {
	switch st {
	case container.StateCreated:
		return runtimeapi.ContainerState_CONTAINER_CREATED
	case container.StateRunning, container.StatePaused, container.StateRestarting:
		return runtimeapi.ContainerState_CONTAINER_RUNNING
	case container.StateExited, container.StateDead:
		return runtimeapi.ContainerState_CONTAINER_EXITED
	}
	return runtimeapi.ContainerState_CONTAINER_UNKNOWN
}

// ListContainers lists pod containers by id (prefix), state, sandbox and
// labels.
func (s *Server) ListContainers(ctx context.Context, req *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	f := req.GetFilter()
	args := filters.Args{"label": {labelKind + "=" + kindContainer}}
	if f.GetPodSandboxId() != "" {
		sb, err := s.sandbox(ctx, f.PodSandboxId)
		if errdefs.IsNotFound(err) {
			return &runtimeapi.ListContainersResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		args["label"] = append(args["label"], labelSandbox+"="+sb.ID)
	}
	cs, err := s.b.ContainerList(ctx, engine.ListOptions{All: true, Filters: args})
	if err != nil {
		return nil, err
	}
	out := []*runtimeapi.Container{}
	for _, c := range cs {
		labels := jsonMap(c.Labels[labelLabels])
		state := containerState(c.State)
		if f != nil {
			if f.Id != "" && !strings.HasPrefix(c.ID, f.Id) ||
				f.State != nil && f.State.State != state ||
				!matchSelector(f.LabelSelector, labels) {
				continue
			}
		}
		out = append(out, &runtimeapi.Container{
			Id: c.ID, PodSandboxId: c.Labels[labelSandbox], Metadata: containerMetadata(c.Labels),
			Image: &runtimeapi.ImageSpec{Image: c.Labels[labelImage]}, ImageRef: c.ImageID, ImageId: c.ImageID,
			State: state, CreatedAt: time.Unix(c.Created, 0).UnixNano(),
			Labels: labels, Annotations: jsonMap(c.Labels[labelAnnotations]),
		})
	}
	return &runtimeapi.ListContainersResponse{Containers: out}, nil
}

// ContainerStatus reports a container; a missing one is NotFound.
func (s *Server) ContainerStatus(ctx context.Context, req *runtimeapi.ContainerStatusRequest) (*runtimeapi.ContainerStatusResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	l := c.Config.Labels
	st := &runtimeapi.ContainerStatus{
		Id: c.ID, Metadata: containerMetadata(l), CreatedAt: parseTime(c.Created),
		Image: &runtimeapi.ImageSpec{Image: l[labelImage]}, ImageRef: c.Image, ImageId: c.Image,
		Labels: jsonMap(l[labelLabels]), Annotations: jsonMap(l[labelAnnotations]),
		State: runtimeapi.ContainerState_CONTAINER_UNKNOWN, User: &runtimeapi.ContainerUser{},
		LogPath: l[labelLogPath],
	}
	if c.State != nil {
		st.State = containerState(c.State.Status)
		st.StartedAt, st.FinishedAt = parseTime(c.State.StartedAt), parseTime(c.State.FinishedAt)
		if st.State == runtimeapi.ContainerState_CONTAINER_EXITED {
			st.ExitCode = int32(c.State.ExitCode)
			switch {
			case c.State.OOMKilled:
				st.Reason = "OOMKilled"
			case c.State.ExitCode == 0:
				st.Reason = "Completed"
			default:
				st.Reason = "Error"
			}
			st.Message = c.State.Error
		}
	}
	// The request's mounts, as containerd reports them: not the pod's
	// /etc files skiff binds in.
	if v := l[labelMounts]; v != "" {
		if err := json.Unmarshal([]byte(v), &st.Mounts); err != nil {
			return nil, errdefs.System("ContainerStatus: mounts label: %v", err)
		}
	}
	return &runtimeapi.ContainerStatusResponse{Status: st}, nil
}

// ExecSync runs cmd in the container and returns its output and exit code;
// past the timeout (seconds, 0: none) it answers DeadlineExceeded.
func (s *Server) ExecSync(ctx context.Context, req *runtimeapi.ExecSyncRequest) (*runtimeapi.ExecSyncResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if len(req.GetCmd()) == 0 {
		return nil, errdefs.Invalid("ExecSync: no command given")
	}
	id, err := s.b.ExecCreate(ctx, c.ID, &container.ExecCreateRequest{Cmd: req.Cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return nil, fmt.Errorf("ExecSync: %w", err)
	}
	if t := req.GetTimeout(); t > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(t)*time.Second)
		defer cancel()
	}
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- s.b.ExecStart(ctx, id, engine.ExecStartOptions{Stdout: &stdout, Stderr: &stderr}) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if ctx.Err() != nil {
		// The command must not outlive its deadline (as under containerd).
		s.stopTimedOutExec(id) // execsync.go
		return nil, fmt.Errorf("ExecSync %v: timed out after %ds: %w", req.Cmd, req.GetTimeout(), context.DeadlineExceeded)
	}
	if err != nil {
		return nil, fmt.Errorf("ExecSync: %w", err)
	}
	ins, err := s.b.ExecInspect(context.WithoutCancel(ctx), id)
	if err != nil {
		return nil, fmt.Errorf("ExecSync: %w", err)
	}
	code := -1
	if ins.ExitCode != nil {
		code = *ins.ExitCode
	}
	return &runtimeapi.ExecSyncResponse{Stdout: stdout.Bytes(), Stderr: stderr.Bytes(), ExitCode: int32(code)}, nil
}

// lockedBuffer is an output the exec writes while ExecSync may read it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// ReopenContainerLog: the kubelet renamed the container's log file to
// rotate it; the monitor starts a new one at the path.
func (s *Server) ReopenContainerLog(ctx context.Context, req *runtimeapi.ReopenContainerLogRequest) (*runtimeapi.ReopenContainerLogResponse, error) {
	c, err := s.podContainer(ctx, req.GetContainerId())
	if err != nil {
		return nil, err
	}
	if err := s.b.ContainerReopenLog(ctx, c.ID); err != nil {
		return nil, fmt.Errorf("ReopenContainerLog: %w", err)
	}
	return &runtimeapi.ReopenContainerLogResponse{}, nil
}

// killTree SIGKILLs pid's children (host pids, from procfs), then pid.
func killTree(pid int) {
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if child, err := strconv.Atoi(f); err == nil {
				killTree(child)
			}
		}
	}
	unix.Kill(pid, unix.SIGKILL)
}

// clampOOMScoreAdj raises an oom_score_adj below the engine's own to it:
// lowering it needs CAP_SYS_RESOURCE, which root in a container or a user
// namespace may lack (containerd's restrict_oom_score_adj); the kubelet
// asks for -997 for critical pods.
func clampOOMScoreAdj(v int) int {
	b, err := os.ReadFile("/proc/self/oom_score_adj")
	if err != nil {
		return v
	}
	own, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || v >= own {
		return v
	}
	return own
}
