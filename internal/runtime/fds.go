package runtime

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// MarkInheritedCloseOnExec sets close-on-exec on every descriptor from 3
// up. Go opens its own files close-on-exec, but a descriptor inherited
// without the flag (a shell's `exec 251>pipe`) would pass through every
// fork+exec Go makes, down to the containers' processes: the engine, the
// monitor and init all call this first, so only what they hand a child
// explicitly (ExtraFiles, stdio) reaches it.
func MarkInheritedCloseOnExec() error {
	return markCloseOnExecFrom(3)
}

func markCloseOnExecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	// Kernels before 5.11 (or a seccomp profile without close_range):
	// mark each open descriptor.
	d, derr := os.Open("/proc/self/fd")
	if derr != nil {
		return err
	}
	defer d.Close()
	names, derr := d.Readdirnames(-1)
	if derr != nil {
		return derr
	}
	for _, n := range names {
		fd, cerr := strconv.Atoi(n)
		if cerr != nil || fd < first || fd == int(d.Fd()) {
			continue
		}
		unix.CloseOnExec(fd)
	}
	return nil
}
