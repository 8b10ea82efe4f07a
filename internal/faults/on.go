//go:build faults

package faults

import (
	"os"
	"syscall"
	"time"
)

var (
	point = os.Getenv("SKIFF_FAULT")
	mark  = os.Getenv("SKIFF_FAULT_MARK")
)

// Point SIGKILLs the process when SKIFF_FAULT names this point.
func Point(name string) {
	if point == "" || name != point {
		return
	}
	if mark != "" {
		os.WriteFile(mark, []byte(name+"\n"), 0o644)
	}
	if os.Getpid() == 1 {
		// The first process of a pid namespace (a container's init) does
		// not get signals sent from inside it, SIGKILL included: exit_group
		// skips every clean-up as the kill would.
		syscall.Exit(128 + int(syscall.SIGKILL))
	}
	syscall.Kill(os.Getpid(), syscall.SIGKILL)
	for {
		time.Sleep(time.Second) // the signal is on its way
	}
}

// Env is the environment that carries the fault to a process started with
// an empty one (init).
func Env() []string {
	if point == "" {
		return nil
	}
	return []string{"SKIFF_FAULT=" + point, "SKIFF_FAULT_MARK=" + mark}
}
