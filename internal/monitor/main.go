package monitor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// prSetChildSubreaper is PR_SET_CHILD_SUBREAPER (not in package syscall).
const prSetChildSubreaper = 36

// Main is `skiff-shim monitor --bundle DIR` (or `--bundle-stdin`, DIR read
// from stdin: see Pool): it runs the monitor for DIR
// with create making the container's process, reports "ready" or
// "error KIND: MSG" on stdout (see Spawn) and exits when the container has
// exited (status 0) or could not be set up (status 1).
func Main(create CreateFunc) {
	// One monitor stays resident per running container: keep it small. It
	// only moves bytes, so one P is enough (measured: a second P costs
	// ~400 KiB of PSS; Spawn also sets GOMAXPROCS=1 so that the runtime
	// never makes it). The GC target sets the smallest heap goal (4 MiB x
	// GOGC/100): at 25 that was 1 MiB, which set-up (JSON encoders' type
	// caches, buffers) reached within a few KiB, so whether a monitor ran
	// its first GC, and paid ~0.5 MiB for the collector's own state, turned
	// on a few bytes of the spec. 50 (a 2 MiB goal) leaves room: measured
	// 1.42-1.47 MiB anonymous per idle monitor against 1.92-1.96 at 25,
	// and 1.53-1.56 against 2.02-2.06 for one streaming output for 5 s
	// (no allocation per line, so no GC either).
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(50)
	debug.SetMemoryLimit(8 << 20)

	bundle := bundleArg(os.Args[1:])
	if bundle == "" && slices.Contains(os.Args[1:], "--bundle-stdin") {
		bundle = bundleFromStdin() // started ahead by a Pool
		setCmdline([]string{os.Args[0], "monitor", "--bundle", bundle})
	}
	if bundle == "" {
		fmt.Fprintln(os.Stdout, "error invalid: usage: skiff-shim monitor --bundle DIR")
		os.Exit(2)
	}
	// The engine stops containers through `kill`; a SIGTERM or SIGINT aimed
	// at the monitor (a process group, a careless pkill) must not orphan the
	// container. Handled (not ignored) signals are reset to the default in
	// the container's process on execve, so it still gets them normally.
	// SIGPIPE: the engine's end of stdout may be gone; get EPIPE instead.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	// Processes that escape the container's first process (no pid namespace)
	// are reparented to us rather than to init, so Destroy can find them.
	if _, _, errno := syscall.RawSyscall(syscall.SYS_PRCTL, prSetChildSubreaper, 1, 0); errno != 0 {
		fmt.Fprintf(os.Stderr, "set child subreaper: %v\n", errno)
	}
	// Relative paths in the OCI spec (root.path) are relative to the bundle.
	bundle, err := filepath.Abs(bundle)
	if err == nil {
		err = os.Chdir(bundle)
	}
	if err != nil {
		fmt.Fprintf(os.Stdout, "error notfound: %s\n", oneLine(err.Error()))
		os.Exit(1)
	}
	err = Run(context.Background(), Options{
		Bundle: bundle,
		Create: create,
		Ready:  ready,
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, time.Now().UTC().Format(time.RFC3339Nano)+" "+format+"\n", args...)
		},
	})
	// Reap what was reparented to us and has exited since.
	for {
		var ws syscall.WaitStatus
		if pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); pid <= 0 || err != nil {
			break
		}
	}
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// bundleFromStdin waits for the one line a Pool writes: the bundle to
// serve. Stdin then becomes /dev/null and stderr the bundle's monitor.log,
// as Spawn sets them for a monitor started for its bundle. A closed stdin
// (the pool closed, the engine gone) ends the monitor quietly.
func bundleFromStdin() string {
	var buf []byte
	b := make([]byte, 512)
	for !bytes.Contains(buf, []byte("\n")) {
		n, err := os.Stdin.Read(b)
		buf = append(buf, b[:n]...)
		if err != nil || len(buf) > 64<<10 {
			os.Exit(0)
		}
	}
	bundle, _, _ := strings.Cut(string(buf), "\n")
	if fd, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
		syscall.Dup3(fd, 0, 0)
		syscall.Close(fd)
	}
	if fd, err := syscall.Open(filepath.Join(bundle, MonitorLog), syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o600); err == nil {
		syscall.Dup3(fd, 2, 0)
		syscall.Close(fd)
	}
	return bundle
}

// setCmdline makes /proc/self/cmdline (what ps and pgrep show) read args:
// a monitor started ahead was exec'd without its bundle, and people and
// scripts find a container's monitor by it. The kernel reads the command
// line from our own argv strings, so they are overwritten in place, within
// their length (a Pool starts the monitor with room to spare); the Go
// strings of os.Args that point there are not read again. A command line
// that does not fit, or argv laid out other than the kernel's way, stays.
func setCmdline(args []string) {
	if len(os.Args) == 0 {
		return
	}
	first := unsafe.StringData(os.Args[0])
	size := 0
	for _, a := range os.Args {
		if unsafe.StringData(a) != (*byte)(unsafe.Add(unsafe.Pointer(first), size)) {
			return // not one contiguous block
		}
		size += len(a) + 1
	}
	want := strings.Join(args, "\x00") + "\x00"
	if len(want) > size {
		return
	}
	area := unsafe.Slice(first, size)
	n := copy(area, want)
	clear(area[n:])
}

// ready writes the status line for Spawn, then points stdout at /dev/null:
// the engine reads one line and closes its end.
func ready(err error) {
	if err != nil {
		os.Stdout.WriteString(errorLine(err))
	} else {
		os.Stdout.WriteString(readyLine)
	}
	if fd, err := syscall.Open(os.DevNull, syscall.O_WRONLY|syscall.O_CLOEXEC, 0); err == nil {
		syscall.Dup3(fd, 1, 0)
		syscall.Close(fd)
	}
}

func bundleArg(args []string) string {
	for i, a := range args {
		if a == "--bundle" || a == "-bundle" {
			if i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if v, ok := strings.CutPrefix(a, "--bundle="); ok {
			return v
		}
	}
	return ""
}

// errorLine is the status line of a monitor that failed: "error KIND: MSG",
// which the engine reads back with parseErrorLine.
func errorLine(err error) string {
	return errorPrefix + " " + kindName(err) + ": " + oneLine(err.Error()) + "\n"
}

func oneLine(s string) string {
	return strings.ReplaceAll(s, "\n", " ")
}
