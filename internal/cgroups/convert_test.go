package cgroups

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func ptr[T any](v T) *T { return &v }

func TestSharesToWeight(t *testing.T) {
	for _, tt := range []struct{ shares, weight uint64 }{
		{0, 0}, {1, 1}, {2, 1}, {1024, 39}, {512, 20}, {262144, 10000}, {1 << 20, 10000},
	} {
		if got := sharesToWeight(tt.shares); got != tt.weight {
			t.Errorf("sharesToWeight(%d) = %d, want %d", tt.shares, got, tt.weight)
		}
	}
}

func TestBlkioToIOWeight(t *testing.T) {
	for _, tt := range []struct {
		blkio uint16
		io    uint64
	}{{10, 1}, {5, 1}, {500, 4950}, {1000, 10000}, {2000, 10000}} {
		if got := blkioToIOWeight(tt.blkio); got != tt.io {
			t.Errorf("blkioToIOWeight(%d) = %d, want %d", tt.blkio, got, tt.io)
		}
	}
}

func TestSwapV2(t *testing.T) {
	for _, tt := range []struct {
		name      string
		swap, mem *int64
		want      string
		wantErr   bool
	}{
		{name: "unset", want: ""},
		{name: "zero", swap: ptr(int64(0)), want: ""},
		{name: "unlimited", swap: ptr(int64(-1)), want: "max"},
		{name: "swap part", swap: ptr(int64(300)), mem: ptr(int64(100)), want: "200"},
		{name: "no swap", swap: ptr(int64(100)), mem: ptr(int64(100)), want: "0"},
		{name: "below memory", swap: ptr(int64(50)), mem: ptr(int64(100)), wantErr: true},
		{name: "no memory limit", swap: ptr(int64(50)), wantErr: true},
	} {
		got, err := swapV2(tt.swap, tt.mem)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("%s: swapV2 = %q, %v", tt.name, got, err)
		}
		if err != nil && !errdefs.IsInvalid(err) {
			t.Errorf("%s: error kind %v", tt.name, errdefs.KindOf(err))
		}
	}
}

func TestCPUMax(t *testing.T) {
	for _, tt := range []struct {
		quota  *int64
		period *uint64
		want   string
	}{
		{nil, nil, ""},
		{ptr(int64(20000)), nil, "20000 100000"},
		{ptr(int64(50000)), ptr(uint64(200000)), "50000 200000"},
		{ptr(int64(-1)), ptr(uint64(50000)), "max 50000"},
		{nil, ptr(uint64(50000)), "max 50000"},
	} {
		if got := cpuMax(tt.quota, tt.period); got != tt.want {
			t.Errorf("cpuMax(%v, %v) = %q, want %q", tt.quota, tt.period, got, tt.want)
		}
	}
}

func TestV1Settings(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{
			Limit: ptr(int64(64 << 20)), Swap: ptr(int64(128 << 20)), Reservation: ptr(int64(32 << 20)),
			DisableOOMKiller: ptr(true), Swappiness: ptr(uint64(10)),
		},
		CPU: &specs.LinuxCPU{
			Shares: ptr(uint64(512)), Quota: ptr(int64(20000)), Period: ptr(uint64(100000)),
			Cpus: "0", Mems: "0",
		},
		Pids:    &specs.LinuxPids{Limit: ptr(int64(0))},
		BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(300))},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(1)), Minor: ptr(int64(3)), Access: "rwm"},
			{Allow: true, Type: "c", Major: ptr(int64(136)), Access: "rwm"},
		},
	}
	got, err := v1Settings(r)
	if err != nil {
		t.Fatal(err)
	}
	flat := map[string][]string{}
	for c, ss := range got {
		for _, s := range ss {
			flat[c] = append(flat[c], s.file+"="+s.value)
		}
	}
	want := map[string][]string{
		"memory": {
			"memory.limit_in_bytes=67108864", "memory.memsw.limit_in_bytes=134217728",
			"memory.soft_limit_in_bytes=33554432", "memory.swappiness=10", "memory.oom_control=1",
		},
		"cpu":     {"cpu.shares=512", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=20000"},
		"cpuset":  {"cpuset.cpus=0", "cpuset.mems=0"},
		"pids":    {"pids.max=max"},
		"blkio":   {"blkio.weight=300"},
		"devices": {"devices.deny=a *:* rwm", "devices.allow=c 1:3 rwm", "devices.allow=c 136:* rwm"},
	}
	if !reflect.DeepEqual(flat, want) {
		t.Fatalf("v1 settings:\n got %v\nwant %v", flat, want)
	}
	if _, err := v1Settings(&specs.LinuxResources{Unified: map[string]string{"memory.high": "1"}}); !errdefs.IsInvalid(err) {
		t.Fatalf("unified resources on v1: %v", err)
	}
}

func TestV2Settings(t *testing.T) {
	r := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: ptr(int64(64 << 20)), Swap: ptr(int64(96 << 20)), Reservation: ptr(int64(1 << 20)), DisableOOMKiller: ptr(true)},
		CPU:    &specs.LinuxCPU{Shares: ptr(uint64(1024)), Quota: ptr(int64(20000)), Period: ptr(uint64(100000)), Cpus: "0-1"},
		Pids:   &specs.LinuxPids{Limit: ptr(int64(100))},
		BlockIO: &specs.LinuxBlockIO{
			Weight:                ptr(uint16(500)),
			ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1048576}},
		},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4 << 20}},
		Unified:        map[string]string{"memory.high": "50000000"},
	}
	got, err := v2Settings(r)
	if err != nil {
		t.Fatal(err)
	}
	var flat []string
	for _, s := range got {
		e := s.file + "=" + s.value
		if s.alt != nil {
			e += " | " + s.alt.file + "=" + s.alt.value
		}
		flat = append(flat, e)
	}
	want := []string{
		"memory.max=67108864", "memory.swap.max=33554432", "memory.low=1048576",
		"cpu.weight=39", "cpu.max=20000 100000", "cpuset.cpus=0-1", "pids.max=100",
		"io.bfq.weight=default 500 | io.weight=default 4950", "io.max=8:0 rbps=1048576",
		"hugetlb.2MB.max=4194304", "memory.high=50000000",
	}
	if !reflect.DeepEqual(flat, want) {
		t.Fatalf("v2 settings:\n got %q\nwant %q", flat, want)
	}
	for _, bad := range []map[string]string{{"../x.y": "1"}, {"nodot": "1"}} {
		if _, err := v2Settings(&specs.LinuxResources{Unified: bad}); !errdefs.IsInvalid(err) {
			t.Errorf("unified %v: %v", bad, err)
		}
	}
	if _, err := v2Settings(&specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr(int64(1000))}}); !errdefs.IsInvalid(err) {
		t.Errorf("realtime on v2: %v", err)
	}
}

// fakeCgroup makes a directory that looks like a cgroup with the given
// (empty) files, so writes can be checked without a cgroup file system.
func fakeCgroup(t *testing.T, files ...string) (mount, dir string) {
	t.Helper()
	mount = t.TempDir()
	dir = filepath.Join(mount, "c")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return mount, dir
}

func TestV2ApplyFiles(t *testing.T) {
	tests := []struct {
		name    string
		files   []string
		r       *specs.LinuxResources
		want    map[string]string
		missing string // the setting reported missing
	}{
		{
			name:  "written",
			files: []string{"memory.max", "cpu.max", "cpu.weight", "pids.max"},
			r: &specs.LinuxResources{
				Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20))},
				CPU:    &specs.LinuxCPU{Shares: ptr(uint64(2)), Quota: ptr(int64(50000))},
				Pids:   &specs.LinuxPids{Limit: ptr(int64(-1))},
			},
			want: map[string]string{"memory.max": "1048576", "cpu.max": "50000 100000", "cpu.weight": "1", "pids.max": "max"},
		},
		{
			name:  "unlimited swap needs no swap accounting",
			files: []string{"memory.max"},
			r:     &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20)), Swap: ptr(int64(-1))}},
			want:  map[string]string{"memory.max": "1048576"},
		},
		{
			name:    "swap limit without swap accounting",
			files:   []string{"memory.max"},
			r:       &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr(int64(1 << 20)), Swap: ptr(int64(2 << 20))}},
			missing: "memory.swap.max",
		},
		{
			name:  "io.weight when no BFQ",
			files: []string{"io.weight"},
			r:     &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(1000))}},
			want:  map[string]string{"io.weight": "default 10000"},
		},
		{
			name:    "no io controller",
			r:       &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: ptr(uint16(1000))}},
			missing: "io.bfq.weight",
		},
		{
			name:  "nothing asked, nothing needed",
			r:     &specs.LinuxResources{},
			want:  map[string]string{},
			files: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, dir := fakeCgroup(t, tt.files...)
			m, err := NewV2(mount, "/c", tt.r)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Update(tt.r)
			if tt.missing != "" {
				if !errdefs.IsInvalid(err) || !errors.Is(err, errMissing) || !strings.Contains(err.Error(), tt.missing) {
					t.Fatalf("error %v, want a missing %s", err, tt.missing)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for f, v := range tt.want {
				b, _ := os.ReadFile(filepath.Join(dir, f))
				if string(b) != v {
					t.Errorf("%s = %q, want %q", f, b, v)
				}
			}
		})
	}
}

func TestParseV1Mounts(t *testing.T) {
	mi := `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:32 / /mnt/memory\040again rw,relatime - cgroup cgroup rw,memory
`
	hs, err := parseV1Mounts(bufio.NewScanner(strings.NewReader(mi)))
	if err != nil {
		t.Fatal(err)
	}
	want := []Hierarchy{
		{Mountpoint: "/sys/fs/cgroup/cpu,cpuacct", Root: "/", Controllers: []string{"cpu", "cpuacct"}},
		{Mountpoint: "/sys/fs/cgroup/memory", Root: "/docker/abc", Controllers: []string{"memory"}},
		{Mountpoint: "/sys/fs/cgroup/systemd", Root: "/", NameOpt: "name=systemd"},
		{Mountpoint: "/sys/fs/cgroup/unified", Root: "/", Unified: true},
	}
	if !reflect.DeepEqual(hs, want) {
		t.Fatalf("got %+v", hs)
	}
	if hs[0].Name() != "cpu,cpuacct" {
		t.Fatalf("name %q", hs[0].Name())
	}
	m, err := newV1(hs, "/docker/abc/skiff/x", nil)
	if err != nil {
		t.Fatal(err)
	}
	// The memory mount shows /docker/abc of its hierarchy: paths below it
	// are relative to the mount.
	wantDirs := map[string]string{
		"cpu,cpuacct": "/sys/fs/cgroup/cpu,cpuacct/docker/abc/skiff/x",
		"memory":      "/sys/fs/cgroup/memory/skiff/x",
		"systemd":     "/sys/fs/cgroup/systemd/docker/abc/skiff/x",
		"unified":     "/sys/fs/cgroup/unified/docker/abc/skiff/x",
	}
	if !reflect.DeepEqual(m.Dirs(), wantDirs) {
		t.Fatalf("dirs %v", m.Dirs())
	}
	// Named and cgroup2 hierarchies alone are no v1 host.
	if _, err := parseV1Mounts(bufio.NewScanner(strings.NewReader(mi[strings.Index(mi, "40 "):strings.Index(mi, "42 ")]))); errdefs.KindOf(err) != errdefs.KindUnavailable {
		t.Fatalf("no controllers: %v", err)
	}
	if _, err := newV1(hs, "/", nil); !errdefs.IsInvalid(err) {
		t.Fatalf("root cgroup: %v", err)
	}
	// ".." cannot climb out of the hierarchy.
	m, err = newV1(hs, "/../../x", nil)
	if err != nil || m.Dirs()["cpu,cpuacct"] != "/sys/fs/cgroup/cpu,cpuacct/x" {
		t.Fatalf("dotdot path: %v %v", m, err)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/end\04`: `/end\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHasNamedHierarchy(t *testing.T) {
	with := `40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	without := `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:5 - cgroup cgroup rw,cpu,cpuacct
43 31 0:39 / /mnt/name=systemd rw,relatime - tmpfs tmpfs rw,name=systemd2
`
	for mi, want := range map[string]bool{with: true, without: false} {
		got, err := hasNamedHierarchy(strings.NewReader(mi), "name=systemd")
		if err != nil || got != want {
			t.Errorf("hasNamedHierarchy(%q) = %v, %v; want %v", mi, got, err, want)
		}
	}
}
