package cri

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stopTimedOutExec makes sure an ExecSync command past its deadline is
// gone before ExecSync answers (as under containerd, a caller then sees no
// trace of it). The engine's exec pid is skiff-shim exec's, which forks
// the command: the command's process tree is killed and skiff-shim exec
// left to reap it and report the end, so nothing is orphaned (killed
// with it, the command would become a zombie of the container's PID 1,
// which need not reap: critest's runs top). Under load the deadline can
// pass before the command has started, so this repeats until the engine
// records the exec's end, for up to a few seconds; then skiff-shim exec
// goes too.
func (s *Server) stopTimedOutExec(id string) {
	ctx := context.Background()
	pid := 0
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		ins, err := s.b.ExecInspect(ctx, id)
		if err != nil {
			return
		}
		if !ins.Running && ins.ExitCode != nil {
			return // ended
		}
		if ins.Running && ins.Pid > 0 {
			pid = ins.Pid
			for _, c := range children(pid) {
				killTree(c)
			}
		}
	}
	if pid > 0 {
		killTree(pid)
	}
}

// children lists the child processes of pid (killTree, in container.go,
// kills a process and its descendants).
func children(pid int) []int {
	var out []int
	tasks, _ := filepath.Glob("/proc/" + strconv.Itoa(pid) + "/task/*/children")
	for _, t := range tasks {
		b, _ := os.ReadFile(t)
		for _, f := range strings.Fields(string(b)) {
			if c, err := strconv.Atoi(f); err == nil {
				out = append(out, c)
			}
		}
	}
	return out
}
