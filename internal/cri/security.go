package cri

import (
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// seccompOpt is the engine's security option for a CRI seccomp profile:
// the typed one, else the deprecated path ("runtime/default",
// "docker/default", "unconfined", "localhost/<path>"). As under containerd,
// no profile at all is unconfined (the kubelet always names one); a
// localhost profile is read here and passed inline, as the docker CLI does.
func seccompOpt(p *runtimeapi.SecurityProfile, legacy string) (string, error) {
	local := ""
	switch {
	case p != nil && p.ProfileType == runtimeapi.SecurityProfile_RuntimeDefault:
		return "", nil
	case p != nil && p.ProfileType == runtimeapi.SecurityProfile_Unconfined:
		return "seccomp=unconfined", nil
	case p != nil && p.ProfileType == runtimeapi.SecurityProfile_Localhost:
		local = p.LocalhostRef
	case p != nil:
		return "", errdefs.Invalid("unknown seccomp profile type %v", p.ProfileType)
	case legacy == "" || legacy == "unconfined":
		return "seccomp=unconfined", nil
	case legacy == "runtime/default" || legacy == "docker/default":
		return "", nil
	case strings.HasPrefix(legacy, "localhost/"):
		local = strings.TrimPrefix(legacy, "localhost/")
	default:
		return "", errdefs.Invalid("unknown seccomp profile %q", legacy)
	}
	if !filepath.IsAbs(local) {
		return "", errdefs.Invalid("seccomp profile %q: a localhost profile needs an absolute path", local)
	}
	b, err := os.ReadFile(local)
	if err != nil {
		return "", errdefs.Invalid("seccomp profile: %v", err)
	}
	return "seccomp=" + string(b), nil
}

// checkAppArmor refuses an AppArmor profile skiff cannot apply: skiff does
// not load AppArmor profiles. Unconfined and the runtime default (which is
// no profile on a host without AppArmor, as containerd treats it) pass.
func checkAppArmor(p *runtimeapi.SecurityProfile, legacy string) error {
	switch {
	case p != nil && p.ProfileType == runtimeapi.SecurityProfile_Localhost,
		p == nil && strings.HasPrefix(legacy, "localhost/"):
		return errdefs.NotImplemented("AppArmor profiles are not supported by skiff")
	case p == nil && legacy != "" && legacy != "unconfined" && legacy != "runtime/default":
		return errdefs.Invalid("unknown AppArmor profile %q", legacy)
	}
	return nil
}
