// Package ocispec turns a Docker container configuration into an OCI runtime
// spec. It knows Docker's defaults (capabilities, masked paths, mounts) and
// nothing about where the files live: the engine passes paths in Input.
package ocispec

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/mount"
)

// Annotations the runtime understands beyond the OCI spec.
const (
	// AnnotationRootfsMounts carries the root filesystem's mounts (a JSON
	// []mount.Mount, as the snapshotter returns them); the runtime mounts
	// them inside the container's own mount namespace. The same name as
	// runtime.AnnotationRootfsMounts.
	AnnotationRootfsMounts = "org.skiff.rootfs.mounts"
	// AnnotationGroups lists --group-add's names and gids, one a line; the
	// runtime resolves them in the container's /etc/group.
	AnnotationGroups = "org.skiff.groups"
)

// DefaultPath is the PATH a container gets when its image sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultCaps is Docker's default capability set.
var DefaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

var maskedPaths = []string{
	"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
	"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
	"/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
}

var readonlyPaths = []string{
	"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
}

// DefaultMaskedPaths are the paths Docker hides from a container that is not
// privileged (HostConfig.MaskedPaths when the client sets none).
func DefaultMaskedPaths() []string { return append([]string{}, maskedPaths...) }

// DefaultReadonlyPaths are the paths Docker makes read-only in a container
// that is not privileged.
func DefaultReadonlyPaths() []string { return append([]string{}, readonlyPaths...) }

// Input is everything Build needs besides the Docker configuration.
type Input struct {
	ID         string
	Config     *container.Config     // already merged with the image's config
	HostConfig *container.HostConfig // validated
	RootPath   string                // directory the rootfs is mounted on
	RootMounts []mount.Mount         // mounted on RootPath by the runtime; none: RootPath as it is
	CgroupPath string                // e.g. /skiff/<id>
	// Files bound into the container (host paths); empty ones are skipped.
	HostsPath, HostnamePath, ResolvConfPath string
	// HostNetwork shares the host's network namespace (and its /sys).
	HostNetwork bool
	// NamespacePaths are the namespaces of other containers to join
	// (--pid/--ipc container:X), as /proc/PID/ns/* paths.
	NamespacePaths map[specs.LinuxNamespaceType]string
	// ShmPath is a host directory bound at /dev/shm (--ipc shareable,
	// host or container:X); empty for a tmpfs of its own (private), or
	// nothing at all with --ipc none.
	ShmPath string
}

// Build returns the OCI runtime spec for in.
func Build(in Input) (*specs.Spec, error) {
	cfg, hc := in.Config, in.HostConfig
	args := append(append([]string{}, cfg.Entrypoint...), cfg.Cmd...)
	if len(args) == 0 {
		return nil, errdefs.Invalid("no command specified")
	}
	env := append([]string{}, cfg.Env...)
	if !hasEnv(env, "PATH") {
		env = append([]string{DefaultPath}, env...)
	}
	if !hasEnv(env, "HOSTNAME") {
		env = append(env, "HOSTNAME="+cfg.Hostname)
	}
	if cfg.Tty && !hasEnv(env, "TERM") {
		env = append(env, "TERM=xterm")
	}
	cwd := cfg.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	caps, err := capabilities(hc.Privileged, hc.CapAdd, hc.CapDrop)
	if err != nil {
		return nil, err
	}
	s := &specs.Spec{
		Version:    specs.Version,
		Hostname:   cfg.Hostname,
		Domainname: cfg.Domainname,
		Root:       &specs.Root{Path: in.RootPath, Readonly: hc.ReadonlyRootfs},
		Process: &specs.Process{
			Terminal:        cfg.Tty,
			Args:            args,
			Env:             env,
			Cwd:             cwd,
			User:            specs.User{Username: cfg.User},
			Capabilities:    &specs.LinuxCapabilities{Bounding: caps, Effective: caps, Permitted: caps},
			NoNewPrivileges: hasSecurityOpt(hc.SecurityOpt, "no-new-privileges"),
			Rlimits:         rlimits(hc.Ulimits),
		},
		Annotations: map[string]string{},
		Linux: &specs.Linux{
			CgroupsPath: in.CgroupPath,
			Resources:   resources(hc),
			Namespaces:  namespaces(in, hc),
		},
	}
	if hc.OomScoreAdj != 0 {
		v := hc.OomScoreAdj
		s.Process.OOMScoreAdj = &v
	}
	// --annotation: passed through to the runtime, as Docker does. The
	// engine refuses keys of skiff's own org.skiff. prefix, and skiff's
	// are set after these.
	for k, v := range hc.Annotations {
		s.Annotations[k] = v
	}
	if len(in.RootMounts) > 0 {
		b, err := json.Marshal(in.RootMounts)
		if err != nil {
			return nil, errdefs.System("ocispec: root mounts: %v", err)
		}
		s.Annotations[AnnotationRootfsMounts] = string(b)
	}
	if hc.UTSMode.IsHost() {
		s.Hostname, s.Domainname = "", ""
	}
	// A namespace to join without its path would silently be the host's.
	if hc.PidMode.IsContainer() && !hasNamespace(s.Linux.Namespaces, specs.PIDNamespace) {
		return nil, errdefs.System("ocispec: no namespace path for PID mode %s", hc.PidMode)
	}
	if hc.IpcMode.IsContainer() && !hasNamespace(s.Linux.Namespaces, specs.IPCNamespace) {
		return nil, errdefs.System("ocispec: no namespace path for IPC mode %s", hc.IpcMode)
	}
	if len(hc.GroupAdd) > 0 {
		// Resolved in the container's /etc/group by the runtime.
		s.Annotations[AnnotationGroups] = strings.Join(hc.GroupAdd, "\n")
	}
	// Docker's order: the defaults unless privileged, then the host
	// config's lists when set (empty with systempaths=unconfined).
	if !hc.Privileged {
		s.Linux.MaskedPaths = DefaultMaskedPaths()
		s.Linux.ReadonlyPaths = DefaultReadonlyPaths()
	}
	if hc.MaskedPaths != nil {
		s.Linux.MaskedPaths = append([]string{}, hc.MaskedPaths...)
	}
	if hc.ReadonlyPaths != nil {
		s.Linux.ReadonlyPaths = append([]string{}, hc.ReadonlyPaths...)
	}
	s.Linux.Sysctl = sysctls(in, hc)
	if err := withDevices(s, hc); err != nil { // devices.go
		return nil, err
	}
	if err := withBlkioDevices(s.Linux.Resources, hc); err != nil { // blkio.go
		return nil, err
	}
	s.Mounts = mounts(in, hc)
	applyCgroupns(s, hc) // cgroupns.go
	prof, prog, err := SeccompProfile(hc, caps)
	if err != nil {
		return nil, err
	}
	if prof != nil {
		// Only the compiled filter goes into the bundle: Docker's profile
		// in OCI form is about 30 KB of JSON that the monitor and init
		// would write, read and decode on every start, for nothing.
		s.Annotations[AnnotationSeccomp] = prog
	}
	return s, nil
}

// namespaces gives the container new namespaces, but none where it shares
// the host's (--pid/--ipc/--uts host, --network host) and a path where it
// joins another container's (--pid/--ipc container:X; the network one is
// set by the engine).
// sysctls are the host config's, over Docker's defaults for a network
// namespace of the container's own (not the host's, not another
// container's): unprivileged ICMP echo sockets and ports below 1024
// without a capability, as the default capabilities allow anyway.
func sysctls(in Input, hc *container.HostConfig) map[string]string {
	out := map[string]string{}
	if !in.HostNetwork && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() {
		for k, v := range map[string]string{"net.ipv4.ping_group_range": "0 2147483647", "net.ipv4.ip_unprivileged_port_start": "0"} {
			if sysctlExists(k) {
				out[k] = v
			}
		}
	}
	for k, v := range hc.Sysctls {
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// sysctlExists tells whether the running kernel has sysctl k (dockerd
// checks too: writing one it lacks fails the start).
var sysctlExists = func(k string) bool {
	_, err := os.Stat("/proc/sys/" + strings.ReplaceAll(k, ".", "/"))
	return err == nil
}

func namespaces(in Input, hc *container.HostConfig) []specs.LinuxNamespace {
	ns := []specs.LinuxNamespace{{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace}}
	add := func(typ specs.LinuxNamespaceType, host, join bool) {
		switch {
		case host:
		case join:
			if p := in.NamespacePaths[typ]; p != "" {
				ns = append(ns, specs.LinuxNamespace{Type: typ, Path: p})
			}
		default:
			ns = append(ns, specs.LinuxNamespace{Type: typ})
		}
	}
	add(specs.PIDNamespace, hc.PidMode.IsHost(), hc.PidMode.IsContainer())
	add(specs.IPCNamespace, hc.IpcMode.IsHost(), hc.IpcMode.IsContainer())
	add(specs.UTSNamespace, hc.UTSMode.IsHost(), false)
	add(specs.NetworkNamespace, in.HostNetwork, false)
	return ns
}

func hasNamespace(ns []specs.LinuxNamespace, typ specs.LinuxNamespaceType) bool {
	for _, n := range ns {
		if n.Type == typ {
			return true
		}
	}
	return false
}

func mounts(in Input, hc *container.HostConfig) []specs.Mount {
	shm := hc.ShmSize
	if shm <= 0 {
		shm = 64 << 20
	}
	sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
	if hc.Privileged {
		sysOpts = sysOpts[:3]
	}
	m := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
		{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
		{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"ro", "nosuid", "noexec", "nodev"}},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	switch {
	case hc.IpcMode.IsNone():
		// No /dev/shm at all, as with Docker.
	case in.ShmPath != "":
		m = append(m, specs.Mount{Destination: "/dev/shm", Type: "bind", Source: in.ShmPath, Options: []string{"rbind", "rprivate", "nosuid", "noexec", "nodev"}})
	default:
		m = append(m, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", fmt.Sprintf("size=%d", shm)}})
	}
	bind := func(dst, src string) {
		if src != "" {
			m = append(m, specs.Mount{Destination: dst, Type: "bind", Source: src, Options: []string{"rbind", "rprivate"}})
		}
	}
	bind("/etc/resolv.conf", in.ResolvConfPath)
	bind("/etc/hostname", in.HostnamePath)
	bind("/etc/hosts", in.HostsPath)
	// --tmpfs: Docker's defaults are noexec,nosuid,nodev plus the user's options.
	dsts := make([]string, 0, len(hc.Tmpfs))
	for d := range hc.Tmpfs {
		dsts = append(dsts, d)
	}
	sort.Strings(dsts)
	for _, d := range dsts {
		opts := []string{"noexec", "nosuid", "nodev"}
		if o := hc.Tmpfs[d]; o != "" {
			opts = append(opts, strings.Split(o, ",")...)
		}
		m = append(m, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: opts})
	}
	return m
}

// defaultDevices is Docker's device cgroup allow-list: deny everything, allow
// mknod of any node (CAP_MKNOD is in the default set, but a node is useless
// without read/write access) and rwm on the standard pseudo-devices only.
func defaultDevices(privileged bool) []specs.LinuxDeviceCgroup {
	if privileged {
		return []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
	}
	dev := func(typ string, major, minor int64, access string) specs.LinuxDeviceCgroup {
		d := specs.LinuxDeviceCgroup{Allow: true, Type: typ, Access: access}
		if major >= 0 {
			d.Major = ptr(major)
		}
		if minor >= 0 {
			d.Minor = ptr(minor)
		}
		return d
	}
	return []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		dev("c", -1, -1, "m"), dev("b", -1, -1, "m"),
		dev("c", 1, 3, "rwm"), dev("c", 1, 5, "rwm"), dev("c", 1, 7, "rwm"), // null, zero, full
		dev("c", 1, 8, "rwm"), dev("c", 1, 9, "rwm"), // random, urandom
		dev("c", 5, 0, "rwm"), dev("c", 5, 1, "rwm"), dev("c", 5, 2, "rwm"), // tty, console, ptmx
		dev("c", 136, -1, "rwm"), dev("c", 10, 200, "rwm"), // pts, tun
	}
}

// Resources is the cgroup part of the spec for hc (update applies it to a
// running container).
func Resources(hc *container.HostConfig) *specs.LinuxResources { return resources(hc) }

func resources(hc *container.HostConfig) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: defaultDevices(hc.Privileged)}
	mem := &specs.LinuxMemory{}
	if hc.Memory > 0 {
		mem.Limit = ptr(hc.Memory)
	}
	if hc.MemorySwap != 0 {
		mem.Swap = ptr(hc.MemorySwap)
	}
	if hc.MemoryReservation > 0 {
		mem.Reservation = ptr(hc.MemoryReservation)
	}
	if hc.OomKillDisable != nil && *hc.OomKillDisable {
		mem.DisableOOMKiller = ptr(true)
	}
	if hc.MemorySwappiness != nil && *hc.MemorySwappiness >= 0 {
		mem.Swappiness = ptr(uint64(*hc.MemorySwappiness))
	}
	if *mem != (specs.LinuxMemory{}) {
		r.Memory = mem
	}
	cpu := &specs.LinuxCPU{}
	if hc.CPUShares > 0 {
		cpu.Shares = ptr(uint64(hc.CPUShares))
	}
	switch {
	case hc.NanoCPUs > 0:
		cpu.Period = ptr(uint64(100000))
		cpu.Quota = ptr(hc.NanoCPUs * 100000 / 1e9)
	case hc.CPUQuota > 0 || hc.CPUPeriod > 0:
		if hc.CPUPeriod > 0 {
			cpu.Period = ptr(uint64(hc.CPUPeriod))
		}
		if hc.CPUQuota > 0 {
			cpu.Quota = ptr(hc.CPUQuota)
		}
	}
	cpu.Cpus, cpu.Mems = hc.CpusetCpus, hc.CpusetMems
	if hc.CPURealtimePeriod > 0 {
		cpu.RealtimePeriod = ptr(uint64(hc.CPURealtimePeriod))
	}
	if hc.CPURealtimeRuntime != 0 {
		cpu.RealtimeRuntime = ptr(hc.CPURealtimeRuntime)
	}
	if cpu.Shares != nil || cpu.Quota != nil || cpu.Period != nil || cpu.Cpus != "" || cpu.Mems != "" ||
		cpu.RealtimePeriod != nil || cpu.RealtimeRuntime != nil {
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: ptr(*hc.PidsLimit)}
	}
	if hc.BlkioWeight > 0 {
		r.BlockIO = &specs.LinuxBlockIO{Weight: ptr(hc.BlkioWeight)}
	}
	return r
}

// defaultNofile is what Docker's containers get by default; the runtime
// clamps it to the host's hard limit.
const defaultNofile = 1048576

func rlimits(ul []*container.Ulimit) []specs.POSIXRlimit {
	out := []specs.POSIXRlimit{}
	seen := map[string]bool{}
	for _, u := range ul {
		if u == nil {
			continue
		}
		name := "RLIMIT_" + strings.ToUpper(u.Name)
		seen[name] = true
		out = append(out, specs.POSIXRlimit{Type: name, Soft: uint64(u.Soft), Hard: uint64(u.Hard)})
	}
	if !seen["RLIMIT_NOFILE"] {
		out = append(out, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: defaultNofile, Hard: defaultNofile})
	}
	return out
}

// AllCaps lists every capability the running kernel knows.
func AllCaps() []string {
	last := 40 // CAP_CHECKPOINT_RESTORE on 5.9+
	out := make([]string, 0, last+1)
	for i := 0; i <= last; i++ {
		if n, ok := capNames[i]; ok {
			out = append(out, n)
		}
	}
	return out
}

var capNames = map[int]string{
	unix.CAP_CHOWN: "CAP_CHOWN", unix.CAP_DAC_OVERRIDE: "CAP_DAC_OVERRIDE", unix.CAP_DAC_READ_SEARCH: "CAP_DAC_READ_SEARCH",
	unix.CAP_FOWNER: "CAP_FOWNER", unix.CAP_FSETID: "CAP_FSETID", unix.CAP_KILL: "CAP_KILL", unix.CAP_SETGID: "CAP_SETGID",
	unix.CAP_SETUID: "CAP_SETUID", unix.CAP_SETPCAP: "CAP_SETPCAP", unix.CAP_LINUX_IMMUTABLE: "CAP_LINUX_IMMUTABLE",
	unix.CAP_NET_BIND_SERVICE: "CAP_NET_BIND_SERVICE", unix.CAP_NET_BROADCAST: "CAP_NET_BROADCAST", unix.CAP_NET_ADMIN: "CAP_NET_ADMIN",
	unix.CAP_NET_RAW: "CAP_NET_RAW", unix.CAP_IPC_LOCK: "CAP_IPC_LOCK", unix.CAP_IPC_OWNER: "CAP_IPC_OWNER",
	unix.CAP_SYS_MODULE: "CAP_SYS_MODULE", unix.CAP_SYS_RAWIO: "CAP_SYS_RAWIO", unix.CAP_SYS_CHROOT: "CAP_SYS_CHROOT",
	unix.CAP_SYS_PTRACE: "CAP_SYS_PTRACE", unix.CAP_SYS_PACCT: "CAP_SYS_PACCT", unix.CAP_SYS_ADMIN: "CAP_SYS_ADMIN",
	unix.CAP_SYS_BOOT: "CAP_SYS_BOOT", unix.CAP_SYS_NICE: "CAP_SYS_NICE", unix.CAP_SYS_RESOURCE: "CAP_SYS_RESOURCE",
	unix.CAP_SYS_TIME: "CAP_SYS_TIME", unix.CAP_SYS_TTY_CONFIG: "CAP_SYS_TTY_CONFIG", unix.CAP_MKNOD: "CAP_MKNOD",
	unix.CAP_LEASE: "CAP_LEASE", unix.CAP_AUDIT_WRITE: "CAP_AUDIT_WRITE", unix.CAP_AUDIT_CONTROL: "CAP_AUDIT_CONTROL",
	unix.CAP_SETFCAP: "CAP_SETFCAP", unix.CAP_MAC_OVERRIDE: "CAP_MAC_OVERRIDE", unix.CAP_MAC_ADMIN: "CAP_MAC_ADMIN",
	unix.CAP_SYSLOG: "CAP_SYSLOG", unix.CAP_WAKE_ALARM: "CAP_WAKE_ALARM", unix.CAP_BLOCK_SUSPEND: "CAP_BLOCK_SUSPEND",
	unix.CAP_AUDIT_READ: "CAP_AUDIT_READ", unix.CAP_PERFMON: "CAP_PERFMON", unix.CAP_BPF: "CAP_BPF",
	unix.CAP_CHECKPOINT_RESTORE: "CAP_CHECKPOINT_RESTORE",
}

// normalizeCap accepts "NET_ADMIN", "net_admin", "CAP_NET_ADMIN" and "ALL".
func normalizeCap(c string) (string, error) {
	c = strings.ToUpper(strings.TrimSpace(c))
	if c == "ALL" {
		return c, nil
	}
	if !strings.HasPrefix(c, "CAP_") {
		c = "CAP_" + c
	}
	for _, n := range capNames {
		if n == c {
			return c, nil
		}
	}
	return "", errdefs.Invalid("unknown capability: %q", c)
}

// capabilities applies --privileged, --cap-add and --cap-drop to Docker's
// default set, in Docker's order: drop ALL first, then adds, then drops.
func capabilities(privileged bool, add, drop []string) ([]string, error) {
	if privileged {
		return AllCaps(), nil
	}
	set := map[string]bool{}
	for _, c := range DefaultCaps {
		set[c] = true
	}
	var adds, drops []string
	for _, c := range add {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, err
		}
		adds = append(adds, n)
	}
	for _, c := range drop {
		n, err := normalizeCap(c)
		if err != nil {
			return nil, err
		}
		drops = append(drops, n)
	}
	for _, d := range drops {
		if d == "ALL" {
			set = map[string]bool{}
		}
	}
	for _, a := range adds {
		if a == "ALL" {
			for _, c := range AllCaps() {
				set[c] = true
			}
			continue
		}
		set[a] = true
	}
	for _, d := range drops {
		if d != "ALL" {
			delete(set, d)
		}
	}
	out := make([]string, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	sort.Strings(out)
	return out, nil
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			return true
		}
	}
	return false
}

func hasSecurityOpt(opts []string, name string) bool {
	for _, o := range opts {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if b, _ := strconv.ParseBool(v); k == name && (!ok || b) {
			return true
		}
	}
	return false
}

func ptr[T any](v T) *T { return &v }

// Capabilities is the bounding set Build gives a container (Docker's
// default set, or all when privileged, with the additions and drops).
func Capabilities(privileged bool, add, drop []string) ([]string, error) {
	return capabilities(privileged, add, drop)
}
