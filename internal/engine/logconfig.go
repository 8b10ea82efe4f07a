package engine

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/logger"
	"github.com/skiff-dev/skiff/internal/logger/logopts"
)

// mergeLogConfig fills the container's log driver and options from the
// daemon's defaults (daemon.json log-driver, log-opts), as dockerd does at
// create: inspect then shows what the container logs with.
func (e *Engine) mergeLogConfig(hc *container.HostConfig) {
	hc.LogConfig.Type, hc.LogConfig.Config = logopts.Merge(hc.LogConfig.Type, hc.LogConfig.Config, e.cfg.LogDriver, e.cfg.LogOpts)
}

// logConfig resolves the container's log driver for its monitor. A tag
// template or an option that cannot be applied fails the start with
// Docker's message.
func (e *Engine) logConfig(c *Container) (*logger.Config, error) {
	c.mu.Lock()
	if c.CRILogPath != "" {
		defer c.mu.Unlock()
		return criLogConfig(c), nil // cri.go
	}
	lc := c.HostConfig.LogConfig
	info := &logopts.Info{
		Config: lc.Config, ContainerID: c.ID, ContainerName: "/" + c.Name,
		ContainerEntrypoint: c.Path, ContainerArgs: c.Args,
		ContainerImageID: c.ImageID, ContainerImageName: c.Config.Image, ContainerCreated: c.Created,
		ContainerEnv: c.Config.Env, ContainerLabels: c.Config.Labels, LogPath: c.LogPath, DaemonName: "docker",
	}
	c.mu.Unlock()
	if info.Config == nil {
		info.Config = map[string]string{}
	}
	dir := e.containerDir(c.ID)
	cfg, err := logopts.Resolve(info, lc.Type, dir)
	if err != nil {
		return nil, fmt.Errorf("failed to initialize logging driver: %w", err)
	}
	if cfg.Driver == logger.Local {
		if err := os.MkdirAll(filepath.Dir(cfg.File.Path), 0o700); err != nil {
			return nil, fmt.Errorf("error creating local logs dir: %w", err)
		}
	}
	return cfg, nil
}

func (e *Engine) defaultLogDriver() string {
	if e.cfg.LogDriver == "" {
		return logger.JSONFile
	}
	return e.cfg.LogDriver
}

// logDriverPlugins lists the log drivers for /info's Plugins.Log, as
// dockerd does (none is not a driver there).
func logDriverPlugins() []string {
	var ds []string
	for _, d := range logopts.Drivers {
		if d != logger.None {
			ds = append(ds, d)
		}
	}
	return ds
}
