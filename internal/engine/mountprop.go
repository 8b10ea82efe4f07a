package engine

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// rootfsPropagation makes the container's root as shared as its bind
// mounts need, as dockerd and containerd do: the runtime makes the root
// rslave by default, and a mount below a slave root receives the host's
// mounts but cannot send its own back, so an rshared mount (a Kubernetes
// Bidirectional volume) needs a shared root. rslave (HostToContainer) is
// served by the default.
func rootfsPropagation(spec *specs.Spec) {
	if spec.Linux == nil {
		return
	}
	for _, m := range spec.Mounts {
		if slices.Contains(m.Options, "rshared") || slices.Contains(m.Options, "shared") {
			spec.Linux.RootfsPropagation = "rshared"
			return
		}
	}
}
