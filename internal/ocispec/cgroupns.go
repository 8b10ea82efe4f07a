package ocispec

import (
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// applyCgroupns gives the container a cgroup namespace of its own only in
// private mode (an empty mode, from a container recorded before the engine
// filled it in, keeps the private namespace skiff always gave), and makes
// the /sys/fs/cgroup mount writable for a privileged container, as dockerd
// does (systemd as PID 1 then manages its own cgroups).
func applyCgroupns(s *specs.Spec, hc *container.HostConfig) {
	if !hc.CgroupnsMode.IsEmpty() && !hc.CgroupnsMode.IsPrivate() {
		ns := s.Linux.Namespaces[:0]
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	}
	if !hc.Privileged {
		return
	}
	for i, m := range s.Mounts {
		if m.Type != "cgroup" {
			continue
		}
		opts := make([]string, 0, len(m.Options))
		for _, o := range m.Options {
			if o != "ro" {
				opts = append(opts, o)
			}
		}
		s.Mounts[i].Options = opts
	}
}
