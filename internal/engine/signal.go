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
	if sig, ok := rtSignal(name); ok {
		return sig, nil
	}
	return 0, errdefs.Invalid("Invalid signal: %s", s)
}

// rtSignal parses the real-time signal names Docker knows (its signal map):
// SIGRTMIN (34), SIGRTMIN+1 to +15, SIGRTMAX-14 to -1 and SIGRTMAX (64).
// systemd's halt signal, an image's STOPSIGNAL, is SIGRTMIN+3.
func rtSignal(name string) (syscall.Signal, bool) {
	const rtmin, rtmax = 34, 64
	switch name {
	case "SIGRTMIN":
		return rtmin, true
	case "SIGRTMAX":
		return rtmax, true
	}
	if n, ok := strings.CutPrefix(name, "SIGRTMIN+"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 15 && n == strconv.Itoa(v) {
			return syscall.Signal(rtmin + v), true
		}
	}
	if n, ok := strings.CutPrefix(name, "SIGRTMAX-"); ok {
		if v, err := strconv.Atoi(n); err == nil && v >= 1 && v <= 14 && n == strconv.Itoa(v) {
			return syscall.Signal(rtmax - v), true
		}
	}
	return 0, false
}
