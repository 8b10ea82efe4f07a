package errdefs

import "syscall"

// The exit codes Docker records for a container or exec whose program could
// not be started, and for a process killed by a signal. This file is the one
// place that maps them: the runtime, skiff-shim's C exec path (through the
// kind names below), the monitor, the engine, skiff-init and the CLI all
// call it.
const (
	ExitCannotInvoke    = 126 // the program exists but cannot be run
	ExitCommandNotFound = 127 // the program (or its interpreter) does not exist
	ExitStartFailed     = 128 // any other failure before the program ran
	exitSignalBase      = 128 // a process killed by signal n exits 128+n
)

// CommandExitCode is 127 for an error of kind CommandNotFound and 126 for
// one of kind CannotInvoke; ok is false for any other kind.
func CommandExitCode(err error) (code int, ok bool) {
	switch KindOf(err) {
	case KindCommandNotFound:
		return ExitCommandNotFound, true
	case KindCannotInvoke:
		return ExitCannotInvoke, true
	}
	return 0, false
}

// StartExitCode is the exit code recorded for a start that failed with
// err: 127, 126, or 128 for anything else.
func StartExitCode(err error) int {
	if code, ok := CommandExitCode(err); ok {
		return code
	}
	return ExitStartFailed
}

// SignalExitCode is the status of a process killed by sig: 128+sig.
func SignalExitCode(sig syscall.Signal) int { return exitSignalBase + int(sig) }

// WaitExitCode is the exit code of a process that ended with ws: its exit
// status, or 128+signal when a signal killed it.
func WaitExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return SignalExitCode(ws.Signal())
	}
	return ws.ExitStatus()
}
