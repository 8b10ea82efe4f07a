// Package nsenter holds the C constructor of `skiff-shim exec`. A Go process
// is multithreaded before main runs, and the kernel refuses setns into a
// mount namespace from a multithreaded process; so, like runc's nsenter, a
// constructor that runs before the Go runtime starts joins the container's
// cgroup and namespaces and forks into its pid namespace; the child applies
// the process (rlimits, user, capabilities, cwd) and execs it, while the
// parent waits and forwards signals. The Go runtime never starts for an exec.
//
// It does nothing unless _SKIFF_NSENTER is set (see runtime.ExecCommand).
// Only cmd/skiff-shim imports it, for its side effect.
package nsenter

/*
#cgo CFLAGS: -Wall -Wextra -O2
*/
import "C"
