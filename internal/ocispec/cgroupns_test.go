package ocispec

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCgroupnsAndCgroupMount(t *testing.T) {
	for _, c := range []struct {
		mode       container.CgroupnsMode
		privileged bool
		wantNS     bool
		wantRO     bool
		secOpts    []string
	}{
		{"", false, true, true, nil}, // recorded before the engine filled it in
		{"private", false, true, true, nil},
		{"host", false, false, true, nil},
		{"host", true, false, false, nil},
		{"private", true, true, false, nil},
		{"private", false, true, false, []string{"writable-cgroups"}},
		{"host", false, false, false, []string{"writable-cgroups=false", "writable-cgroups=true"}},
		{"private", true, true, true, []string{"writable-cgroups:false"}},
	} {
		cfg := container.Config{Image: "i", Cmd: []string{"sh"}}
		hc := container.HostConfig{CgroupnsMode: c.mode, Privileged: c.privileged, SecurityOpt: c.secOpts}
		s, err := Build(Input{ID: "x", Config: &cfg, HostConfig: &hc, RootPath: "/r", CgroupPath: "/skiff/x"})
		if err != nil {
			t.Fatal(err)
		}
		hasNS := slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace })
		if hasNS != c.wantNS {
			t.Errorf("%q privileged=%v: cgroup namespace %v, want %v", c.mode, c.privileged, hasNS, c.wantNS)
		}
		i := slices.IndexFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys/fs/cgroup" })
		if i < 0 || s.Mounts[i].Type != "cgroup" {
			t.Fatalf("no cgroup mount: %v", s.Mounts)
		}
		if ro := slices.Contains(s.Mounts[i].Options, "ro"); ro != c.wantRO {
			t.Errorf("%q privileged=%v %v: cgroup mount options %v, want ro=%v", c.mode, c.privileged, c.secOpts, s.Mounts[i].Options, c.wantRO)
		}
	}
}
