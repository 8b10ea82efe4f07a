package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

type v2 struct {
	mount string // the cgroup2 mount point
	path  string
	dir   string
	res   *specs.LinuxResources
}

// NewV2 returns a cgroup v2 manager for path under mountpoint: the cgroup2
// mount (DefaultRoot on a unified host) or any cgroup directory in one, which
// then acts as the root. Create enables controllers in the subtree_control of
// the root and of every directory below it on the way to path.
func NewV2(mountpoint, path string, r *specs.LinuxResources) (Manager, error) {
	if !filepath.IsAbs(path) {
		own, err := ownCgroup("")
		if err != nil {
			return nil, err
		}
		path = joinPath(own, path)
	}
	return newV2(mountpoint, path, r)
}

func newV2(mountpoint, path string, r *specs.LinuxResources) (*v2, error) {
	path = filepath.Clean("/" + path)
	if path == "/" {
		return nil, errdefs.Invalid("cgroups: refusing to manage the root cgroup")
	}
	return &v2{mount: mountpoint, path: path, dir: filepath.Join(mountpoint, path), res: r}, nil
}

func (m *v2) Path() string            { return m.path }
func (m *v2) Unified() bool           { return true }
func (m *v2) Dirs() map[string]string { return map[string]string{"": m.dir} }

// v2Controllers are the controllers a container's cgroup gets when the host
// offers them.
var v2Controllers = []string{"cpuset", "cpu", "io", "memory", "hugetlb", "pids", "rdma", "misc"}

func (m *v2) Create() error {
	rel, err := filepath.Rel(m.mount, m.dir)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return errdefs.Invalid("cgroups: path %q escapes the hierarchy", m.path)
	}
	cur := m.mount
	for _, comp := range strings.Split(rel, "/") {
		// Controllers must be enabled in every ancestor's subtree_control for
		// their files to appear in the leaf.
		enableControllers(cur)
		cur = filepath.Join(cur, comp)
		if err := unix.Mkdir(cur, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("cgroups: create %s: %w", cur, err)
		}
	}
	if err := m.Update(m.res); err != nil {
		m.Destroy()
		return err
	}
	return nil
}

// enableControllers turns on, in dir's subtree_control, every controller of
// v2Controllers that dir has and has not enabled yet. A controller the kernel
// refuses (for example cpu while a realtime task is in the way) stays off;
// a resource that needs it then fails with a clear error.
func enableControllers(dir string) {
	avail, err := readFile(dir, "cgroup.controllers")
	if err != nil || avail == "" {
		return
	}
	enabled, _ := readFile(dir, "cgroup.subtree_control")
	on := map[string]bool{}
	for _, c := range strings.Fields(enabled) {
		on[c] = true
	}
	has := map[string]bool{}
	for _, c := range strings.Fields(avail) {
		has[c] = true
	}
	var want []string
	for _, c := range v2Controllers {
		if has[c] && !on[c] {
			want = append(want, "+"+c)
		}
	}
	if len(want) == 0 {
		return
	}
	if writeSetting(dir, setting{file: "cgroup.subtree_control", value: strings.Join(want, " ")}) == nil {
		return
	}
	for _, c := range want { // one at a time, so one refusal does not block the rest
		_ = writeSetting(dir, setting{file: "cgroup.subtree_control", value: c})
	}
}

func (m *v2) Update(r *specs.LinuxResources) error {
	ss, err := v2Settings(r)
	if err != nil {
		return err
	}
	for _, s := range ss {
		if err := writeSetting(m.dir, s); err != nil {
			return err
		}
	}
	if r != nil && len(r.Devices) > 0 {
		return setDeviceRules(m.dir, r.Devices)
	}
	return nil
}

// v2Settings turns OCI resources into cgroup v2 file writes, in order.
func v2Settings(r *specs.LinuxResources) ([]setting, error) {
	var out []setting
	if r == nil {
		return out, nil
	}
	add := func(s setting) { out = append(out, s) }
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil {
			add(setting{file: "memory.max", value: maxOrInt(*mem.Limit)})
		}
		swap, err := swapV2(mem.Swap, mem.Limit)
		if err != nil {
			return nil, err
		}
		if swap != "" {
			// "max" is the default: a host without swap accounting loses nothing.
			add(setting{file: "memory.swap.max", value: swap, optional: swap == "max"})
		}
		if mem.Reservation != nil {
			add(setting{file: "memory.low", value: maxOrInt(*mem.Reservation)})
		}
		// DisableOOMKiller and Swappiness have no cgroup v2 equivalent.
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			add(setting{file: "cpu.weight", value: utoa(sharesToWeight(*cpu.Shares))})
		}
		if v := cpuMax(cpu.Quota, cpu.Period); v != "" {
			add(setting{file: "cpu.max", value: v})
		}
		if cpu.Burst != nil {
			add(setting{file: "cpu.max.burst", value: utoa(*cpu.Burst)})
		}
		if cpu.Idle != nil {
			add(setting{file: "cpu.idle", value: itoa(*cpu.Idle)})
		}
		if (cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0) || (cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0) {
			return nil, errdefs.Invalid("cgroups: realtime CPU limits are not supported on cgroup v2")
		}
		if cpu.Cpus != "" {
			add(setting{file: "cpuset.cpus", value: cpu.Cpus})
		}
		if cpu.Mems != "" {
			add(setting{file: "cpuset.mems", value: cpu.Mems})
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		// "max" is the default: a host without the pids controller loses
		// nothing (update sends it for every container without a limit).
		add(setting{file: "pids.max", value: pidsMax(*r.Pids.Limit), optional: *r.Pids.Limit <= 0})
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			add(ioWeight("default", *b.Weight))
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				add(ioWeight(fmt.Sprintf("%d:%d", wd.Major, wd.Minor), *wd.Weight))
			}
		}
		for _, t := range []struct {
			key  string
			devs []specs.LinuxThrottleDevice
		}{
			{"rbps", b.ThrottleReadBpsDevice},
			{"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice},
			{"wiops", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				rate := utoa(d.Rate)
				if d.Rate == 0 {
					rate = "max"
				}
				add(setting{file: "io.max", value: fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, t.key, rate)})
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add(setting{file: "hugetlb." + h.Pagesize + ".max", value: utoa(h.Limit)})
	}
	// r.Devices is not a file: Update attaches an eBPF program (devicefilter.go).
	keys := make([]string, 0, len(r.Unified))
	for k := range r.Unified {
		if strings.Contains(k, "/") || k == "." || k == ".." || !strings.Contains(k, ".") {
			return nil, errdefs.Invalid("cgroups: invalid unified resource key %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys { // last: they override the typed settings
		add(setting{file: k, value: r.Unified[k]})
	}
	return out, nil
}

// ioWeight prefers BFQ's io.bfq.weight, which takes blkio's 10-1000 scale,
// and falls back to io.weight with the weight converted to its 1-10000 scale.
func ioWeight(dev string, w uint16) setting {
	return setting{
		file:  "io.bfq.weight",
		value: fmt.Sprintf("%s %d", dev, w),
		alt:   &setting{file: "io.weight", value: fmt.Sprintf("%s %d", dev, blkioToIOWeight(w))},
	}
}

// sharesToWeight converts cgroup v1 cpu.shares (2-262144, default 1024) to
// cgroup v2 cpu.weight (1-10000, default 100), the formula runc and systemd use.
func sharesToWeight(shares uint64) uint64 {
	if shares == 0 {
		return 0
	}
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

// blkioToIOWeight converts a blkio weight (10-1000) to io.weight (1-10000).
func blkioToIOWeight(w uint16) uint64 {
	v := uint64(w)
	if v < 10 {
		v = 10
	}
	if v > 1000 {
		v = 1000
	}
	return 1 + (v-10)*9999/990
}

// swapV2 converts OCI's memory+swap limit to memory.swap.max, which counts
// swap alone. "" means no setting.
func swapV2(swap, mem *int64) (string, error) {
	if swap == nil || *swap == 0 {
		return "", nil
	}
	if *swap == -1 {
		return "max", nil
	}
	if mem == nil || *mem <= 0 {
		return "", errdefs.Invalid("cgroups: a memory+swap limit needs a memory limit")
	}
	if *swap < *mem {
		return "", errdefs.Invalid("cgroups: memory+swap limit (%d) must not be below the memory limit (%d)", *swap, *mem)
	}
	return itoa(*swap - *mem), nil
}

// cpuMax formats cpu.max ("$QUOTA $PERIOD"); "" when neither is set.
func cpuMax(quota *int64, period *uint64) string {
	if quota == nil && period == nil {
		return ""
	}
	q := "max"
	if quota != nil && *quota > 0 {
		q = itoa(*quota)
	}
	p := uint64(100000)
	if period != nil && *period != 0 {
		p = *period
	}
	return q + " " + utoa(p)
}

func maxOrInt(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

func (m *v2) Enter(pid int) error { return enter(m.dir, pid) }

func (m *v2) Procs() ([]int, error) {
	pids, err := treeProcs(m.dir)
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return pids, nil
}

func (m *v2) OOMKillCount() (uint64, error) {
	n, err := keyedValue(m.dir, "memory.events", "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("cgroups: read oom_kill: %w", err)
	}
	return n, nil
}

func (m *v2) Stats() (*Stats, error) {
	st := &Stats{}
	var errs []error
	usec, err := keyedValue(m.dir, "cpu.stat", "usage_usec")
	if err != nil {
		errs = append(errs, err)
	}
	st.CPUUsageNs = usec * 1000
	for _, g := range []struct {
		file string
		dst  *uint64
	}{
		{"memory.current", &st.MemoryUsage},
		{"memory.max", &st.MemoryLimit},
		{"pids.current", &st.PidsCurrent},
		{"pids.max", &st.PidsLimit},
	} {
		v, err := readUint(m.dir, g.file)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		*g.dst = v
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("cgroups: stats: %w", errors.Join(errs...))
	}
	return st, nil
}

func (m *v2) Freeze() error {
	return setAndWait(m.dir, "cgroup.freeze", "1", func() (bool, error) {
		n, err := keyedValue(m.dir, "cgroup.events", "frozen")
		return n == 1, err
	})
}

func (m *v2) Thaw() error {
	return writeSetting(m.dir, setting{file: "cgroup.freeze", value: "0"})
}

func (m *v2) Kill() error {
	// cgroup.kill (5.14+) kills the whole subtree atomically, forks included.
	err := writeSetting(m.dir, setting{file: "cgroup.kill", value: "1"})
	if err == nil {
		return nil
	}
	if _, serr := os.Stat(m.dir); errors.Is(serr, os.ErrNotExist) {
		return nil
	}
	if !errors.Is(err, errMissing) {
		return err
	}
	for i := 0; i < 5; i++ {
		pids, err := m.Procs()
		if err != nil || len(pids) == 0 {
			return nil
		}
		killPids(pids)
	}
	return nil
}

func (m *v2) Destroy() error {
	if err := m.Kill(); err != nil {
		return err
	}
	return removeTree(m.dir, m.Procs)
}
