package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Environment of `skiff-shim exec`, read by the C constructor in
// internal/runtime/nsenter (the first two) and by ExecMain.
const (
	envNsenter = "_SKIFF_NSENTER"      // host pid whose namespaces to join
	envProcs   = "_SKIFF_CGROUP_PROCS" // colon-separated cgroup.procs files to join first
	envConfig  = "_SKIFF_EXEC_CONFIG"  // procConfig as JSON
)

// ExecOpts describes a process to run in a running container.
type ExecOpts struct {
	ShimPath     string
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
	cgroupDir *os.File // cgroup v2: the directory the process is born in
}

// Close releases the cgroup directory held for the start.
func (c *ExecCmd) Close() error {
	if c.cgroupDir == nil {
		return nil
	}
	err := c.cgroupDir.Close()
	c.cgroupDir = nil
	return err
}

// ExecCommand returns a command that runs opts.Process inside the container:
// `skiff-shim exec` joins the container's cgroup and namespaces before the Go
// runtime starts, forks into its pid namespace and execs. The caller sets
// Stdin/Stdout/Stderr (and Setsid/Setctty for a terminal, keeping the other
// SysProcAttr fields), then Start, Close and Wait.
// The exit status is the program's, 128+signal if it was killed, 127 with a
// message on stderr if it was not found, 126 if it could not be run.
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
	cfg, err := json.Marshal(pc)
	if err != nil {
		return nil, errdefs.System("exec: encode config: %v", err)
	}
	c := &ExecCmd{Cmd: &exec.Cmd{
		Path:        opts.ShimPath,
		Args:        []string{"skiff-shim", "exec"},
		Env:         []string{envNsenter + "=" + strconv.Itoa(opts.ContainerPid), envConfig + "=" + string(cfg)},
		SysProcAttr: &syscall.SysProcAttr{},
	}}
	if spec.Linux.CgroupsPath == "" {
		return c, nil
	}
	cg, err := cgroups.New(spec.Linux.CgroupsPath, nil)
	if err != nil {
		return nil, err
	}
	if cg.Unified() {
		// Born in the cgroup (CLONE_INTO_CGROUP): a move would take the
		// kernel's threadgroup lock for writing, an RCU grace period.
		if c.cgroupDir, err = os.Open(cg.Dirs()[""]); err != nil {
			return nil, errdefs.System("exec: open cgroup: %v", err)
		}
		c.SysProcAttr.UseCgroupFD = true
		c.SysProcAttr.CgroupFD = int(c.cgroupDir.Fd())
		return c, nil
	}
	var files []string
	for _, d := range cg.Dirs() {
		files = append(files, d+"/cgroup.procs")
	}
	c.Env = append(c.Env, envProcs+"="+strings.Join(files, ":"))
	return c, nil
}

// ExecMain is the Go side of `skiff-shim exec`, running in the container's
// namespaces and cgroup (the C constructor put it there): it applies user,
// rlimits, no_new_privs and capabilities, and execs. It never returns; on
// failure it prints Docker's message and exits 127 (not found) or 126.
func ExecMain() {
	goruntime.LockOSThread()
	// The constructor made us non-dumpable (see nsenter.c).
	err := runExec()
	fmt.Fprintln(os.Stderr, err)
	if errdefs.KindOf(err) == errdefs.KindCommandNotFound {
		os.Exit(127)
	}
	os.Exit(126)
}

func runExec() error {
	if os.Getenv(envNsenter) == "" {
		return errdefs.Invalid("skiff-shim exec: not started by runtime.ExecCommand")
	}
	var pc procConfig
	if err := json.Unmarshal([]byte(os.Getenv(envConfig)), &pc); err != nil {
		return errdefs.System("skiff-shim exec: decode config: %v", err)
	}
	if err := setRlimits(pc.Rlimits); err != nil {
		return err
	}
	pp, err := prepare(&pc)
	if err != nil {
		return err
	}
	return execProcess(pp)
}
