// Package cgroups creates a container's control group, applies the OCI
// resources to it, reports its usage and removes it, on cgroup v1 (one
// directory per controller hierarchy) and cgroup v2 (one unified directory).
//
// A Manager only computes paths when it is made; Create makes the
// directories. So the same constructor serves the monitor that creates a
// container's cgroup, `skiff-shim exec` that joins it, and the engine that
// removes one left behind by a crashed monitor.
package cgroups

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// DefaultRoot is where hosts mount their cgroup hierarchies.
const DefaultRoot = "/sys/fs/cgroup"

// Manager owns one container's cgroup.
type Manager interface {
	// Path is the cgroup path inside each hierarchy, e.g. /skiff/<id>.
	Path() string
	// Unified reports whether this is a cgroup v2 (unified) cgroup.
	Unified() bool
	// Dirs maps each hierarchy's mount directory name ("memory", "cpu,cpuacct";
	// "" for the unified hierarchy) to this cgroup's directory in it.
	Dirs() map[string]string
	// Create makes the cgroup's directories and applies the resources given to
	// the constructor. On error nothing is left behind.
	Create() error
	// Update applies new resources to an existing cgroup.
	Update(r *specs.LinuxResources) error
	// Enter moves process pid (all its threads) into the cgroup.
	Enter(pid int) error
	// Procs lists the processes in the cgroup.
	Procs() ([]int, error)
	// OOMKillCount is the number of processes the kernel's OOM killer killed
	// in the cgroup (0 when the memory controller is not available).
	OOMKillCount() (uint64, error)
	// Stats reports the cgroup's resource usage.
	Stats() (*Stats, error)
	// Freeze stops every process in the cgroup; Thaw resumes them.
	Freeze() error
	Thaw() error
	// Kill sends SIGKILL to every process in the cgroup.
	Kill() error
	// Destroy kills what is left in the cgroup and removes its directories.
	// A cgroup that does not exist is not an error.
	Destroy() error
}

// Stats is a cgroup's resource usage. A value the host cannot report is 0.
type Stats struct {
	CPUUsageNs  uint64 // total CPU time consumed
	MemoryUsage uint64 // bytes charged now
	MemoryLimit uint64 // bytes; 0 when unlimited
	PidsCurrent uint64
	PidsLimit   uint64 // 0 when unlimited
}

// New returns a manager for cgroup path (like /skiff/<id>) on this host's
// cgroup layout: v2 when /sys/fs/cgroup is a cgroup2 mount, v1 otherwise
// (legacy or hybrid, where the v1 controller hierarchies are used). An
// absolute path is taken from each hierarchy's root, a relative one from the
// calling process's own cgroup. r may be nil.
func New(path string, r *specs.LinuxResources) (Manager, error) {
	unified, err := IsUnified()
	if err != nil {
		return nil, err
	}
	if unified {
		own, err := ownCgroup("")
		if err != nil {
			return nil, err
		}
		return newV2(DefaultRoot, joinPath(own, path), r)
	}
	hs, err := v1Hierarchies()
	if err != nil {
		return nil, err
	}
	return newV1(hs, path, r)
}

var (
	unifiedOnce sync.Once
	unifiedVal  bool
	unifiedErr  error
)

// IsUnified reports whether the host runs cgroup v2 only.
func IsUnified() (bool, error) {
	unifiedOnce.Do(func() {
		var st unix.Statfs_t
		if err := unix.Statfs(DefaultRoot, &st); err != nil {
			unifiedErr = fmt.Errorf("cgroups: statfs %s: %w", DefaultRoot, err)
			return
		}
		unifiedVal = st.Type == unix.CGROUP2_SUPER_MAGIC
	})
	return unifiedVal, unifiedErr
}

// joinPath resolves a cgroup path: absolute paths are kept, relative ones are
// taken from base (the caller's own cgroup).
func joinPath(base, path string) string {
	if filepath.IsAbs(path) {
		return filepath.Clean(path)
	}
	return filepath.Join("/", base, path)
}

// ownCgroup returns the calling process's cgroup in the hierarchy that holds
// controller ("" for the unified hierarchy), from /proc/self/cgroup.
func ownCgroup(controller string) (string, error) {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroups: %w", err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		// hierarchy-ID:controller-list:cgroup-path
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if controller == "" {
			if parts[0] == "0" && parts[1] == "" {
				return parts[2], nil
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], nil
			}
		}
	}
	return "/", nil
}

// setting is one file write a resource asks for. A setting whose file is
// missing on this kernel fails only if the user asked for it (all settings
// built from specs.LinuxResources are asked for; optional ones are marked).
type setting struct {
	file     string
	value    string
	alt      *setting // written instead when file does not exist
	optional bool     // skip silently when the file does not exist
}

// writeSetting writes s into dir. The file is opened without O_CREAT: a
// missing cgroup file means the kernel does not support the setting.
func writeSetting(dir string, s setting) error {
	p := filepath.Join(dir, s.file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			if s.alt != nil {
				if aerr := writeSetting(dir, *s.alt); aerr == nil || !errors.Is(aerr, errMissing) {
					return aerr
				}
			}
			if s.optional {
				return nil
			}
			return errdefs.Wrap(errdefs.KindInvalid, fmt.Errorf("cgroups: cannot set %s=%s: %w (%s does not exist)", s.file, s.value, errMissing, p))
		}
		return fmt.Errorf("cgroups: set %s: %w", s.file, err)
	}
	_, err = f.WriteString(s.value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("cgroups: set %s to %q: %w", s.file, s.value, err)
	}
	return nil
}

// errMissing marks a setting the kernel has no file for.
var errMissing = errors.New("not supported on this host")

func readFile(dir, name string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	return string(bytes.TrimSpace(b)), err
}

func readUint(dir, name string) (uint64, error) {
	s, err := readFile(dir, name)
	if err != nil {
		return 0, err
	}
	if s == "max" {
		return 0, nil
	}
	return strconv.ParseUint(s, 10, 64)
}

// keyedValue reads "key value" lines (memory.events, memory.oom_control,
// cpu.stat) and returns key's value; a missing file or key gives 0.
func keyedValue(dir, name, key string) (uint64, error) {
	f, err := os.Open(filepath.Join(dir, name))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, sc.Err()
}

func readProcs(dir string) ([]int, error) {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		pid, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("cgroups: bad pid %q in %s/cgroup.procs", f, dir)
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// treeProcs lists the processes in dir's cgroup and in every cgroup below
// it: a container's processes may sit in sub-cgroups it made itself
// (systemd as PID 1 puts each service in its own).
func treeProcs(dir string) ([]int, error) {
	pids, err := readProcs(dir)
	if err != nil {
		return nil, err
	}
	for _, sub := range subCgroups(dir) {
		more, err := treeProcs(sub)
		if err != nil && !errors.Is(err, os.ErrNotExist) { // gone meanwhile
			return nil, err
		}
		pids = append(pids, more...)
	}
	return pids, nil
}

// subCgroups lists the cgroups directly below dir (a cgroup's only
// subdirectories are cgroups).
func subCgroups(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// removeTree removes dir's cgroup and the cgroups below it, deepest first
// (rmdir refuses a cgroup that has children).
func removeTree(dir string, procs func() ([]int, error)) error {
	var errs []error
	for _, sub := range subCgroups(dir) {
		if err := removeTree(sub, procs); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return removeDir(dir, procs)
}

func enter(dir string, pid int) error {
	return writeSetting(dir, setting{file: "cgroup.procs", value: strconv.Itoa(pid)})
}

// killPids sends SIGKILL to each pid through a pidfd, which keeps the window
// for hitting a reused pid to the few microseconds between reading
// cgroup.procs and pidfd_open.
func killPids(pids []int) {
	for _, pid := range pids {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
		unix.Close(fd)
	}
}

// removeDir removes a cgroup directory, waiting a little for killed
// processes to leave it (rmdir fails with EBUSY until they have exited).
func removeDir(dir string, procs func() ([]int, error)) error {
	delay := 200 * time.Microsecond
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || i >= 60 {
			return fmt.Errorf("cgroups: remove %s: %w", dir, err)
		}
		if pids, _ := procs(); len(pids) > 0 {
			killPids(pids)
		}
		time.Sleep(delay)
		if delay < 50*time.Millisecond {
			delay *= 2
		}
	}
}
