package main

import (
	"syscall"
	"testing"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// skiff-init keeps its own copy of the exit-code mapping (it imports nothing
// of skiff's); it must be errdefs'.
func TestExitCodeIsErrdefs(t *testing.T) {
	for _, ws := range []syscall.WaitStatus{0, 1 << 8, 127 << 8, 255 << 8, 9, 15, 6 | 0x80, 2} {
		if got, want := exitCode(ws), errdefs.WaitExitCode(ws); got != want {
			t.Errorf("status %#x: skiff-init says %d, errdefs %d", int(ws), got, want)
		}
	}
}
