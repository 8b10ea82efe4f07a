package cri

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// checkPropagation refuses a mount whose propagation cannot work from its
// source, with containerd's words: Bidirectional needs the host path on a
// shared mount, HostToContainer on a shared or slave one (else the host's
// mounts never reach the container, silently).
func checkPropagation(m *runtimeapi.Mount) error {
	var want []string
	var kind string
	switch m.GetPropagation() {
	case runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL:
		want, kind = []string{"shared:"}, "shared"
	case runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER:
		want, kind = []string{"shared:", "master:"}, "shared or slave"
	default:
		return nil
	}
	mp, optional, err := mountOf(m.GetHostPath())
	if err != nil {
		return errdefs.Invalid("mount %s: %v", m.GetHostPath(), err)
	}
	for _, f := range strings.Fields(optional) {
		for _, w := range want {
			if strings.HasPrefix(f, w) {
				return nil
			}
		}
	}
	return errdefs.Invalid("path %q is mounted on %q but it is not a %s mount", m.GetHostPath(), mp, kind)
}

// mountOf finds the mount that holds path in the engine's mount namespace
// (the deepest mount point above it): its mount point and its optional
// fields (shared:N, master:N) from /proc/self/mountinfo.
func mountOf(path string) (mountpoint, optional string, err error) {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", "", err
	}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superopts
		fields := strings.Fields(sc.Text())
		if len(fields) < 7 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp != real && !strings.HasPrefix(real, strings.TrimSuffix(mp, "/")+"/") {
			continue
		}
		if len(mp) < len(mountpoint) {
			continue
		}
		var opt []string
		for _, o := range fields[6:] {
			if o == "-" {
				break
			}
			opt = append(opt, o)
		}
		mountpoint, optional = mp, strings.Join(opt, " ")
	}
	if err := sc.Err(); err != nil {
		return "", "", err
	}
	if mountpoint == "" {
		return "", "", fmt.Errorf("no mount holds %s", real)
	}
	return mountpoint, optional, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var c byte
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &c); err == nil {
				b.WriteByte(c)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
