package builder

import (
	"runtime"
	"strings"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// platform is an OCI platform (os/arch/variant).
type platform struct{ os, arch, variant string }

// hostPlatform is the only platform this builder produces: it runs RUN
// steps natively, without emulation.
func hostPlatform() platform {
	p := platform{os: "linux", arch: runtime.GOARCH}
	if p.arch == "arm64" {
		p.variant = "v8"
	}
	return p
}

func (p platform) String() string {
	s := p.os + "/" + p.arch
	if p.variant != "" {
		s += "/" + p.variant
	}
	return s
}

// archAliases maps the names uname and distributions use to Go's.
var archAliases = map[string]string{
	"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "armhf": "arm", "armel": "arm", "i386": "386",
}

// checkPlatform accepts spec ("os[/arch[/variant]]", or "local") when it
// names the host's platform and refuses any other clearly: building for
// another platform needs emulation this builder does not have.
func checkPlatform(spec string) error {
	host := hostPlatform()
	s := strings.ToLower(strings.TrimSpace(spec))
	if s == "" || s == "local" {
		return nil
	}
	parts := strings.Split(s, "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.Invalid("invalid platform %q: expected os[/arch[/variant]]", spec)
	}
	ok := parts[0] == host.os
	if ok && len(parts) > 1 {
		arch := parts[1]
		if a, alias := archAliases[arch]; alias {
			arch = a
		}
		ok = arch == host.arch
		if ok && len(parts) > 2 && host.variant != "" {
			ok = parts[2] == host.variant
		}
	}
	if !ok {
		return errdefs.Invalid("platform %q is not supported: this builder builds only for %s", spec, host)
	}
	return nil
}

// platformArgs are the automatic platform args BuildKit defines
// (TARGETPLATFORM, BUILDARCH, ...), usable in FROM lines and in stages
// that declare them, so Dockerfiles written for BuildKit build here too.
func platformArgs() map[string]string {
	p := hostPlatform()
	m := map[string]string{}
	for _, prefix := range []string{"BUILD", "TARGET"} {
		m[prefix+"PLATFORM"] = p.String()
		m[prefix+"OS"] = p.os
		m[prefix+"ARCH"] = p.arch
		m[prefix+"VARIANT"] = p.variant
	}
	return m
}
