package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

var rlimitTypes = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_DATA": unix.RLIMIT_DATA,
	"RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK,
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

var nsFlags = map[specs.LinuxNamespaceType]int{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// setRlimits applies the limits to the calling process. A limit above what
// the kernel allows us (a hard limit above our own without
// CAP_SYS_RESOURCE, or RLIMIT_NOFILE above fs.nr_open) is clamped to our
// current hard limit: a container starts with less rather than not at all.
func setRlimits(rls []specs.POSIXRlimit) error {
	for _, r := range rls {
		res, ok := rlimitTypes[r.Type]
		if !ok {
			return errdefs.Invalid("unknown rlimit type %q", r.Type)
		}
		want := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		if want.Cur > want.Max {
			want.Cur = want.Max
		}
		// unix.Prlimit goes through the syscall package, which then stops
		// resetting RLIMIT_NOFILE to its start-up value at execve.
		if err := unix.Prlimit(0, res, &want, nil); err == nil {
			continue
		}
		var cur unix.Rlimit
		if err := unix.Prlimit(0, res, nil, &cur); err != nil {
			return fmt.Errorf("get %s: %w", r.Type, err)
		}
		if want.Max > cur.Max {
			want.Max = cur.Max
		}
		if want.Cur > want.Max {
			want.Cur = want.Max
		}
		if err := unix.Prlimit(0, res, &want, nil); err != nil {
			return fmt.Errorf("set %s to %d:%d: %w", r.Type, want.Cur, want.Max, err)
		}
	}
	return nil
}

// prepared is everything execProcess needs, computed while files can still
// be read as root.
type prepared struct {
	proc *procConfig
	user *execUser
	caps *caps
	env  []string
	// filter is the seccomp filter to install, nil for none.
	filter []unix.SockFilter
}

func prepare(p *procConfig, filter []unix.SockFilter) (*prepared, error) {
	u, err := resolveUserInRoot(p)
	if err != nil {
		return nil, err
	}
	return &prepared{proc: p, user: u, caps: newCaps(p.Caps), env: withHome(p.Env, u.Home), filter: filter}, nil
}

// execProcess switches to the container's user and capabilities and
// execs its program. It only returns on failure, with an errdefs kind:
// CommandNotFound (127), CannotInvoke (126) or System.
//
// It must run on a locked OS thread: capabilities, the keep-caps flag and
// (here, on purpose) the uid and gids are per thread, and execve keeps only
// the calling thread.
func execProcess(pp *prepared) error {
	p, u := pp.proc, pp.user
	// The program starts with stdio only, whatever init inherited: every
	// other descriptor goes at execve (runc does the same).
	if err := markCloseOnExecFrom(3); err != nil {
		return errdefs.System("close inherited descriptors: %v", err)
	}
	// The seccomp filter first, while init still has CAP_SYS_ADMIN (no
	// no_new_privs needed); everything below is then filtered too, as
	// with runc, and Docker's profiles allow it.
	if err := installFilter(pp.filter); err != nil {
		return err
	}
	if pp.caps != nil {
		if err := pp.caps.dropBounding(); err != nil {
			return errdefs.System("drop bounding capabilities: %v", err)
		}
		// Keep the permitted set across the switch to a non-root uid; the
		// sets are then set explicitly below.
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
			return errdefs.System("set keepcaps: %v", err)
		}
	}
	if err := switchUser(u); err != nil {
		return err
	}
	if pp.caps != nil {
		if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
			return errdefs.System("clear keepcaps: %v", err)
		}
		if err := pp.caps.apply(); err != nil {
			return errdefs.System("set capabilities: %v", err)
		}
	}
	if err := unix.Chdir(p.Cwd); err != nil {
		return errdefs.System("chdir to cwd (%q) set in config.json failed: %v", p.Cwd, err)
	}
	umask := uint32(0o022)
	if p.Umask != nil {
		umask = *p.Umask
	}
	unix.Umask(int(umask))
	if p.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return errdefs.System("set no_new_privs: %v", err)
		}
	}
	path, err := lookPath(p.Args[0], pp.env)
	if err != nil {
		return err
	}
	err = syscall.Exec(path, p.Args, pp.env)
	return execError(p.Args[0], err)
}

// switchUser sets groups, gid and uid of the calling thread only (raw
// syscalls, not Go's all-threads setuid): only this thread execs, and the
// others are discarded by execve.
func switchUser(u *execUser) error {
	gids := u.Sgids
	var gp unsafe.Pointer
	if len(gids) > 0 {
		gp = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(gp), 0); e != 0 {
		return errdefs.System("setgroups: %v", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return errdefs.System("setgid %d: %v", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return errdefs.System("setuid %d: %v", u.UID, e)
	}
	return nil
}

// lookPath finds argv0 in the PATH of env (the container's, not ours), the
// way execvp does, with Docker's messages.
func lookPath(argv0 string, env []string) (string, error) {
	if strings.Contains(argv0, "/") {
		if err := checkExecutable(argv0); err != nil {
			return "", err
		}
		return argv0, nil
	}
	pathEnv := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathEnv = v
		}
	}
	// Like runc (Go's exec.LookPath), a candidate that is not executable is
	// skipped, and none found is "not found" (127).
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, argv0)
		if checkExecutable(p) == nil {
			return p, nil
		}
	}
	return "", errdefs.CommandNotFound("exec: %q: executable file not found in $PATH", argv0)
}

func checkExecutable(p string) error {
	st, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return errdefs.CommandNotFound("exec: %q: stat %s: no such file or directory", p, p)
		}
		return errdefs.CannotInvoke("exec: %q: %v", p, err)
	}
	if st.IsDir() {
		return errdefs.Wrap(errdefs.KindCannotInvoke, fmt.Errorf("exec: %q: %w", p, unix.EISDIR))
	}
	// Access as the effective (container) user, capabilities included.
	if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
		return errdefs.CannotInvoke("exec: %q: permission denied", p)
	}
	return nil
}

// execError classifies an execve failure: a missing file (or a script's
// missing interpreter) is 127, anything else about the file 126.
func execError(argv0 string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR):
		return errdefs.CommandNotFound("exec: %q: %v", argv0, err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOEXEC),
		errors.Is(err, unix.EISDIR), errors.Is(err, unix.ETXTBSY), errors.Is(err, unix.ELOOP):
		return errdefs.CannotInvoke("exec: %q: %v", argv0, err)
	default:
		return errdefs.System("exec: %q: %v", argv0, err)
	}
}

// exitCodeFor is the exit status a failed init or exec reports, as Docker
// records it.
func exitCodeFor(err error) int { return errdefs.StartExitCode(err) }

// makeCwd creates the working directory when missing (as Docker does),
// owned by root, before the user switch.
func makeCwd(cwd string) error {
	if _, err := os.Stat(cwd); err == nil || !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		return errdefs.System("create working directory %s: %v", cwd, err)
	}
	return nil
}
