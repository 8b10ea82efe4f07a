package engine

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/monitor"
)

// PauseRepo is the repository of the image the CRI makes for its pod
// sandboxes (package cri): skiff-init alone, never pulled.
const PauseRepo = "skiff.local/pause"

// isPauseImage: every tag of an image with tags is the pause image's.
func isPauseImage(tags []string) bool {
	for _, t := range tags {
		if !strings.HasPrefix(t, PauseRepo+":") {
			return false
		}
	}
	return len(tags) > 0
}

// createOptions are what front ends other than the Docker API set at create
// beyond a CreateRequest.
type createOptions struct {
	cri *CRIOptions
}

// CRIOptions make a container a Kubernetes pod container (package cri).
type CRIOptions struct {
	// LogPath: the container logs in the CRI log format to this file, the
	// one the kubelet reads ("": nowhere).
	LogPath string
	// Sandbox is the pod's sandbox container, whose UTS namespace (the
	// pod's hostname, Hostname) the container joins; the network and IPC
	// ones it joins through the container:<sandbox> modes.
	Sandbox, Hostname string
}

// apply records the options on the new container (create holds it alone).
// It runs after validation: a hostname beside a container: network mode is
// refused to Docker clients, but a pod container has its pod's.
func (o createOptions) apply(c *Container) {
	if o.cri == nil {
		return
	}
	if o.cri.LogPath != "" {
		c.CRILogPath, c.LogPath = o.cri.LogPath, o.cri.LogPath
		c.HostConfig.LogConfig = container.LogConfig{Type: logger.CRI}
	}
	if o.cri.Sandbox != "" {
		c.CRISandbox = o.cri.Sandbox
		c.Config.Hostname = o.cri.Hostname
	}
}

// ContainerCreateCRI is ContainerCreate for a Kubernetes pod container.
// Neither the CRI log driver nor joining a sandbox's UTS namespace is
// something a Docker API client can choose.
func (e *Engine) ContainerCreateCRI(ctx context.Context, name string, req *container.CreateRequest, opts CRIOptions) (container.CreateResponse, error) {
	if opts.LogPath != "" && !filepath.IsAbs(opts.LogPath) {
		return container.CreateResponse{}, errdefs.Invalid("log path %q is not absolute", opts.LogPath)
	}
	return e.containerCreate(ctx, name, req, createOptions{cri: &opts})
}

// criLogConfig is the monitor's log configuration of a pod container.
func criLogConfig(c *Container) *logger.Config {
	return &logger.Config{Driver: logger.CRI, File: &logger.FileConfig{Path: c.CRILogPath}}
}

// criSpec makes a pod container join its sandbox's UTS namespace, at
// start (the sandbox's pause process must run).
func (e *Engine) criSpec(c *Container, spec *specs.Spec) error {
	c.mu.Lock()
	sandbox := c.CRISandbox
	c.mu.Unlock()
	if sandbox == "" || spec.Linux == nil {
		return nil
	}
	sb, err := e.runningDonor(c, sandbox) // namespaces.go
	if err != nil {
		return errdefs.Conflict("failed to join the pod's UTS namespace: %v", err)
	}
	sb.mu.Lock()
	path := "/proc/" + strconv.Itoa(sb.State.Pid) + "/ns/uts"
	sb.mu.Unlock()
	for i := range spec.Linux.Namespaces {
		if spec.Linux.Namespaces[i].Type == specs.UTSNamespace {
			spec.Linux.Namespaces[i].Path = path
		}
	}
	return nil
}

// ContainerReopenLog makes a running pod container's monitor start a new
// CRI log file at its path, after the kubelet renamed the old one.
func (e *Engine) ContainerReopenLog(ctx context.Context, ref string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running, path := c.State.Running, c.CRILogPath
	c.mu.Unlock()
	if path == "" {
		return errdefs.Invalid("container %s does not log to a CRI log file", c.ID)
	}
	if !running {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	cl, err := monitor.Dial(e.bundleDir(c.ID))
	if err != nil {
		return errdefs.Conflict("container %s is not running", c.ID)
	}
	return cl.ReopenLog(ctx)
}
