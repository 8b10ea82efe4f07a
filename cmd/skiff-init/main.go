// Command skiff-init is the init that `run --init` puts in front of the
// container's program, at /sbin/docker-init (where Docker puts tini):
//
//	/sbin/docker-init -- PROGRAM [ARG...]
//	/pause --pause
//
// As PID 1 it starts PROGRAM, forwards every signal it receives to it, reaps
// every zombie reparented to it, and exits with PROGRAM's status (128+N when
// a signal killed it), like tini.
//
// Why a binary of its own, bind-mounted read-only: the container's PID 1
// must be a file in the container, and skiff-shim is dynamically linked (its
// cgo constructor), so it would not load in an image without glibc; keeping
// skiff-shim's init alive as PID 1 instead would leave a host binary open to
// the container as /proc/1/exe. This one links nothing but the Go runtime's
// syscall, os and os/signal: static, about 1.5 MB, no files read at start.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	args := os.Args[1:]
	if len(args) == 1 && args[0] == "--pause" {
		os.Exit(pause())
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "usage: docker-init -- PROGRAM [ARG...]")
		os.Exit(1)
	}
	os.Exit(run(args))
}

func run(args []string) int {
	// Every catchable signal: SIGCHLD wakes the reaper, the rest go to the
	// program. Registered before the fork so that none is missed.
	sigs := make(chan os.Signal, 64)
	signal.Notify(sigs)

	path, err := exec.LookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: exec %s: %v\n", args[0], err)
		return 127
	}
	attr := &syscall.SysProcAttr{Setpgid: true}
	// With a terminal the program's process group becomes the foreground
	// one: Ctrl-C reaches it once (from the kernel), not twice.
	if _, err := unix.IoctlGetTermios(0, unix.TCGETS); err == nil {
		attr.Foreground = true
		attr.Ctty = 0
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys:   attr,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "docker-init: exec %s: %v\n", args[0], err)
		if err == syscall.EACCES || err == syscall.ENOEXEC {
			return 126
		}
		return 127
	}
	for sig := range sigs {
		s := sig.(syscall.Signal)
		if s != syscall.SIGCHLD {
			if s == syscall.SIGTTIN || s == syscall.SIGTTOU || s == syscall.SIGURG {
				continue // the Go runtime's own (SIGURG) and job control noise
			}
			syscall.Kill(pid, s)
			continue
		}
		// Reap everything that has exited; the program's end is ours.
		for {
			var ws syscall.WaitStatus
			p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
			if p <= 0 || err != nil {
				break
			}
			if p == pid {
				return exitCode(ws)
			}
		}
	}
	return 0
}

// pause is the process that holds a Kubernetes pod's namespaces (package
// cri's sandbox, so no pause image is pulled): it sleeps, reaps the zombies
// of a shared PID namespace, and exits 0 on SIGTERM or SIGINT.
func pause() int {
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range sigs {
		if sig != syscall.SIGCHLD {
			return 0
		}
		for {
			var ws syscall.WaitStatus
			if p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); p <= 0 || err != nil {
				break
			}
		}
	}
	return 0
}

// exitCode is the program's status as a shell reports it: its exit code, or
// 128+N when signal N killed it. It is errdefs.WaitExitCode, copied because
// this PID 1 imports nothing of skiff's (tests/layers_test.go); main_test.go
// checks the two agree.
func exitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
