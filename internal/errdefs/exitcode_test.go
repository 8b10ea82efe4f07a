package errdefs

import (
	"fmt"
	"syscall"
	"testing"
)

func TestExitCodes(t *testing.T) {
	cases := []struct {
		err      error
		start    int
		command  int
		isCmdErr bool
	}{
		{CommandNotFound("exec: %q: no such file or directory", "nope"), 127, 127, true},
		{fmt.Errorf("start: %w", CannotInvoke("exec: %q: permission denied", "/etc")), 126, 126, true},
		{System("mount proc"), 128, 0, false},
		{Invalid("bad"), 128, 0, false},
		{fmt.Errorf("no kind"), 128, 0, false},
	}
	for _, c := range cases {
		if got := StartExitCode(c.err); got != c.start {
			t.Errorf("StartExitCode(%q) = %d, want %d", c.err, got, c.start)
		}
		code, ok := CommandExitCode(c.err)
		if code != c.command || ok != c.isCmdErr {
			t.Errorf("CommandExitCode(%q) = %d, %v; want %d, %v", c.err, code, ok, c.command, c.isCmdErr)
		}
	}
	for _, c := range []struct {
		ws   syscall.WaitStatus
		want int
	}{
		{0, 0},
		{3 << 8, 3},     // exit(3)
		{127 << 8, 127}, // the shim's own "not found" exit passes through
		{9, 137},        // SIGKILL
		{15, 143},       // SIGTERM
		{6 | 0x80, 134}, // SIGABRT with a core dump
	} {
		if got := WaitExitCode(c.ws); got != c.want {
			t.Errorf("WaitExitCode(%#x) = %d, want %d", int(c.ws), got, c.want)
		}
	}
	if SignalExitCode(syscall.SIGKILL) != 137 {
		t.Error("SIGKILL must be 137")
	}
}
