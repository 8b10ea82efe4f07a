package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// fakeProc stands in for the runtime's container process: a host process
// (its own process group) started by Start; exec failures come back from
// Start with the runtime's error kinds.
type fakeProc struct {
	cmd *exec.Cmd

	mu       sync.Mutex
	state    int // 0 created, 1 started, 2 gone without running
	sig      syscall.Signal
	released chan struct{} // Start or a kill before it
	files    []*os.File    // our dups of the stdio, until Start
}

// fakeCreate makes a CreateFunc running args.
func fakeCreate(args ...string) CreateFunc {
	return func(ctx context.Context, cfg *Config, stdio Stdio) (Process, error) {
		p := &fakeProc{released: make(chan struct{})}
		// The monitor closes its copies of the child's ends once Create
		// returns; like a forked child we keep ours.
		for _, f := range []*os.File{stdio.Stdin, stdio.Stdout, stdio.Stderr} {
			fd, err := syscall.Dup(int(f.Fd()))
			if err != nil {
				return nil, err
			}
			syscall.CloseOnExec(fd)
			p.files = append(p.files, os.NewFile(uintptr(fd), f.Name()))
		}
		p.cmd = exec.Command(args[0], args[1:]...)
		p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = p.files[0], p.files[1], p.files[2]
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		return p, nil
	}
}

// fakeCreateFromBundle reads the command from DIR/fake.json (for the
// monitor run as a separate process by TestMain).
func fakeCreateFromBundle(ctx context.Context, cfg *Config, stdio Stdio) (Process, error) {
	b, err := os.ReadFile("fake.json") // Main chdirs into the bundle
	if err != nil {
		return nil, errdefs.NotFound("fake command: %v", err)
	}
	var args []string
	if err := json.Unmarshal(b, &args); err != nil || len(args) == 0 {
		return nil, errdefs.Invalid("fake command: bad fake.json")
	}
	return fakeCreate(args...)(ctx, cfg, stdio)
}

func writeFakeCmd(dir string, args ...string) error {
	b, _ := json.Marshal(args)
	return os.WriteFile(filepath.Join(dir, "fake.json"), b, 0o644)
}

func (p *fakeProc) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd.Process != nil {
		return p.cmd.Process.Pid
	}
	return 0
}

func (p *fakeProc) closeFiles() {
	for _, f := range p.files {
		f.Close()
	}
	p.files = nil
}

func (p *fakeProc) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state != 0 {
		return errors.New("process is gone")
	}
	err := p.cmd.Start()
	p.closeFiles()
	if err != nil {
		p.state = 2
		close(p.released)
		switch {
		case errors.Is(err, syscall.ENOENT):
			return errdefs.Wrap(errdefs.KindCommandNotFound, err)
		case errors.Is(err, syscall.EACCES):
			return errdefs.Wrap(errdefs.KindCannotInvoke, err)
		}
		return err
	}
	p.state = 1
	close(p.released)
	return nil
}

func (p *fakeProc) Wait() (ExitStatus, error) {
	<-p.released
	p.mu.Lock()
	state, sig := p.state, p.sig
	p.mu.Unlock()
	if state == 2 {
		if sig != 0 {
			return ExitStatus{Signal: sig}, nil
		}
		return ExitStatus{Code: 255}, nil
	}
	err := p.cmd.Wait()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return ExitStatus{}, err
	}
	if ws.Signaled() {
		return ExitStatus{Signal: ws.Signal()}, nil
	}
	return ExitStatus{Code: ws.ExitStatus()}, nil
}

func (p *fakeProc) Signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.state {
	case 0: // like a signal to the runtime's init waiting before execve
		p.state, p.sig = 2, sig
		p.closeFiles()
		close(p.released)
		return nil
	case 2:
		return os.ErrProcessDone
	}
	return p.cmd.Process.Signal(sig)
}

// Destroy kills the whole process group, as removing a cgroup would.
func (p *fakeProc) Destroy() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.state == 1 {
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	}
	p.closeFiles()
	return nil
}
