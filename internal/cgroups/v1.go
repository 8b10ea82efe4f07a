package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Hierarchy is one mounted cgroup v1 hierarchy, or a hierarchy without
// controllers that a container's processes are also placed in: a named one
// (name=systemd, which systemd inside a container needs) or, on a hybrid
// host, the cgroup2 mount at /sys/fs/cgroup/unified.
type Hierarchy struct {
	Mountpoint  string   // e.g. /sys/fs/cgroup/memory
	Root        string   // the part of the hierarchy the mount shows ("/" normally)
	Controllers []string // e.g. [cpu cpuacct]; empty for the two kinds below
	NameOpt     string   // "name=systemd" for a named hierarchy
	Unified     bool     // the hybrid host's cgroup2 mount
}

// selector is what names the hierarchy in /proc/self/cgroup: its first
// controller, "name=X", or "" for cgroup2.
func (h Hierarchy) selector() string {
	switch {
	case h.Unified:
		return ""
	case h.NameOpt != "":
		return h.NameOpt
	}
	return h.Controllers[0]
}

// Name is the hierarchy's directory name under the cgroup root ("memory",
// "cpu,cpuacct"), which is also what a container sees under /sys/fs/cgroup.
func (h Hierarchy) Name() string { return filepath.Base(h.Mountpoint) }

var (
	v1Once sync.Once
	v1Hs   []Hierarchy
	v1Err  error
)

// V1Hierarchies lists the host's mounted cgroup v1 hierarchies: the
// controller ones, the named ones (name=systemd) and, on a hybrid host, the
// cgroup2 mount. Each hierarchy is listed once, at its first mount.
func V1Hierarchies() ([]Hierarchy, error) { return v1Hierarchies() }

// WithoutControllers reports whether the host's v1 hierarchy of that name
// (see Hierarchy.Name) holds no v1 controller: name=systemd, or the hybrid
// host's cgroup2. skiff sets no limit in either, so a container may write
// to its own cgroup there (systemd as PID 1 makes its units' cgroups): a
// limit it sets there can only narrow what its parent cgroup allows.
func WithoutControllers(name string) bool {
	hs, err := v1Hierarchies()
	if err != nil {
		return false
	}
	for _, h := range hs {
		if h.Name() == name {
			return len(h.Controllers) == 0
		}
	}
	return false
}

func v1Hierarchies() ([]Hierarchy, error) {
	v1Once.Do(func() {
		f, err := os.Open("/proc/self/mountinfo")
		if err != nil {
			v1Err = fmt.Errorf("cgroups: %w", err)
			return
		}
		defer f.Close()
		v1Hs, v1Err = parseV1Mounts(bufio.NewScanner(f))
	})
	return v1Hs, v1Err
}

func parseV1Mounts(sc *bufio.Scanner) ([]Hierarchy, error) {
	var hs []Hierarchy
	seen := map[string]bool{}
	ctrlCount := 0
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTS
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 3 || (qf[0] != "cgroup" && qf[0] != "cgroup2") {
			continue
		}
		h := Hierarchy{Mountpoint: unescapeMountinfo(pf[4]), Root: unescapeMountinfo(pf[3])}
		key := "cgroup2"
		if qf[0] == "cgroup2" {
			h.Unified = true
		} else {
			for _, o := range strings.Split(qf[2], ",") {
				if knownV1Controllers[o] {
					h.Controllers = append(h.Controllers, o)
				} else if strings.HasPrefix(o, "name=") {
					h.NameOpt = o
				}
			}
			key = strings.Join(h.Controllers, ",")
			if key == "" {
				key = h.NameOpt
			}
			if key == "" {
				continue
			}
		}
		if seen[key] { // the same hierarchy mounted twice: the first one wins
			continue
		}
		seen[key] = true
		if len(h.Controllers) > 0 {
			ctrlCount++
		}
		hs = append(hs, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cgroups: read mountinfo: %w", err)
	}
	if ctrlCount == 0 {
		return nil, errdefs.Unavailable("cgroups: no cgroup v1 controller is mounted")
	}
	return hs, nil
}

var knownV1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true, "devices": true,
	"freezer": true, "net_cls": true, "net_prio": true, "blkio": true, "perf_event": true,
	"hugetlb": true, "pids": true, "rdma": true, "misc": true,
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

type v1 struct {
	path  string
	res   *specs.LinuxResources
	hs    []Hierarchy
	dirs  map[string]string // hierarchy name → this cgroup's directory
	ctrl  map[string]string // controller → this cgroup's directory
	names []string          // hierarchy names, sorted
}

// NewV1 returns a cgroup v1 manager for path on the given hierarchies (see
// V1Hierarchies).
func NewV1(hs []Hierarchy, path string, r *specs.LinuxResources) (Manager, error) {
	return newV1(hs, path, r)
}

func newV1(hs []Hierarchy, path string, r *specs.LinuxResources) (*v1, error) {
	if path == "" || filepath.Clean("/"+path) == "/" {
		return nil, errdefs.Invalid("cgroups: refusing to manage the root cgroup")
	}
	path = filepath.Clean(path)
	m := &v1{path: path, res: r, hs: hs, dirs: map[string]string{}, ctrl: map[string]string{}}
	for _, h := range hs {
		p := path
		if !filepath.IsAbs(p) {
			own, err := ownCgroup(h.selector())
			if err != nil {
				return nil, err
			}
			p = joinPath(own, p)
		}
		// A mount that shows only part of the hierarchy (inside a cgroup
		// namespace or a bind mount) has our paths relative to its root.
		if h.Root != "/" {
			if rel, err := filepath.Rel(h.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
				p = "/" + rel
			}
		}
		dir := filepath.Join(h.Mountpoint, p)
		if rel, err := filepath.Rel(h.Mountpoint, dir); err != nil || rel == "." || strings.HasPrefix(rel, "..") {
			return nil, errdefs.Invalid("cgroups: path %q escapes the hierarchy", path)
		}
		m.dirs[h.Name()] = dir
		m.names = append(m.names, h.Name())
		for _, c := range h.Controllers {
			m.ctrl[c] = dir
		}
	}
	sort.Strings(m.names)
	return m, nil
}

func (m *v1) Path() string  { return m.path }
func (m *v1) Unified() bool { return false }

func (m *v1) Dirs() map[string]string {
	out := make(map[string]string, len(m.dirs))
	for k, v := range m.dirs {
		out[k] = v
	}
	return out
}

func (m *v1) Create() error {
	for _, h := range m.hs {
		if err := mkdirV1(h, m.dirs[h.Name()]); err != nil {
			m.Destroy()
			return err
		}
	}
	if err := m.Update(m.res); err != nil {
		m.Destroy()
		return err
	}
	return nil
}

// mkdirV1 creates dir and its missing parents. cpuset directories start with
// empty cpuset.cpus and cpuset.mems, and a task cannot join such a cgroup, so
// each new level gets its parent's values.
func mkdirV1(h Hierarchy, dir string) error {
	rel, err := filepath.Rel(h.Mountpoint, dir)
	if err != nil {
		return err
	}
	isCpuset := false
	for _, c := range h.Controllers {
		isCpuset = isCpuset || c == "cpuset"
	}
	cur := h.Mountpoint
	for _, comp := range strings.Split(rel, "/") {
		parent := cur
		cur = filepath.Join(cur, comp)
		if err := unix.Mkdir(cur, 0o755); err != nil && err != unix.EEXIST {
			return fmt.Errorf("cgroups: create %s: %w", cur, err)
		}
		if isCpuset {
			if err := inheritCpuset(parent, cur); err != nil {
				return err
			}
		}
	}
	return nil
}

func inheritCpuset(parent, dir string) error {
	for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
		cur, err := readFile(dir, f)
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if cur != "" {
			continue
		}
		v, err := readFile(parent, f)
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if err := writeSetting(dir, setting{file: f, value: v}); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) Update(r *specs.LinuxResources) error {
	byCtrl, err := v1Settings(r)
	if err != nil {
		return err
	}
	ctrls := make([]string, 0, len(byCtrl))
	for c := range byCtrl {
		ctrls = append(ctrls, c)
	}
	sort.Strings(ctrls)
	for _, c := range ctrls {
		dir, ok := m.ctrl[c]
		if !ok {
			return errdefs.Invalid("cgroups: cannot set %s: the %s controller is not mounted", byCtrl[c][0].file, c)
		}
		if err := applyV1(dir, byCtrl[c]); err != nil {
			return err
		}
	}
	return nil
}

// applyV1 writes settings in order. Two orders depend on current values: a
// memory limit above the current memory+swap limit and a CFS period that the
// current quota does not fit are refused by the kernel, so those pairs are
// retried the other way round.
func applyV1(dir string, ss []setting) error {
	for i := 0; i < len(ss); i++ {
		s := ss[i]
		err := writeSetting(dir, s)
		if err != nil && errors.Is(err, unix.EINVAL) && i+1 < len(ss) {
			next := ss[i+1]
			if (s.file == "memory.limit_in_bytes" && next.file == "memory.memsw.limit_in_bytes") ||
				(s.file == "cpu.cfs_period_us" && next.file == "cpu.cfs_quota_us") {
				if err2 := writeSetting(dir, next); err2 == nil {
					err = writeSetting(dir, s)
					i++
				}
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// v1Settings turns OCI resources into cgroup v1 file writes, by controller.
func v1Settings(r *specs.LinuxResources) (map[string][]setting, error) {
	out := map[string][]setting{}
	if r == nil {
		return out, nil
	}
	add := func(ctrl string, s setting) { out[ctrl] = append(out[ctrl], s) }
	if mem := r.Memory; mem != nil {
		if mem.Limit != nil {
			add("memory", setting{file: "memory.limit_in_bytes", value: itoa(*mem.Limit)})
		}
		if mem.Swap != nil && *mem.Swap != 0 {
			// -1 (unlimited) is the default, so a host without swap
			// accounting loses nothing by skipping it.
			add("memory", setting{file: "memory.memsw.limit_in_bytes", value: itoa(*mem.Swap), optional: *mem.Swap == -1})
		}
		if mem.Reservation != nil {
			add("memory", setting{file: "memory.soft_limit_in_bytes", value: itoa(*mem.Reservation)})
		}
		if mem.KernelTCP != nil {
			add("memory", setting{file: "memory.kmem.tcp.limit_in_bytes", value: itoa(*mem.KernelTCP)})
		}
		if mem.Swappiness != nil {
			if *mem.Swappiness > 100 {
				return nil, errdefs.Invalid("cgroups: invalid memory swappiness %d (0-100)", *mem.Swappiness)
			}
			add("memory", setting{file: "memory.swappiness", value: utoa(*mem.Swappiness)})
		}
		if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
			add("memory", setting{file: "memory.oom_control", value: "1"})
		}
	}
	if cpu := r.CPU; cpu != nil {
		if cpu.Shares != nil && *cpu.Shares != 0 {
			add("cpu", setting{file: "cpu.shares", value: utoa(*cpu.Shares)})
		}
		if cpu.Period != nil && *cpu.Period != 0 {
			add("cpu", setting{file: "cpu.cfs_period_us", value: utoa(*cpu.Period)})
		}
		if cpu.Quota != nil && *cpu.Quota != 0 {
			add("cpu", setting{file: "cpu.cfs_quota_us", value: itoa(*cpu.Quota)})
		}
		if cpu.Burst != nil {
			add("cpu", setting{file: "cpu.cfs_burst_us", value: utoa(*cpu.Burst)})
		}
		if cpu.RealtimePeriod != nil && *cpu.RealtimePeriod != 0 {
			add("cpu", setting{file: "cpu.rt_period_us", value: utoa(*cpu.RealtimePeriod)})
		}
		if cpu.RealtimeRuntime != nil && *cpu.RealtimeRuntime != 0 {
			add("cpu", setting{file: "cpu.rt_runtime_us", value: itoa(*cpu.RealtimeRuntime)})
		}
		if cpu.Idle != nil {
			add("cpu", setting{file: "cpu.idle", value: itoa(*cpu.Idle)})
		}
		if cpu.Cpus != "" {
			add("cpuset", setting{file: "cpuset.cpus", value: cpu.Cpus})
		}
		if cpu.Mems != "" {
			add("cpuset", setting{file: "cpuset.mems", value: cpu.Mems})
		}
	}
	if r.Pids != nil && r.Pids.Limit != nil {
		add("pids", setting{file: "pids.max", value: pidsMax(*r.Pids.Limit)})
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			// blkio.weight is CFQ's file; hosts with BFQ have blkio.bfq.weight.
			add("blkio", setting{file: "blkio.weight", value: strconv.Itoa(int(*b.Weight)),
				alt: &setting{file: "blkio.bfq.weight", value: strconv.Itoa(int(*b.Weight))}})
		}
		if b.LeafWeight != nil && *b.LeafWeight != 0 {
			add("blkio", setting{file: "blkio.leaf_weight", value: strconv.Itoa(int(*b.LeafWeight))})
		}
		for _, wd := range b.WeightDevice {
			if wd.Weight != nil {
				v := fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.Weight)
				add("blkio", setting{file: "blkio.weight_device", value: v, alt: &setting{file: "blkio.bfq.weight_device", value: v}})
			}
			if wd.LeafWeight != nil {
				add("blkio", setting{file: "blkio.leaf_weight_device", value: fmt.Sprintf("%d:%d %d", wd.Major, wd.Minor, *wd.LeafWeight)})
			}
		}
		for _, t := range []struct {
			file string
			devs []specs.LinuxThrottleDevice
		}{
			{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
			{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
			{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
			{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
		} {
			for _, d := range t.devs {
				add("blkio", setting{file: t.file, value: fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)})
			}
		}
	}
	for _, h := range r.HugepageLimits {
		add("hugetlb", setting{file: "hugetlb." + h.Pagesize + ".limit_in_bytes", value: utoa(h.Limit)})
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			add("net_cls", setting{file: "net_cls.classid", value: strconv.FormatUint(uint64(*n.ClassID), 10)})
		}
		for _, p := range n.Priorities {
			add("net_prio", setting{file: "net_prio.ifpriomap", value: fmt.Sprintf("%s %d", p.Name, p.Priority)})
		}
	}
	for _, d := range r.Devices {
		file := "devices.deny"
		if d.Allow {
			file = "devices.allow"
		}
		add("devices", setting{file: file, value: deviceRule(d)})
	}
	if len(r.Unified) > 0 {
		return nil, errdefs.Invalid("cgroups: unified resources need cgroup v2, this host uses cgroup v1")
	}
	return out, nil
}

// deviceRule formats a device cgroup rule: "a", or "c 1:3 rwm" with "*" for
// any major or minor.
func deviceRule(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	access := d.Access
	if access == "" {
		access = "rwm"
	}
	num := func(p *int64) string {
		if p == nil || *p < 0 {
			return "*"
		}
		return strconv.FormatInt(*p, 10)
	}
	if typ == "a" && d.Major == nil && d.Minor == nil {
		return "a *:* " + access
	}
	return fmt.Sprintf("%s %s:%s %s", typ, num(d.Major), num(d.Minor), access)
}

func pidsMax(limit int64) string {
	if limit <= 0 {
		return "max"
	}
	return strconv.FormatInt(limit, 10)
}

func itoa(v int64) string  { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string { return strconv.FormatUint(v, 10) }

func (m *v1) Enter(pid int) error {
	for _, name := range m.names {
		if err := enter(m.dirs[name], pid); err != nil {
			return err
		}
	}
	return nil
}

// procsDir is the directory whose tree lists the cgroup's processes (every
// v1 hierarchy holds the same processes; pids or freezer is always there on
// Docker-era hosts).
func (m *v1) procsDir() string {
	for _, c := range []string{"pids", "freezer", "memory"} {
		if d, ok := m.ctrl[c]; ok {
			return d
		}
	}
	return m.dirs[m.names[0]]
}

func (m *v1) Procs() ([]int, error) {
	pids, err := treeProcs(m.procsDir())
	if err != nil {
		return nil, fmt.Errorf("cgroups: %w", err)
	}
	return pids, nil
}

func (m *v1) OOMKillCount() (uint64, error) {
	dir, ok := m.ctrl["memory"]
	if !ok {
		return 0, nil
	}
	n, err := keyedValue(dir, "memory.oom_control", "oom_kill")
	if err != nil {
		return 0, fmt.Errorf("cgroups: read oom_kill: %w", err)
	}
	return n, nil
}

func (m *v1) Stats() (*Stats, error) {
	st := &Stats{}
	var errs []error
	get := func(ctrl, file string, dst *uint64) {
		dir, ok := m.ctrl[ctrl]
		if !ok {
			return
		}
		v, err := readUint(dir, file)
		if err != nil {
			errs = append(errs, err)
			return
		}
		*dst = v
	}
	get("cpuacct", "cpuacct.usage", &st.CPUUsageNs)
	get("memory", "memory.usage_in_bytes", &st.MemoryUsage)
	get("memory", "memory.limit_in_bytes", &st.MemoryLimit)
	get("pids", "pids.current", &st.PidsCurrent)
	get("pids", "pids.max", &st.PidsLimit)
	// v1 reports "no limit" as the largest page-aligned int64.
	if st.MemoryLimit >= math.MaxInt64-4096 {
		st.MemoryLimit = 0
	}
	if len(errs) > 0 {
		return st, fmt.Errorf("cgroups: stats: %w", errors.Join(errs...))
	}
	return st, nil
}

func (m *v1) Freeze() error {
	dir, ok := m.ctrl["freezer"]
	if !ok {
		return errdefs.Unavailable("cgroups: the freezer controller is not mounted")
	}
	return setAndWait(dir, "freezer.state", "FROZEN", func() (bool, error) {
		s, err := readFile(dir, "freezer.state")
		return s == "FROZEN", err
	})
}

func (m *v1) Thaw() error {
	dir, ok := m.ctrl["freezer"]
	if !ok {
		return errdefs.Unavailable("cgroups: the freezer controller is not mounted")
	}
	return writeSetting(dir, setting{file: "freezer.state", value: "THAWED"})
}

// setAndWait writes value and waits until done reports the kernel finished
// (freezing completes asynchronously and the kernel offers no notification
// on v1, so this polls with a growing delay).
func setAndWait(dir, file, value string, done func() (bool, error)) error {
	delay := 100 * time.Microsecond
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := writeSetting(dir, setting{file: file, value: value}); err != nil {
			return err
		}
		ok, err := done()
		if err != nil {
			return fmt.Errorf("cgroups: %w", err)
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups: %s/%s did not reach %s", dir, file, value)
		}
		time.Sleep(delay)
		if delay < 20*time.Millisecond {
			delay *= 2
		}
	}
}

// Kill sends SIGKILL to every process, a few passes to catch children forked
// while the previous pass ran.
func (m *v1) Kill() error {
	for i := 0; i < 5; i++ {
		pids, err := m.Procs()
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if len(pids) == 0 {
			return nil
		}
		killPids(pids)
	}
	return nil
}

func (m *v1) Destroy() error {
	if err := m.Kill(); err != nil {
		return err
	}
	var errs []error
	for _, name := range m.names {
		if err := removeTree(m.dirs[name], m.Procs); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
