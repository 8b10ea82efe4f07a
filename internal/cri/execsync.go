package cri

import (
	"context"
	"time"
)

// stopTimedOutExec makes sure an ExecSync command past its deadline is
// gone before ExecSync answers (as under containerd, a caller then sees no
// trace of it): under load the deadline can pass before the command has
// started, so it waits for the exec to run and kills it then, or to end.
// done is ExecStart's result; it gives up after a few seconds.
func (s *Server) stopTimedOutExec(id string, done <-chan error) {
	ctx := context.Background()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ins, err := s.b.ExecInspect(ctx, id)
		if err != nil {
			return
		}
		if ins.Running && ins.Pid > 0 {
			// The engine's pid is skiff-shim exec's, which forked the
			// command: kill both, then wait for the engine to reap them.
			killTree(ins.Pid)
			select {
			case <-done:
			case <-time.After(2 * time.Second):
			}
			return
		}
		if !ins.Running && ins.ExitCode != nil {
			return // it ended by itself
		}
		time.Sleep(20 * time.Millisecond)
	}
}
