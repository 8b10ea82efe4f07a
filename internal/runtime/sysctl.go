package runtime

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// SysctlScope tells which namespaces a container has of its own (not the
// host's): only sysctls that live in one of them may be written.
type SysctlScope struct {
	IPC, Net, UTS bool
}

// ipcSysctls are the kernel.* keys of the IPC namespace; fs.mqueue.* also
// belongs to it.
var ipcSysctls = map[string]bool{
	"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true, "kernel.sem": true,
	"kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true, "kernel.shm_rmid_forced": true,
}

// NormalizeSysctl gives key in dotted form: sysctl(8) also accepts '/' as
// the separator, in which case a '.' is part of a name (an interface
// "eth0.100"), as runc reads it.
func NormalizeSysctl(key string) string {
	i := strings.IndexAny(key, "./")
	if i < 0 || key[i] == '.' {
		return key
	}
	return strings.Map(func(r rune) rune {
		switch r {
		case '.':
			return '/'
		case '/':
			return '.'
		}
		return r
	}, key)
}

// sysctlPath is the file under /proc/sys of a dotted key ('/' inside a
// component is a '.' of the name), or an error for a key that names no
// file below /proc/sys.
func sysctlPath(key string) (string, error) {
	parts := strings.Split(key, ".")
	for i, p := range parts {
		p = strings.ReplaceAll(p, "/", ".")
		if p == "" || p == "." || p == ".." || strings.ContainsAny(p, " \t\n\x00") {
			return "", errdefs.Invalid("invalid sysctl %q", key)
		}
		parts[i] = p
	}
	return "/proc/sys/" + strings.Join(parts, "/"), nil
}

// CheckSysctl refuses a sysctl that is not namespaced, or whose namespace
// the container shares with the host, with runc's words (dockerd passes
// sysctls on to runc, which refuses them so). Nothing outside the
// container's own namespaces may ever be written.
func CheckSysctl(key string, own SysctlScope) error {
	s := NormalizeSysctl(key)
	if _, err := sysctlPath(s); err != nil {
		return errdefs.Invalid("invalid sysctl %q", key)
	}
	switch {
	case ipcSysctls[s] || strings.HasPrefix(s, "fs.mqueue."):
		if !own.IPC {
			return errdefs.Invalid("sysctl %q is not allowed in the hosts ipc namespace", s)
		}
		return nil
	case strings.HasPrefix(s, "net."):
		if !own.Net {
			return errdefs.Invalid("sysctl %q not allowed in host network namespace", s)
		}
		return nil
	case own.UTS && s == "kernel.domainname":
		return nil
	case own.UTS && s == "kernel.hostname":
		return errdefs.Invalid("sysctl %q is not allowed as it conflicts with the OCI %q field", s, "hostname")
	case strings.HasPrefix(s, "user."):
		// ucounts are only namespaced by a user namespace, which skiff
		// never gives a container.
		return errdefs.Invalid("setting ucounts without a user namespace not allowed: %v", s)
	}
	return errdefs.Invalid("sysctl %q is not in a separate kernel namespace", s)
}

// sysctlScopeOf says which namespaces of the spec are the container's own:
// new ones, or joined ones that are not ours (the monitor's are the host's).
func sysctlScopeOf(l *specs.Linux) (SysctlScope, error) {
	own := func(typ specs.LinuxNamespaceType, self string) (bool, error) {
		for _, ns := range l.Namespaces {
			if ns.Type != typ {
				continue
			}
			if ns.Path == "" {
				return true, nil
			}
			var a, b unix.Stat_t
			if err := unix.Stat("/proc/self/ns/"+self, &a); err != nil {
				return false, errdefs.System("stat /proc/self/ns/%s: %v", self, err)
			}
			if err := unix.Stat(ns.Path, &b); err != nil {
				return false, errdefs.Invalid("invalid %s namespace path %s: %v", typ, ns.Path, err)
			}
			return a.Dev != b.Dev || a.Ino != b.Ino, nil
		}
		return false, nil
	}
	var sc SysctlScope
	var err error
	if sc.IPC, err = own(specs.IPCNamespace, "ipc"); err != nil {
		return sc, err
	}
	if sc.Net, err = own(specs.NetworkNamespace, "net"); err != nil {
		return sc, err
	}
	if sc.UTS, err = own(specs.UTSNamespace, "uts"); err != nil {
		return sc, err
	}
	return sc, nil
}

// checkSysctls is the runtime's own check of the spec's sysctls (the engine
// checks them at create too: a spec from elsewhere must not reach the host).
func checkSysctls(l *specs.Linux) error {
	if len(l.Sysctl) == 0 {
		return nil
	}
	sc, err := sysctlScopeOf(l)
	if err != nil {
		return err
	}
	for k := range l.Sysctl {
		if err := CheckSysctl(k, sc); err != nil {
			return err
		}
	}
	return nil
}
