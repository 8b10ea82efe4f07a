package engine

import (
	"os"
	"path/filepath"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// initPathInContainer is where Docker mounts its init (tini), so tools that
// look for it there find ours.
const initPathInContainer = "/sbin/docker-init"

// initBinary is skiff-init, next to skiff-shim (see cmd/skiff-init for why
// it is a binary of its own).
func (e *Engine) initBinary() string {
	return filepath.Join(filepath.Dir(e.cfg.ShimPath), "skiff-init")
}

// applyInit puts skiff-init in front of the program for `run --init`: bound
// read-only at /sbin/docker-init, as PID 1 with `-- PROGRAM ARGS`.
func (e *Engine) applyInit(spec *specs.Spec, hc *container.HostConfig) error {
	if hc.Init == nil || !*hc.Init || spec.Process == nil {
		return nil
	}
	bin := e.initBinary()
	if _, err := os.Stat(bin); err != nil {
		return errdefs.Unavailable("--init: the init binary is missing: %v", err)
	}
	spec.Mounts = append(spec.Mounts, specs.Mount{
		Destination: initPathInContainer, Type: "bind", Source: bin,
		Options: []string{"bind", "ro", "nosuid", "nodev"},
	})
	spec.Process.Args = append([]string{initPathInContainer, "--"}, spec.Process.Args...)
	return nil
}
