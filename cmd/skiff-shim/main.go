// Command skiff-shim is the small binary started for every container:
//
//	skiff-shim monitor --bundle DIR   the per-container monitor (stays resident)
//	skiff-shim init                   the container's first process before execve
//	skiff-shim exec                   a process joining a running container
//
// It links only the runtime, cgroups, monitor and logger packages, so that
// each re-exec starts fast and each resident monitor stays small.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/monitor"
	"github.com/skiff-dev/skiff/internal/runtime"
	// The C constructor of `skiff-shim exec`: it enters the container's
	// namespaces before the Go runtime starts (a no-op for other commands).
	_ "github.com/skiff-dev/skiff/internal/runtime/nsenter"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: skiff-shim monitor --bundle DIR | init | exec")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "init":
		runtime.InitMain()
	case "exec":
		runtime.ExecMain()
	case "monitor":
		// Nothing the engine's own parent leaked may reach a container.
		_ = runtime.MarkInheritedCloseOnExec()
		monitor.Main(createContainer)
	default:
		fmt.Fprintf(os.Stderr, "skiff-shim: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

// createContainer is the monitor's CreateFunc: the spec is config.json in
// the bundle, which is the monitor's working directory.
func createContainer(ctx context.Context, cfg *monitor.Config, stdio monitor.Stdio) (monitor.Process, error) {
	data, err := os.ReadFile("config.json")
	if err != nil {
		return nil, errdefs.NotFound("read spec: %v", err)
	}
	spec := &specs.Spec{}
	if err := json.Unmarshal(data, spec); err != nil {
		return nil, errdefs.Invalid("decode config.json: %v", err)
	}
	// Re-exec ourselves: /proc/self/exe is the binary this monitor runs,
	// even if the file on disk was replaced by an upgrade meanwhile.
	c, err := runtime.Create(ctx, runtime.CreateOpts{
		Spec:     spec,
		ShimPath: "/proc/self/exe",
		Stdin:    stdio.Stdin,
		Stdout:   stdio.Stdout,
		Stderr:   stdio.Stderr,
		Terminal: cfg.Tty,
	})
	if err != nil {
		return nil, err
	}
	return process{c}, nil
}

// process adapts *runtime.Container to monitor.Process.
type process struct{ *runtime.Container }

func (p process) Wait() (monitor.ExitStatus, error) {
	st, err := p.Container.Wait()
	return monitor.ExitStatus(st), err
}
