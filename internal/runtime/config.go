package runtime

import (
	"encoding/json"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// AnnotationRootfsMounts carries the root file system's mounts as the
// snapshotter returned them (a JSON []mount.Mount, one overlay as a rule);
// init mounts them on Root.Path inside the container's own mount namespace,
// so the host never sees them. Without it, Root.Path is used as it is.
const AnnotationRootfsMounts = "org.skiff.rootfs.mounts"

// AnnotationUser is an alternative place for "user[:group]" when
// Process.User.Username is empty.
const AnnotationUser = "org.skiff.user"

// AnnotationGroups lists the supplementary groups to add (--group-add), one
// a line, names or gids: names are resolved in the container's /etc/group
// when its process starts, as Docker does.
const AnnotationGroups = "org.skiff.groups"

// groupsOf reads AnnotationGroups.
func groupsOf(annotations map[string]string) []string {
	v := annotations[AnnotationGroups]
	if v == "" {
		return nil
	}
	return strings.Split(v, "\n")
}

// initConfig is the part of the spec `skiff-shim init` needs, computed by
// Create so that init parses a small document and decides nothing twice.
type initConfig struct {
	Rootfs string `json:"rootfs"`
	// RootMounts is the annotation's []mount.Mount, decoded by init only:
	// the monitor, resident for the container's life, passes it on as is.
	RootMounts    json.RawMessage   `json:"rootMounts,omitempty"`
	ReadonlyRoot  bool              `json:"readonlyRoot,omitempty"`
	Propagation   string            `json:"propagation,omitempty"`
	Mounts        []specs.Mount     `json:"mounts,omitempty"`
	MaskedPaths   []string          `json:"masked,omitempty"`
	ReadonlyPaths []string          `json:"readonly,omitempty"`
	Hostname      string            `json:"hostname,omitempty"`
	Domainname    string            `json:"domainname,omitempty"`
	Sysctl        map[string]string `json:"sysctl,omitempty"`
	Devices       []specs.LinuxDevice
	// NewCgroupNS: init unshares the cgroup namespace itself, once it is in
	// its cgroup, so that the namespace's root is the container's cgroup.
	NewCgroupNS bool `json:"cgroupns,omitempty"`
	// NewNetNS: a fresh network namespace, whose loopback starts down.
	NewNetNS bool `json:"netns,omitempty"`
	// CgroupDirs maps hierarchy names to the container's cgroup directories
	// on the host, for the "cgroup" mount; CgroupUnified tells v2 from v1.
	CgroupDirs    map[string]string `json:"cgroupDirs,omitempty"`
	CgroupUnified bool              `json:"cgroupUnified,omitempty"`
	// CgroupRW names the v1 hierarchies without controllers (name=systemd,
	// the hybrid cgroup2): the container's directory there is bound
	// read-write even in a read-only cgroup mount (see cgroupmount.go).
	CgroupRW []string `json:"cgroupRW,omitempty"`
	// Console binds the terminal on stdin to /dev/console.
	Console bool `json:"console,omitempty"`
	// Terminal makes a pty inside the container (see console.go).
	Terminal    bool       `json:"terminal,omitempty"`
	OOMScoreAdj *int       `json:"oomScoreAdj,omitempty"`
	Process     procConfig `json:"process"`
	// Seccomp is the compiled filter inline (AnnotationSeccomp), or
	// SeccompFile the absolute path of a file holding it raw
	// (AnnotationSeccompFile); both empty for none.
	Seccomp     string `json:"seccomp,omitempty"`
	SeccompFile string `json:"seccompFile,omitempty"`
}

// procConfig is what both init and exec apply to themselves just before
// execve.
type procConfig struct {
	Args []string `json:"args"`
	Env  []string `json:"env,omitempty"`
	Cwd  string   `json:"cwd"`
	// User is "user[:group]" to resolve in the container's /etc/passwd and
	// /etc/group; empty means UID and GID.
	User           string                   `json:"user,omitempty"`
	UID            uint32                   `json:"uid"`
	GID            uint32                   `json:"gid"`
	AdditionalGids []uint32                 `json:"gids,omitempty"`
	Umask          *uint32                  `json:"umask,omitempty"`
	Caps           *specs.LinuxCapabilities `json:"caps,omitempty"`
	NoNewPrivs     bool                     `json:"noNewPrivs,omitempty"`
	Rlimits        []specs.POSIXRlimit      `json:"rlimits,omitempty"`
	// Groups are --group-add's names or gids, resolved with User.
	Groups []string `json:"groups,omitempty"`
}

func newProcConfig(p *specs.Process, annotations map[string]string) (procConfig, error) {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return procConfig{}, errdefs.Invalid("no command specified")
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if !filepath.IsAbs(cwd) {
		return procConfig{}, errdefs.Invalid("the working directory %q is invalid: it must be absolute", cwd)
	}
	for _, r := range p.Rlimits {
		if _, ok := rlimitTypes[r.Type]; !ok {
			return procConfig{}, errdefs.Invalid("unknown rlimit type %q", r.Type)
		}
	}
	user := p.User.Username
	if user == "" {
		user = annotations[AnnotationUser]
	}
	return procConfig{
		Args:           p.Args,
		Env:            p.Env,
		Cwd:            filepath.Clean(cwd),
		User:           user,
		UID:            p.User.UID,
		GID:            p.User.GID,
		AdditionalGids: p.User.AdditionalGids,
		Groups:         groupsOf(annotations),
		Umask:          p.User.Umask,
		Caps:           p.Capabilities,
		NoNewPrivs:     p.NoNewPrivileges,
		Rlimits:        p.Rlimits,
	}, nil
}

// nsPlan is how the init process gets each namespace: cloned new, or joined
// from a path.
type nsPlan struct {
	cloneFlags uintptr
	joins      []nsJoin
	newMount   bool
	newUTS     bool
	newCgroup  bool
	newNet     bool
}

type nsJoin struct {
	typ  specs.LinuxNamespaceType
	flag int
	path string
}

func planNamespaces(l *specs.Linux) (nsPlan, error) {
	var p nsPlan
	seen := map[specs.LinuxNamespaceType]bool{}
	for _, ns := range l.Namespaces {
		flag, ok := nsFlags[ns.Type]
		if !ok {
			return p, errdefs.Invalid("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return p, errdefs.Invalid("namespace %q given twice", ns.Type)
		}
		seen[ns.Type] = true
		switch {
		case ns.Type == specs.UserNamespace:
			return p, errdefs.NotImplemented("user namespaces are not supported")
		case ns.Path != "":
			p.joins = append(p.joins, nsJoin{typ: ns.Type, flag: flag, path: ns.Path})
		case ns.Type == specs.CgroupNamespace:
			p.newCgroup = true // unshared by init, see initConfig.NewCgroupNS
		default:
			p.cloneFlags |= uintptr(flag)
		}
		switch ns.Type {
		case specs.MountNamespace:
			p.newMount = ns.Path == ""
		case specs.UTSNamespace:
			p.newUTS = ns.Path == ""
		case specs.NetworkNamespace:
			p.newNet = ns.Path == ""
		}
	}
	if !p.newMount {
		return p, errdefs.Invalid("a container needs a new mount namespace")
	}
	return p, nil
}

func newInitConfig(spec *specs.Spec, plan nsPlan, cg cgroups.Manager, console bool) (*initConfig, error) {
	pc, err := newProcConfig(spec.Process, spec.Annotations)
	if err != nil {
		return nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		if rootfs, err = filepath.Abs(rootfs); err != nil {
			return nil, errdefs.Invalid("root path: %v", err)
		}
	}
	var rootMounts json.RawMessage
	if v := spec.Annotations[AnnotationRootfsMounts]; v != "" {
		if !json.Valid([]byte(v)) {
			return nil, errdefs.Invalid("annotation %s: not JSON: %.100q", AnnotationRootfsMounts, v)
		}
		rootMounts = json.RawMessage(v)
	}
	for _, m := range spec.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return nil, errdefs.Invalid("mount destination %q is not absolute", m.Destination)
		}
	}
	if err := checkSysctls(spec.Linux); err != nil {
		return nil, err
	}
	filter, err := seccompOf(spec)
	if err != nil {
		return nil, err
	}
	if filter.file != "" && !filepath.IsAbs(filter.file) {
		// Relative to the bundle, our working directory.
		if filter.file, err = filepath.Abs(filter.file); err != nil {
			return nil, errdefs.System("seccomp filter: %v", err)
		}
	}
	cfg := &initConfig{
		Seccomp:       filter.hex,
		SeccompFile:   filter.file,
		Rootfs:        filepath.Clean(rootfs),
		RootMounts:    rootMounts,
		ReadonlyRoot:  spec.Root.Readonly,
		Propagation:   spec.Linux.RootfsPropagation,
		Mounts:        spec.Mounts,
		MaskedPaths:   spec.Linux.MaskedPaths,
		ReadonlyPaths: spec.Linux.ReadonlyPaths,
		Sysctl:        spec.Linux.Sysctl,
		Devices:       spec.Linux.Devices,
		NewCgroupNS:   plan.newCgroup,
		NewNetNS:      plan.newNet,
		Console:       console,
		OOMScoreAdj:   spec.Process.OOMScoreAdj,
		Process:       pc,
	}
	if plan.newUTS {
		cfg.Hostname, cfg.Domainname = spec.Hostname, spec.Domainname
	}
	if cg != nil {
		cfg.CgroupDirs, cfg.CgroupUnified = cg.Dirs(), cg.Unified()
		if !cfg.CgroupUnified {
			for name := range cfg.CgroupDirs {
				if cgroups.WithoutControllers(name) {
					cfg.CgroupRW = append(cfg.CgroupRW, name)
				}
			}
		}
	}
	if _, err := propagationFlags(cfg.Propagation); err != nil {
		return nil, err
	}
	return cfg, nil
}
