package engine

import (
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// ParseSignal accepts "SIGTERM", "TERM", "term" and "15".
func ParseSignal(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, errdefs.Invalid("Invalid signal: %s", s)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	if strings.HasPrefix(name, "SIGRTMIN+") || strings.HasPrefix(name, "SIGRTMAX-") {
		n, err := strconv.Atoi(name[9:])
		if err == nil {
			if name[6] == 'I' {
				return syscall.Signal(34 + n), nil
			}
			return syscall.Signal(64 - n), nil
		}
	}
	return 0, errdefs.Invalid("Invalid signal: %s", s)
}
