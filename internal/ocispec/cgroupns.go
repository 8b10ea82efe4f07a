package ocispec

import (
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// applyCgroupns gives the container a cgroup namespace of its own only in
// private mode (an empty mode, from a container recorded before the engine
// filled it in, keeps the private namespace skiff always gave), and makes
// the /sys/fs/cgroup mount writable for a privileged container or with
// --security-opt writable-cgroups, as dockerd 28 does (systemd as PID 1
// then manages its own cgroups).
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
	if w, _ := WritableCgroups(hc); !w {
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

// WritableCgroups reports whether the container's /sys/fs/cgroup is
// writable: --security-opt writable-cgroups[=BOOL] (the last one given),
// else whether it is privileged. ok is false for a value that is no
// boolean.
func WritableCgroups(hc *container.HostConfig) (writable, ok bool) {
	writable, ok = hc.Privileged, true
	for _, o := range hc.SecurityOpt {
		k, v, hasValue := strings.Cut(o, "=")
		if !hasValue {
			k, v, hasValue = strings.Cut(o, ":") // Docker's old separator
		}
		if k != "writable-cgroups" {
			continue
		}
		if !hasValue {
			writable = true
			continue
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, false
		}
		writable = b
	}
	return writable, ok
}
