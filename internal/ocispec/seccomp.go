package ocispec

import (
	"strings"
	"sync"

	"github.com/moby/moby/api/types/container"
	profiles "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/runtime/seccomp"
)

// AnnotationSeccomp carries the compiled filter of the container's seccomp
// profile (seccomp.Encode), the only form of it the spec has: the engine
// compiles each distinct profile once, and the shim, which then needs no
// syscall tables, installs it.
const AnnotationSeccomp = "org.skiff.seccomp.bpf"

// compiled is a profile for one set of capabilities, and its filter.
type compiled struct {
	profile *specs.LinuxSeccomp
	bpf     string
}

// seccompCache maps profile source + bounding capabilities to *compiled.
// Profiles in use are few (the default one for a few capability sets):
// compiling Docker's default profile takes about 0.3 ms, which every start
// would otherwise pay.
var seccompCache sync.Map

// SeccompProfile returns the profile --security-opt seccomp=... asks for
// (Docker's default one when none is given) for a container with the
// bounding capabilities caps, and its compiled filter; nil for a
// privileged or unconfined container. A profile that does not parse or
// compile is Invalid. The profile returned is shared: do not change it.
func SeccompProfile(hc *container.HostConfig, caps []string) (*specs.LinuxSeccomp, string, error) {
	if hc.Privileged {
		return nil, "", nil
	}
	src := "builtin"
	for _, o := range hc.SecurityOpt {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, _ = strings.Cut(o, ":")
		}
		if k == "seccomp" {
			src = v
		}
	}
	if src == "unconfined" {
		return nil, "", nil
	}
	key := src + "\x00" + strings.Join(caps, ",")
	if c, ok := seccompCache.Load(key); ok {
		return c.(*compiled).profile, c.(*compiled).bpf, nil
	}
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	var prof *specs.LinuxSeccomp
	var err error
	if src == "builtin" || src == "" {
		prof, err = profiles.GetDefaultProfile(rs)
	} else {
		prof, err = profiles.LoadProfile(src, rs)
	}
	if err != nil {
		return nil, "", errdefs.Invalid("%v", err)
	}
	if prof == nil { // a profile with no default action and no syscalls
		return nil, "", nil
	}
	prog, err := seccomp.Compile(prof)
	if err != nil {
		return nil, "", errdefs.Invalid("invalid seccomp profile: %v", err)
	}
	c := &compiled{profile: prof, bpf: seccomp.Encode(prog)}
	seccompCache.Store(key, c)
	return c.profile, c.bpf, nil
}
