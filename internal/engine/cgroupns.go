package engine

import (
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/ocispec"
)

// ValidateCgroupnsMode checks daemon.json's default-cgroupns-mode, with
// dockerd's message.
func ValidateCgroupnsMode(mode string) error {
	if m := container.CgroupnsMode(mode); mode != "" && (m.IsEmpty() || !m.Valid()) {
		return errdefs.Invalid(`invalid default cgroup namespace (%v): use "host" or "private"`, mode)
	}
	return nil
}

// defaultCgroupnsMode is the mode a container gets when it names none, as
// dockerd decides it: the daemon's default-cgroupns-mode, else private on a
// cgroup v2 host and host on v1 (where a container's own v1 directories are
// bound in and /proc/self/cgroup shows the host's paths); a privileged
// container on v1 always gets the host's.
func (e *Engine) defaultCgroupnsMode(privileged bool) container.CgroupnsMode {
	unified, _ := cgroups.IsUnified()
	switch {
	case privileged && !unified:
		return container.CgroupnsModeHost
	case e.cfg.DefaultCgroupnsMode != "":
		return container.CgroupnsMode(e.cfg.DefaultCgroupnsMode)
	case unified:
		return container.CgroupnsModePrivate
	}
	return container.CgroupnsModeHost
}

// setCgroupnsMode validates hc.CgroupnsMode and fills in the default, so
// inspect shows the mode the container runs with. It also checks
// --security-opt writable-cgroups, with dockerd's message.
func (e *Engine) setCgroupnsMode(hc *container.HostConfig) error {
	if _, ok := ocispec.WritableCgroups(hc); !ok {
		for _, o := range hc.SecurityOpt {
			if strings.HasPrefix(o, "writable-cgroups=") || strings.HasPrefix(o, "writable-cgroups:") {
				if _, ok := ocispec.WritableCgroups(&container.HostConfig{SecurityOpt: []string{o}}); !ok {
					return errdefs.Invalid("invalid --security-opt 2: %q", o)
				}
			}
		}
	}
	if hc.CgroupnsMode.IsEmpty() {
		hc.CgroupnsMode = e.defaultCgroupnsMode(hc.Privileged)
		return nil
	}
	if !hc.CgroupnsMode.Valid() {
		return errdefs.Invalid("invalid cgroup namespace mode: %v", hc.CgroupnsMode)
	}
	return nil
}

// securityOptions are /info's SecurityOptions: "name=cgroupns" when
// containers get a private cgroup namespace by default, as dockerd says.
func (e *Engine) securityOptions() []string {
	opts := []string{"name=seccomp,profile=builtin"}
	if e.defaultCgroupnsMode(false).IsPrivate() {
		opts = append(opts, "name=cgroupns")
	}
	return opts
}
