package runtime

import (
	"encoding/json"
	"io"
	"os"
	goruntime "runtime"
	"runtime/debug"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/faults"
)

// initSyncFd is where Create passes init its end of the sync socketpair.
const initSyncFd = 3

// InitMain is `skiff-shim init`: it runs as the container's first process,
// in its new namespaces, sets the container up, reports ready, waits for
// Start and execs the container's program. It never returns.
func InitMain() {
	// Capabilities and uid switch are per thread, and execve keeps only the
	// calling thread: everything from here runs on this one.
	goruntime.LockOSThread()
	// A short-lived process with little garbage: skip the collector.
	debug.SetGCPercent(-1)
	// Until execve, /proc/1/exe is the host's skiff-shim binary: keep other
	// processes (a shared pid namespace) from opening it (CVE-2019-5736).
	// execve makes the program dumpable again.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	sock := os.NewFile(initSyncFd, "sync")
	// Closed by a successful execve: the parent's EOF means "started".
	unix.CloseOnExec(initSyncFd)
	err := runInit(sock)
	if err == io.EOF {
		os.Exit(1) // the parent went away before Start: nothing to report
	}
	_ = writeMsg(sock, msgError, encodeError(err))
	os.Exit(exitCodeFor(err))
}

func runInit(sock *os.File) error {
	typ, payload, err := readMsg(sock)
	if err != nil {
		return err
	}
	if typ != msgConfig {
		return errdefs.System("init: expected config, got message %q", typ)
	}
	var cfg initConfig
	if err := json.Unmarshal(payload, &cfg); err != nil {
		return errdefs.System("init: decode config: %v", err)
	}
	faults.Point("init-before-setup")
	// The seccomp filter, read while the host's paths are still in view.
	var filter []unix.SockFilter
	switch {
	case cfg.SeccompFile != "":
		filter, err = readFilterFile(cfg.SeccompFile)
	case cfg.Seccomp != "":
		filter, err = decodeFilter(cfg.Seccomp)
	}
	if err != nil {
		return err
	}
	// Files and directories made below get exactly the modes asked for.
	unix.Umask(0)
	if cfg.NewCgroupNS {
		// Now that the parent has put us in our cgroup, a new cgroup
		// namespace is rooted there. (Per thread: we are locked to it.)
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return errdefs.System("init: unshare cgroup namespace: %v", err)
		}
	}
	if cfg.NewNetNS {
		if err := loopbackUp(); err != nil {
			return err
		}
	}
	if err := setupRootfs(&cfg); err != nil {
		return setupError("rootfs", err)
	}
	if cfg.Hostname != "" {
		if err := unix.Sethostname([]byte(cfg.Hostname)); err != nil {
			return errdefs.System("init: set hostname: %v", err)
		}
	}
	if cfg.Domainname != "" {
		if err := unix.Setdomainname([]byte(cfg.Domainname)); err != nil {
			return errdefs.System("init: set domainname: %v", err)
		}
	}
	if err := finishRootfs(&cfg); err != nil {
		return setupError("rootfs", err)
	}
	if cfg.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*cfg.OOMScoreAdj)), 0); err != nil {
			return errdefs.System("init: set oom_score_adj: %v", err)
		}
	}
	if err := setRlimits(cfg.Process.Rlimits); err != nil {
		return setupError("rlimits", err)
	}
	if err := makeCwd(cfg.Process.Cwd); err != nil {
		return err
	}
	pp, err := prepare(&cfg.Process, filter)
	if err != nil {
		return err
	}
	master := -1
	if cfg.Terminal {
		if master, err = setupConsole(pp.user.UID); err != nil {
			return errdefs.System("init: terminal: %v", err)
		}
	}
	if err := writeMsg(sock, msgReady, nil); err != nil {
		return io.EOF
	}
	if master >= 0 {
		if err := sendFd(sock, master); err != nil {
			return io.EOF
		}
		unix.Close(master)
	}
	typ, _, err = readMsg(sock)
	if err != nil || typ != msgGo {
		return io.EOF
	}
	return execProcess(pp)
}

// setupError keeps an error's kind (a bad mount is Invalid) and gives the
// others System, with the step that failed.
func setupError(step string, err error) error {
	if errdefs.KindOf(err) != errdefs.KindUnknown {
		return err
	}
	return errdefs.System("init: %s: %v", step, err)
}
