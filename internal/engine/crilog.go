package engine

import (
	"context"
	"path/filepath"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
)

// createOptions are what front ends other than the Docker API set at create
// beyond a CreateRequest.
type createOptions struct {
	// criLogPath: the container logs in the CRI format to this file.
	criLogPath string
}

// apply records the options on the new container (create holds it alone).
func (o createOptions) apply(c *Container) {
	if o.criLogPath != "" {
		c.CRILogPath, c.LogPath = o.criLogPath, o.criLogPath
		c.HostConfig.LogConfig = container.LogConfig{Type: logger.CRI}
	}
}

// ContainerCreateCRI is ContainerCreate for a Kubernetes pod container that
// logs in the CRI log format to logPath, the file the kubelet reads. The
// CRI log driver is not one a Docker API client can choose.
func (e *Engine) ContainerCreateCRI(ctx context.Context, name string, req *container.CreateRequest, logPath string) (container.CreateResponse, error) {
	if logPath != "" && !filepath.IsAbs(logPath) {
		return container.CreateResponse{}, errdefs.Invalid("log path %q is not absolute", logPath)
	}
	return e.containerCreate(ctx, name, req, createOptions{criLogPath: logPath})
}

// criLogConfig is the monitor's log configuration of a pod container.
func criLogConfig(c *Container) *logger.Config {
	return &logger.Config{Driver: logger.CRI, File: &logger.FileConfig{Path: c.CRILogPath}}
}
