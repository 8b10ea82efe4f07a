package runtime

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Environment of `skiff-shim exec`, read by the C constructor in
// internal/runtime/nsenter. The process itself (argv, env, ids,
// capabilities, rlimits) comes on fd 3, resolved by ExecCommand.
const (
	envNsenter = "_SKIFF_NSENTER"      // host pid whose namespaces to join
	envProcs   = "_SKIFF_CGROUP_PROCS" // colon-separated cgroup.procs files to join first
	envStatus  = "_SKIFF_EXEC_STATUS"  // fd on which a failed start is reported
)

// ExecOpts describes a process to run in a running container.
type ExecOpts struct {
	ShimPath     string
	Bundle       string      // the container's bundle: its seccomp filter file is there
	ContainerPid int         // host pid of the container's first process
	Spec         *specs.Spec // the container's spec: cgroup, capabilities, rlimits, no_new_privs
	// Process gives Args, Env and Cwd (default: the container's cwd), and
	// User.Username as "user[:group]" (resolved in the container's
	// /etc/passwd). Capabilities and Rlimits, when set, replace the
	// container's (a privileged exec); NoNewPrivileges adds to it.
	Process specs.Process
}

// ExecCmd is a process to run in a running container (see ExecCommand).
// Close releases what only its start needs; call it once it has started, or
// when it will not be.
type ExecCmd struct {
	*exec.Cmd
	blob      *os.File // the process to run, for the shim's fd 3
	cgroupDir *os.File // cgroup v2: the directory the process is born in
	// The start status pipe (the shim's fd 4): the shim reports there,
	// not on the process's stderr, why the program could not be started;
	// it closes empty once the program runs.
	statusR, statusW *os.File
}

// Started waits, after Start, until the program is running in the
// container (nil) or could not be started: then the error says why, as
// dockerd's, and is of kind CommandNotFound (the shim exits 127) or
// CannotInvoke (126); the shim still has to be waited for.
func (c *ExecCmd) Started() error {
	if c.statusW != nil {
		c.statusW.Close()
		c.statusW = nil
	}
	if c.statusR == nil {
		return errdefs.System("exec: start status already read")
	}
	b, err := io.ReadAll(io.LimitReader(c.statusR, 64<<10))
	c.statusR.Close()
	c.statusR = nil
	if err != nil {
		return errdefs.System("exec: read start status: %v", err)
	}
	if len(b) == 0 {
		return nil
	}
	// "KIND message": nsenter.c's fail and die.
	kind, msg, _ := strings.Cut(strings.TrimRight(string(b), "\n"), " ")
	return errdefs.Wrap(errdefs.KindByName(kind), errors.New(msg))
}

// Close releases the descriptors held for the start.
func (c *ExecCmd) Close() error {
	for _, f := range []**os.File{&c.blob, &c.cgroupDir, &c.statusR, &c.statusW} {
		if *f != nil {
			(*f).Close()
			*f = nil
		}
	}
	return nil
}

// ExecCommand returns a command that runs opts.Process inside the container.
// Here, in the caller, the user is resolved in the container's /etc/passwd
// and /etc/group (read through /proc/PID/root, confined to it) and the
// capability sets are computed; `skiff-shim exec` then does the rest in C,
// before any Go runtime starts: it joins the container's cgroup and
// namespaces, forks into its pid namespace, applies rlimits, user,
// capabilities, cwd, umask and no_new_privs (after the spec's seccomp filter,
// the one the engine compiled for the container), finds the program in the
// container's PATH as the container's user, and execs it. (A Go runtime in
// that child cost about 4 ms per exec.) The caller sets
// Stdin/Stdout/Stderr (and Setsid/Setctty for a terminal, keeping the other
// SysProcAttr fields), then Start, Started, Close and Wait.
// The exit status is the program's, 128+signal if it was killed, 127 if it
// was not found, 126 if it could not be run (Started then says why).
func ExecCommand(opts ExecOpts) (*ExecCmd, error) {
	spec := opts.Spec
	if spec == nil || spec.Process == nil || spec.Linux == nil {
		return nil, errdefs.Invalid("exec: spec needs process and linux sections")
	}
	if opts.ShimPath == "" || opts.ContainerPid <= 0 {
		return nil, errdefs.Invalid("exec: shim path and container pid are required")
	}
	p := opts.Process
	if p.Capabilities == nil {
		p.Capabilities = spec.Process.Capabilities
	}
	if len(p.Rlimits) == 0 {
		p.Rlimits = spec.Process.Rlimits
	}
	if p.Cwd == "" {
		p.Cwd = spec.Process.Cwd
	}
	p.NoNewPrivileges = p.NoNewPrivileges || spec.Process.NoNewPrivileges
	pc, err := newProcConfig(&p, nil)
	if err != nil {
		return nil, err
	}
	// --group-add applies to exec'd processes too, whatever their user.
	pc.Groups = groupsOf(spec.Annotations)
	for _, f := range append(append([]string{pc.Cwd, pc.User}, pc.Args...), pc.Env...) {
		if strings.IndexByte(f, 0) >= 0 { // execve could not take it either
			return nil, errdefs.Invalid("exec: %q contains a NUL byte", f)
		}
	}
	// A user the container does not know fails the process, not the call:
	// the exec then exits 126 with the message, as with Docker.
	u, fail := resolveUserOf(opts.ContainerPid, &pc)
	if errdefs.KindOf(fail) == errdefs.KindConflict {
		return nil, fail
	}
	if fail != nil {
		u = &execUser{}
	}
	src, err := seccompOf(spec)
	if err != nil {
		return nil, err
	}
	filter := src.hex
	if src.file != "" {
		path := src.file
		if !filepath.IsAbs(path) {
			path = filepath.Join(opts.Bundle, path)
		}
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, errdefs.System("exec: read seccomp filter: %v", err)
		}
		if _, err := rawFilter(raw); err != nil {
			return nil, err
		}
		filter = hex.EncodeToString(raw)
	}
	blob, err := memfdWith("skiff-exec", encodeExec(fail, &pc, u, newCaps(pc.Caps), filter))
	if err != nil {
		return nil, errdefs.System("exec: %v", err)
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		blob.Close()
		return nil, errdefs.System("exec: status pipe: %v", err)
	}
	c := &ExecCmd{Cmd: &exec.Cmd{
		Path:        opts.ShimPath,
		Args:        []string{"skiff-shim", "exec"},
		Env:         []string{envNsenter + "=" + strconv.Itoa(opts.ContainerPid), envStatus + "=4"},
		ExtraFiles:  []*os.File{blob, statusW}, // fd 3, fd 4
		SysProcAttr: &syscall.SysProcAttr{},
	}, blob: blob, statusR: statusR, statusW: statusW}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if spec.Linux.CgroupsPath == "" {
		return c, nil
	}
	var cg cgroups.Manager
	if cg, err = cgroups.New(spec.Linux.CgroupsPath, nil); err != nil {
		return nil, err
	}
	if cg.Unified() {
		// Born in the cgroup (CLONE_INTO_CGROUP): a move would take the
		// kernel's threadgroup lock for writing, an RCU grace period.
		if c.cgroupDir, err = os.Open(execCgroupDir(cg.Dirs()[""], opts.ContainerPid)); err != nil {
			return nil, errdefs.System("exec: open cgroup: %v", err)
		}
		c.SysProcAttr.UseCgroupFD = true
		c.SysProcAttr.CgroupFD = int(c.cgroupDir.Fd())
		return c, nil
	}
	var files []string
	for name, d := range cg.Dirs() {
		// A container started by a skiff that placed it only in the
		// controller hierarchies (live restore across an upgrade) has no
		// directory in name=systemd or the hybrid cgroup2.
		if cgroups.WithoutControllers(name) {
			if _, err := os.Stat(d); err != nil {
				continue
			}
		}
		files = append(files, d+"/cgroup.procs")
	}
	c.Env = append(c.Env, envProcs+"="+strings.Join(files, ":"))
	return c, nil
}

// ExecMain is `skiff-shim exec` reached in Go: the C constructor takes
// every exec started by ExecCommand to its execve, so only a shim started
// some other way gets here.
func ExecMain() {
	fmt.Fprintln(os.Stderr, "skiff-shim exec: not started by the skiff engine")
	os.Exit(126)
}

// maxUserFile bounds what is read of a container's /etc/passwd and
// /etc/group.
const maxUserFile = 4 << 20

// resolveUserOf resolves pc's user in the /etc/passwd and /etc/group of the
// root of process pid (the container's), confined to that root.
func resolveUserOf(pid int, pc *procConfig) (*execUser, error) {
	root, err := unix.Open("/proc/"+strconv.Itoa(pid)+"/root", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errdefs.Conflict("exec: the container's root is gone: %v", err)
	}
	defer unix.Close(root)
	// The files are the container's: the engine reads them only if they
	// are regular files (not a FIFO that never answers, or /dev/zero), and
	// no more than maxUserFile of each.
	open := func(name string) (io.Reader, func(), error) {
		fd, err := openInRoot(root, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
		if err == unix.ENOENT {
			return nil, func() {}, nil
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", name, err)
		}
		f := os.NewFile(uintptr(fd), name)
		if isDevNull(f) { // a masked path: empty, as runc reads it
			f.Close()
			return strings.NewReader(""), func() {}, nil
		}
		if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, nil, fmt.Errorf("read %s: not a regular file", name)
		}
		return io.LimitReader(f, maxUserFile), func() { f.Close() }, nil
	}
	passwd, closeP, err := open("/etc/passwd")
	if err != nil {
		return nil, err
	}
	defer closeP()
	group, closeG, err := open("/etc/group")
	if err != nil {
		return nil, err
	}
	defer closeG()
	return resolveUser(pc, passwd, group)
}

// isDevNull: f is the null device (1:3), what a masked file is bound to.
func isDevNull(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		return false
	}
	return unix.Major(uint64(st.Rdev)) == 1 && unix.Minor(uint64(st.Rdev)) == 3
}

// encodeExec is the process for nsenter.c: NUL-terminated fields in this
// order (numbers in decimal), read by read_exec there.
//
//	failure (a message to print, exiting 126; "" to run the process),
//	argc, argv..., envc, env..., cwd, umask, no_new_privs,
//	uid, gid, ngroups, gids...,
//	has_caps, last_cap, bounding, effective, permitted, inheritable, ambient,
//	nrlimits, (name, resource, soft, hard)...,
//	seccomp filter (AnnotationSeccomp's hex text, "" for none)
func encodeExec(fail error, pc *procConfig, u *execUser, c *caps, filter string) []byte {
	var b []byte
	str := func(s string) { b = append(append(b, s...), 0) }
	num := func(v uint64) { str(strconv.FormatUint(v, 10)) }
	if fail != nil {
		str(fail.Error())
	} else {
		str("")
	}
	list := func(ss []string) {
		num(uint64(len(ss)))
		for _, s := range ss {
			str(s)
		}
	}
	list(pc.Args)
	list(withHome(pc.Env, u.Home))
	str(pc.Cwd)
	umask := uint64(0o022)
	if pc.Umask != nil {
		umask = uint64(*pc.Umask)
	}
	num(umask)
	nnp := uint64(0)
	if pc.NoNewPrivs {
		nnp = 1
	}
	num(nnp)
	num(uint64(u.UID))
	num(uint64(u.GID))
	num(uint64(len(u.Sgids)))
	for _, g := range u.Sgids {
		num(uint64(g))
	}
	if c == nil {
		num(0)
		for range 6 {
			num(0)
		}
	} else {
		num(1)
		num(uint64(c.last))
		for _, s := range []capSet{c.bounding, c.effective, c.permitted, c.inheritable, c.ambient} {
			num(uint64(s))
		}
	}
	num(uint64(len(pc.Rlimits)))
	for _, r := range pc.Rlimits {
		str(r.Type)
		num(uint64(rlimitTypes[r.Type])) // newProcConfig checked the type
		num(r.Soft)
		num(r.Hard)
	}
	str(filter)
	return b
}

// memfdWith returns a memory file holding data, at offset 0.
func memfdWith(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write %s: %w", name, err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("seek %s: %w", name, err)
	}
	return f, nil
}

// execCgroupDir is the cgroup v2 directory an exec'd process starts in:
// the container's cgroup dir, or, once the container has delegated it
// (systemd as PID 1 moves itself to init.scope and enables controllers in
// the container cgroup's subtree_control, after which the kernel keeps
// processes out of it, "no internal processes", and CLONE_INTO_CGROUP
// fails with EBUSY), the cgroup the container's first process is in now,
// as runc does. That cgroup is always below dir: the container cannot see
// or move into any other.
func execCgroupDir(dir string, initPid int) string {
	sc, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil || len(strings.TrimSpace(string(sc))) == 0 {
		return dir
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(initPid) + "/cgroup")
	if err != nil {
		return dir
	}
	for _, l := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(l, "0::"); ok {
			sub := filepath.Join(cgroups.DefaultRoot, p)
			if strings.HasPrefix(sub, dir+"/") {
				return sub
			}
		}
	}
	return dir
}
