package ocispec

import (
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func build(t *testing.T, cfg container.Config, hc container.HostConfig) *specs.Spec {
	t.Helper()
	s, err := Build(Input{ID: "x", Config: &cfg, HostConfig: &hc, RootPath: "/r", CgroupPath: "/skiff/x"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildResources(t *testing.T) {
	pids := int64(50)
	s := build(t, container.Config{Cmd: []string{"true"}}, container.HostConfig{Resources: container.Resources{
		Memory: 64 << 20, MemorySwap: 128 << 20, NanoCPUs: 200_000_000, CPUShares: 512, PidsLimit: &pids, CpusetCpus: "0",
	}})
	r := s.Linux.Resources
	if *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 128<<20 {
		t.Errorf("memory = %+v", r.Memory)
	}
	if *r.CPU.Quota != 20000 || *r.CPU.Period != 100000 || *r.CPU.Shares != 512 || r.CPU.Cpus != "0" {
		t.Errorf("cpu = %+v", r.CPU)
	}
	if *r.Pids.Limit != 50 {
		t.Errorf("pids = %+v", r.Pids)
	}
}

func TestBuildProcess(t *testing.T) {
	cases := []struct {
		name    string
		cfg     container.Config
		wantArg []string
		wantEnv string
	}{
		{"entrypoint+cmd", container.Config{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}}, []string{"/bin/sh", "-c", "echo hi"}, DefaultPath},
		{"image PATH kept", container.Config{Cmd: []string{"true"}, Env: []string{"PATH=/x"}}, []string{"true"}, "PATH=/x"},
	}
	for _, c := range cases {
		s := build(t, c.cfg, container.HostConfig{})
		if !slices.Equal(s.Process.Args, c.wantArg) {
			t.Errorf("%s: args = %q", c.name, s.Process.Args)
		}
		if !slices.Contains(s.Process.Env, c.wantEnv) {
			t.Errorf("%s: env = %q", c.name, s.Process.Env)
		}
	}
	if _, err := Build(Input{Config: &container.Config{}, HostConfig: &container.HostConfig{}}); err == nil {
		t.Error("no command accepted")
	}
}

func TestCapabilities(t *testing.T) {
	cases := []struct {
		add, drop []string
		has, not  []string
	}{
		{nil, nil, []string{"CAP_CHOWN", "CAP_KILL"}, []string{"CAP_SYS_ADMIN"}},
		{[]string{"net_admin"}, []string{"CHOWN"}, []string{"CAP_NET_ADMIN"}, []string{"CAP_CHOWN"}},
		{[]string{"KILL"}, []string{"ALL"}, []string{"CAP_KILL"}, []string{"CAP_CHOWN"}},
	}
	for _, c := range cases {
		got, err := capabilities(false, c.add, c.drop)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range c.has {
			if !slices.Contains(got, h) {
				t.Errorf("add %v drop %v: missing %s in %v", c.add, c.drop, h, got)
			}
		}
		for _, n := range c.not {
			if slices.Contains(got, n) {
				t.Errorf("add %v drop %v: unexpected %s", c.add, c.drop, n)
			}
		}
	}
	if _, err := capabilities(false, []string{"BOGUS"}, nil); err == nil {
		t.Error("unknown capability accepted")
	}
}
