package ocispec

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/mount"
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

func TestBuildNamespaceModes(t *testing.T) {
	cmd := container.Config{Cmd: []string{"true"}, Hostname: "h", Domainname: "ex.org"}
	ns := func(s *specs.Spec) map[specs.LinuxNamespaceType]string {
		out := map[specs.LinuxNamespaceType]string{}
		for _, n := range s.Linux.Namespaces {
			out[n.Type] = n.Path
		}
		return out
	}
	shm := func(s *specs.Spec) string {
		for _, m := range s.Mounts {
			if m.Destination == "/dev/shm" {
				return m.Type + ":" + m.Source
			}
		}
		return "none"
	}
	joined := map[specs.LinuxNamespaceType]string{specs.PIDNamespace: "/proc/7/ns/pid", specs.IPCNamespace: "/proc/7/ns/ipc"}
	cases := []struct {
		name    string
		hc      container.HostConfig
		in      Input
		absent  []specs.LinuxNamespaceType
		paths   map[specs.LinuxNamespaceType]string
		shm     string
		noHost  bool // no hostname and domainname in the spec
		wantErr bool
	}{
		{name: "default", shm: "tmpfs:shm"},
		{name: "pid host", hc: container.HostConfig{PidMode: "host"}, absent: []specs.LinuxNamespaceType{specs.PIDNamespace}, shm: "tmpfs:shm"},
		{name: "ipc host", hc: container.HostConfig{IpcMode: "host"}, in: Input{ShmPath: "/dev/shm"}, absent: []specs.LinuxNamespaceType{specs.IPCNamespace}, shm: "bind:/dev/shm"},
		{name: "uts host", hc: container.HostConfig{UTSMode: "host"}, absent: []specs.LinuxNamespaceType{specs.UTSNamespace}, shm: "tmpfs:shm", noHost: true},
		{name: "ipc none", hc: container.HostConfig{IpcMode: "none"}, shm: "none"},
		{name: "ipc shareable", hc: container.HostConfig{IpcMode: "shareable"}, in: Input{ShmPath: "/d/shm"}, shm: "bind:/d/shm"},
		{name: "containers", hc: container.HostConfig{PidMode: "container:x", IpcMode: "container:x"}, in: Input{NamespacePaths: joined, ShmPath: "/d/shm"}, paths: joined, shm: "bind:/d/shm"},
		// Without its path a namespace to join would be the host's.
		{name: "unresolved pid container", hc: container.HostConfig{PidMode: "container:x"}, wantErr: true},
		{name: "unresolved ipc container", hc: container.HostConfig{IpcMode: "container:x"}, wantErr: true},
	}
	for _, c := range cases {
		in := c.in
		in.ID, in.Config, in.HostConfig, in.RootPath = "x", &cmd, &c.hc, "/r"
		s, err := Build(in)
		if c.wantErr {
			if err == nil {
				t.Errorf("%s: built", c.name)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		got := ns(s)
		for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.NetworkNamespace} {
			_, present := got[typ]
			if present == slices.Contains(c.absent, typ) {
				t.Errorf("%s: namespace %s present=%v", c.name, typ, present)
			}
			if got[typ] != c.paths[typ] {
				t.Errorf("%s: namespace %s path %q, want %q", c.name, typ, got[typ], c.paths[typ])
			}
		}
		if shm(s) != c.shm {
			t.Errorf("%s: /dev/shm %s, want %s", c.name, shm(s), c.shm)
		}
		if (s.Hostname == "" && s.Domainname == "") != c.noHost || (!c.noHost && s.Domainname != "ex.org") {
			t.Errorf("%s: hostname %q domainname %q", c.name, s.Hostname, s.Domainname)
		}
	}
}

func TestBuildPathsAndGroups(t *testing.T) {
	cmd := container.Config{Cmd: []string{"true"}}
	if s := build(t, cmd, container.HostConfig{}); len(s.Linux.MaskedPaths) == 0 || len(s.Linux.ReadonlyPaths) == 0 {
		t.Errorf("default masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s := build(t, cmd, container.HostConfig{Privileged: true}); len(s.Linux.MaskedPaths)+len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	// systempaths=unconfined: the CLIs send empty lists.
	if s := build(t, cmd, container.HostConfig{MaskedPaths: []string{}, ReadonlyPaths: []string{}}); len(s.Linux.MaskedPaths)+len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("unconfined masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if s := build(t, cmd, container.HostConfig{MaskedPaths: []string{"/proc/x"}}); !slices.Equal(s.Linux.MaskedPaths, []string{"/proc/x"}) {
		t.Errorf("own masked paths %v", s.Linux.MaskedPaths)
	}
	if s := build(t, cmd, container.HostConfig{GroupAdd: []string{"staff", "123"}}); s.Annotations[AnnotationGroups] != "staff\n123" {
		t.Errorf("groups annotation %q", s.Annotations[AnnotationGroups])
	}
}

func TestBuildDefaultSysctls(t *testing.T) {
	cmd := container.Config{Cmd: []string{"true"}}
	s := build(t, cmd, container.HostConfig{NetworkMode: "bridge", Sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1"}})
	want := map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "1024", "kernel.shmmax": "1"}
	if len(s.Linux.Sysctl) != len(want) {
		t.Errorf("sysctls %v, want %v", s.Linux.Sysctl, want)
	}
	for k, v := range want {
		if s.Linux.Sysctl[k] != v {
			t.Errorf("sysctl %s = %q, want %q", k, s.Linux.Sysctl[k], v)
		}
	}
	for _, mode := range []container.NetworkMode{"host", "container:x"} {
		if s := build(t, cmd, container.HostConfig{NetworkMode: mode}); len(s.Linux.Sysctl) != 0 {
			t.Errorf("%s: sysctls %v", mode, s.Linux.Sysctl)
		}
	}
}

// The root file system's mounts reach the runtime as they left the
// snapshotter, typed; no mounts, no annotation.
func TestBuildRootMounts(t *testing.T) {
	cfg, hc := container.Config{Cmd: []string{"sh"}}, container.HostConfig{}
	if s := build(t, cfg, hc); s.Annotations[AnnotationRootfsMounts] != "" {
		t.Fatalf("annotation without root mounts: %q", s.Annotations[AnnotationRootfsMounts])
	}
	want := []mount.Mount{mount.Overlay([]string{"/l2", "/l1"}, "/u", "/w", "volatile")}
	s, err := Build(Input{ID: "x", Config: &cfg, HostConfig: &hc, RootPath: "/r", RootMounts: want})
	if err != nil {
		t.Fatal(err)
	}
	var got []mount.Mount
	if err := json.Unmarshal([]byte(s.Annotations[AnnotationRootfsMounts]), &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("root mounts %+v, want %+v", got, want)
	}
}
