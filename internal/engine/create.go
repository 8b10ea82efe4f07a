package engine

import (
	"context"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
	"github.com/skiff-dev/skiff/internal/image"
	"github.com/skiff-dev/skiff/internal/logger/logopts"
	"github.com/skiff-dev/skiff/internal/ocispec"
)

// ContainerCreate validates the request, resolves the image, prepares the
// writable layer and records the container. On any error nothing is left.
func (e *Engine) ContainerCreate(ctx context.Context, name string, req *container.CreateRequest) (resp container.CreateResponse, err error) {
	return e.containerCreate(ctx, name, req, createOptions{})
}

func (e *Engine) containerCreate(ctx context.Context, name string, req *container.CreateRequest, opts createOptions) (resp container.CreateResponse, err error) {
	if req == nil || req.Config == nil {
		return resp, errdefs.Invalid("config cannot be empty in order to create a container")
	}
	cfg := *req.Config
	hc := container.HostConfig{}
	if req.HostConfig != nil {
		hc = *req.HostConfig
	}
	name = strings.TrimPrefix(name, "/")
	if name != "" && !validName.MatchString(name) {
		return resp, errdefs.Invalid("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if cfg.Image == "" {
		return resp, errdefs.Invalid("no image specified")
	}
	e.mergeLogConfig(&hc) // daemon.json log-driver, log-opts (logconfig.go)
	warnings, err := validateHostConfig(&hc)
	if err != nil {
		return resp, err
	}
	if err := e.validateNamespaces(&cfg, &hc); err != nil { // namespaces.go
		return resp, err
	}
	devWarnings, err := validateDevices(&hc) // devices.go
	if err != nil {
		return resp, err
	}
	warnings = append(warnings, devWarnings...)
	if err := e.setCgroupnsMode(&hc); err != nil { // cgroupns.go
		return resp, err
	}
	more, err := validateCreateFields(&hc) // create_flags.go
	if err != nil {
		return resp, err
	}
	warnings = append(warnings, more...)
	cnet, err := e.validateNetworking(&hc, req.NetworkingConfig)
	if err != nil {
		return resp, err
	}
	img, err := e.images.Get(ctx, cfg.Image)
	if err != nil {
		return resp, err
	}
	if err := checkCreatePlatform(ctx, cfg.Image, img); err != nil { // create_flags.go
		return resp, err
	}
	mergeImageConfig(&cfg, img)
	if err := validateHealthcheck(cfg.Healthcheck); err != nil { // health.go
		return resp, err
	}
	if cfg.StopSignal != "" {
		if _, err := ParseSignal(cfg.StopSignal); err != nil {
			return resp, err
		}
	}
	if len(cfg.Entrypoint) == 0 && len(cfg.Cmd) == 0 {
		return resp, errdefs.Invalid("no command specified")
	}

	id := newID()
	if name == "" {
		for i := 0; ; i++ {
			name = randomName(i)
			if err := e.reg.reserve(name, id); err == nil {
				break
			}
		}
	} else if err := e.reg.reserve(name, id); err != nil {
		return resp, err
	}
	defer func() {
		if err != nil {
			e.reg.release(name)
		}
	}()
	if cfg.Hostname == "" {
		if hc.NetworkMode.IsHost() {
			cfg.Hostname, _ = os.Hostname()
		} else {
			cfg.Hostname = id[:12]
		}
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = "json-file"
	}
	if hc.NetworkMode == "" {
		hc.NetworkMode = "bridge"
	}

	c := &Container{
		ID: id, Name: name, Created: time.Now().UTC(), Config: &cfg, HostConfig: &hc,
		ImageID: img.ID, SnapshotKey: "container-" + id,
		State: State{Status: container.StateCreated}, Net: cnet,
	}
	c.Path, c.Args = splitCommand(&cfg)
	if hc.LogConfig.Type == "json-file" {
		c.LogPath = logopts.JSONFilePath(e.containerDir(id), id)
	}
	opts.apply(c) // cri.go

	dir := e.containerDir(id)
	if err := os.MkdirAll(dir, 0o710); err != nil {
		return resp, fmt.Errorf("create container dir: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	if _, err := e.snaps.Prepare(ctx, c.SnapshotKey, e.images.RootFSParent(img)); err != nil {
		return resp, fmt.Errorf("prepare root filesystem: %w", err)
	}
	defer func() {
		if err != nil {
			e.snaps.Remove(context.WithoutCancel(ctx), c.SnapshotKey)
		}
	}()
	if err := e.net.WriteEtcFiles(dir, &cfg, &hc); err != nil {
		return resp, err
	}
	if err := e.setupMounts(ctx, c); err != nil {
		return resp, err
	}
	faults.Point("create-before-record")
	c.mu.Lock()
	err = e.persist(c)
	c.mu.Unlock()
	if err != nil {
		return resp, err
	}
	e.reg.add(c)
	e.containerEvent(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

// splitCommand gives Docker's Path and Args fields.
func splitCommand(cfg *container.Config) (string, []string) {
	all := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(all) == 0 {
		return "", []string{}
	}
	return all[0], all[1:]
}

// mergeImageConfig fills what the user left unset from the image, as Docker
// does: env merged by key, Cmd only when the entrypoint is not overridden.
func mergeImageConfig(cfg *container.Config, img *image.Image) {
	ic := img.Config.Config
	if cfg.User == "" {
		cfg.User = ic.User
	}
	if cfg.WorkingDir == "" {
		cfg.WorkingDir = ic.WorkingDir
	}
	cfg.Env = mergeEnv(ic.Env, cfg.Env)
	if len(cfg.Entrypoint) == 0 && cfg.Entrypoint == nil {
		cfg.Entrypoint = ic.Entrypoint
		if len(cfg.Cmd) == 0 {
			cfg.Cmd = ic.Cmd
		}
	}
	if len(ic.ExposedPorts) > 0 {
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = network.PortSet{}
		}
		for p := range ic.ExposedPorts {
			if port, err := network.ParsePort(p); err == nil {
				if _, ok := cfg.ExposedPorts[port]; !ok {
					cfg.ExposedPorts[port] = struct{}{}
				}
			}
		}
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		cfg.Labels = labels
	}
	if cfg.StopSignal == "" {
		cfg.StopSignal = ic.StopSignal
	}
	if len(ic.Volumes) > 0 {
		// The image's volumes are added to the user's (Docker's merge).
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for v := range ic.Volumes {
			if !path.IsAbs(v) {
				// An image may say VOLUME data (Docker's builder lets
				// it): dockerd mounts it at /data.
				v = path.Join("/", v)
			}
			cfg.Volumes[v] = struct{}{}
		}
	}
	cfg.Healthcheck = mergeHealthcheck(cfg.Healthcheck, ic.Healthcheck) // health.go
	if len(cfg.Shell) == 0 {
		cfg.Shell = ic.Shell
	}
	if len(cfg.OnBuild) == 0 {
		cfg.OnBuild = ic.OnBuild
	}
}

func mergeEnv(base, over []string) []string {
	out := make([]string, 0, len(base)+len(over))
	idx := map[string]int{}
	for _, list := range [][]string{base, over} {
		for _, kv := range list {
			k, _, _ := strings.Cut(kv, "=")
			if i, ok := idx[k]; ok {
				out[i] = kv
				continue
			}
			idx[k] = len(out)
			out = append(out, kv)
		}
	}
	return out
}

const minMemory = 6 * 1024 * 1024

// validateHostConfig rejects what Docker rejects, with Docker's messages.
func validateHostConfig(hc *container.HostConfig) (warnings []string, err error) {
	r := &hc.Resources
	if r.Memory != 0 && r.Memory < minMemory {
		return nil, errdefs.Invalid("Minimum memory limit allowed is 6MB")
	}
	if r.Memory < 0 {
		return nil, errdefs.Invalid("invalid memory limit %d", r.Memory)
	}
	if r.MemorySwap > 0 && r.Memory == 0 {
		return nil, errdefs.Invalid("You should always set the Memory limit when using Memoryswap limit, see usage")
	}
	if r.MemorySwap > 0 && r.MemorySwap < r.Memory {
		return nil, errdefs.Invalid("Minimum memoryswap limit should be larger than memory limit, see usage")
	}
	if r.MemoryReservation < 0 || (r.Memory > 0 && r.MemoryReservation > r.Memory) {
		return nil, errdefs.Invalid("Minimum memory limit can not be less than memory reservation limit, see usage")
	}
	if r.MemorySwappiness != nil && (*r.MemorySwappiness < -1 || *r.MemorySwappiness > 100) {
		return nil, errdefs.Invalid("Invalid value: %d, valid memory swappiness range is 0-100", *r.MemorySwappiness)
	}
	ncpu := int64(runtime.NumCPU())
	if r.NanoCPUs < 0 || r.NanoCPUs > ncpu*1e9 {
		return nil, errdefs.Invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", ncpu, ncpu)
	}
	if r.NanoCPUs > 0 && (r.CPUQuota > 0 || r.CPUPeriod > 0) {
		return nil, errdefs.Invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.CPUPeriod != 0 && (r.CPUPeriod < 1000 || r.CPUPeriod > 1000000) {
		return nil, errdefs.Invalid("CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)")
	}
	if r.CPUQuota != 0 && r.CPUQuota < 1000 && r.CPUQuota > 0 {
		return nil, errdefs.Invalid("CPU cfs quota can not be less than 1ms (i.e. 1000)")
	}
	if r.CPUShares < 0 {
		return nil, errdefs.Invalid("invalid CPU shares %d", r.CPUShares)
	}
	if r.CpusetCpus != "" {
		if err := validateCPUSet(r.CpusetCpus, int(ncpu)); err != nil {
			return nil, err
		}
	}
	if r.CpusetMems != "" {
		if err := validateCPUSet(r.CpusetMems, 1<<10); err != nil {
			return nil, errdefs.Invalid("Invalid value %s for cpuset mems", r.CpusetMems)
		}
	}
	if r.OomKillDisable != nil && *r.OomKillDisable && r.Memory == 0 {
		warnings = append(warnings, "OOM killer is disabled for the container, but no memory limit is set, this can result in the system running out of resources.")
	}
	if hc.ShmSize < 0 {
		return nil, errdefs.Invalid("SHM size can not be less than 0")
	}
	switch m := string(hc.NetworkMode); {
	case m == "container:":
		return nil, errdefs.Invalid("invalid network mode: %s", m)
	default: // named networks are checked against the engine's (network.go)
	}
	if err := validateRestartPolicy(hc.RestartPolicy); err != nil {
		return nil, err
	}
	if hc.AutoRemove && hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != "no" {
		return nil, errdefs.Invalid("can't create 'AutoRemove' container with restart policy")
	}
	// A seccomp profile is parsed and compiled here, so a bad one fails
	// the create (with the capabilities the container will have).
	if caps, err := ocispec.Capabilities(hc.Privileged, hc.CapAdd, hc.CapDrop); err == nil {
		if _, _, err := ocispec.SeccompProfile(hc, caps); err != nil {
			return nil, err
		}
	}
	if err := logopts.Validate(hc.LogConfig.Type, hc.LogConfig.Config); err != nil {
		return nil, err
	}
	return warnings, nil
}

func validateRestartPolicy(p container.RestartPolicy) error {
	switch p.Name {
	case "", "no":
		if p.MaximumRetryCount != 0 {
			return errdefs.Invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case "always", "unless-stopped":
		if p.MaximumRetryCount != 0 {
			return errdefs.Invalid("invalid restart policy: maximum retry count can only be used with 'on-failure'")
		}
	case "on-failure":
		if p.MaximumRetryCount < 0 {
			return errdefs.Invalid("invalid restart policy: maximum retry count cannot be negative")
		}
	default:
		return errdefs.Invalid("invalid restart policy: unknown policy '%s'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'", p.Name)
	}
	return nil
}

// validateCPUSet accepts "0-2,4" style lists within [0, max).
func validateCPUSet(s string, max int) error {
	bad := errdefs.Invalid("Invalid value %s for cpuset cpus", s)
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		var a, b int
		if _, err := fmt.Sscanf(lo, "%d", &a); err != nil || fmt.Sprint(a) != lo {
			return bad
		}
		b = a
		if isRange {
			if _, err := fmt.Sscanf(hi, "%d", &b); err != nil || fmt.Sprint(b) != hi || b < a {
				return bad
			}
		}
		if a < 0 || b >= max {
			return errdefs.Invalid("Requested CPUs are not available - requested %s, available: 0-%d", s, max-1)
		}
	}
	return nil
}
