package ocispec

import (
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// writableCgroups is --security-opt writable-cgroups[=true]: the cgroup
// filesystem is mounted read-write (Docker 28), so a container can manage
// cgroups below its own.
func writableCgroups(opts []string) bool {
	for _, o := range opts {
		if o == "writable-cgroups" {
			return true
		}
		if v, ok := strings.CutPrefix(o, "writable-cgroups="); ok {
			b, _ := strconv.ParseBool(v)
			return b
		}
	}
	return false
}

// applySecurityOpts changes the spec for the security options that are not
// seccomp's or no-new-privileges'.
func applySecurityOpts(s *specs.Spec, hc *container.HostConfig) {
	if !writableCgroups(hc.SecurityOpt) {
		return
	}
	for i := range s.Mounts {
		if s.Mounts[i].Destination == "/sys/fs/cgroup" {
			s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(s.Mounts[i].Options), func(o string) bool { return o == "ro" })
		}
	}
}
