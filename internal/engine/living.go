package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/ocispec"
)

// What people do with running containers: pause/unpause (the cgroup
// freezer), update (resources and restart policy, applied to the live
// cgroup), top (the host's ps, filtered to the cgroup's processes).
// Stats are in stats.go.

// cgroupOf returns the manager of a running container's cgroup, from the
// spec in its bundle.
func (e *Engine) cgroupOf(c *Container) (cgroups.Manager, error) {
	spec, err := readSpec(filepath.Join(e.bundleDir(c.ID), "config.json"))
	if err != nil {
		return nil, err
	}
	if spec.Linux == nil || spec.Linux.CgroupsPath == "" {
		return nil, errdefs.System("container %s has no cgroup", c.ID)
	}
	return e.cgroups(spec.Linux.CgroupsPath)
}

// runningContainer returns c if it runs, else Docker's conflict error.
func (e *Engine) runningContainer(ref string) (*Container, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.State.Running
	c.mu.Unlock()
	if !running {
		return nil, errdefs.Conflict("Container %s is not running", c.ID)
	}
	return c, nil
}

// ContainerPause freezes every process of the container.
func (e *Engine) ContainerPause(ctx context.Context, ref string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err = c.beginOpLocked(ctx); err == nil {
		defer c.endOp()
		err = c.check(evPause)
	}
	kills := c.sigkills
	c.mu.Unlock()
	if err != nil {
		return err
	}
	cg, err := e.cgroupOf(c)
	if err != nil {
		return err
	}
	if err := cg.Freeze(); err != nil {
		return fmt.Errorf("pause container %s: %w", c.ID, err)
	}
	c.mu.Lock()
	err = e.transition(c, evPause, nil)
	// A kill (not a long operation) sent SIGKILL while the freeze was
	// under way, and found the container not yet paused: thaw it here,
	// as the kill would have, so that the kill takes effect.
	killed := err == nil && c.sigkills != kills
	c.mu.Unlock()
	if killed {
		if terr := e.thaw(c, false); terr != nil {
			e.log.Warn("thaw after kill", "container", c.ID, "err", terr)
		}
	}
	if err != nil {
		// Not recorded: not paused either.
		if terr := cg.Thaw(); terr != nil {
			e.log.Error("thaw after a pause that could not be recorded", "container", c.ID, "err", terr)
		}
		return err
	}
	e.containerEvent(c, events.ActionPause, nil)
	return nil
}

// ContainerUnpause thaws a paused container.
func (e *Engine) ContainerUnpause(ctx context.Context, ref string) error {
	c, err := e.reg.get(ref)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err = c.beginOpLocked(ctx); err == nil {
		defer c.endOp()
		err = c.check(evUnpause)
	}
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if err := e.thaw(c, true); err != nil {
		return err
	}
	e.containerEvent(c, events.ActionUnPause, nil)
	return nil
}

// thaw unfreezes c and records it. When the record cannot be written, undo
// freezes c again (unpause fails as if nothing happened); a thaw for a
// SIGKILL keeps c thawed, so that the kill takes effect.
func (e *Engine) thaw(c *Container, undo bool) error {
	cg, err := e.cgroupOf(c)
	if err != nil {
		return err
	}
	if err := cg.Thaw(); err != nil {
		return fmt.Errorf("unpause container %s: %w", c.ID, err)
	}
	c.mu.Lock()
	err = e.transition(c, evUnpause, nil)
	c.mu.Unlock()
	if err == nil || errdefs.IsConflict(err) {
		return nil // a conflict: it exited meanwhile
	}
	if undo {
		// Not recorded: still paused, then.
		if ferr := cg.Freeze(); ferr != nil {
			e.log.Error("freeze after an unpause that could not be recorded", "container", c.ID, "err", ferr)
		}
	}
	return err
}

// afterSignal thaws a paused container that was sent SIGKILL, as Docker
// does, so that the kill takes effect (a frozen task on cgroup v1 only dies
// once thawed). Other signals stay pending until unpause.
func (e *Engine) afterSignal(c *Container, sig syscall.Signal) {
	c.mu.Lock()
	paused := c.State.Paused
	if sig == syscall.SIGKILL {
		c.sigkills++ // for a pause under way (ContainerPause)
	}
	c.mu.Unlock()
	if paused && sig == syscall.SIGKILL {
		if err := e.thaw(c, false); err != nil {
			e.log.Warn("thaw after kill", "container", c.ID, "err", err)
		}
	}
}

// ContainerUpdate changes resources and the restart policy; for a running
// container the new resources apply to its cgroup at once.
func (e *Engine) ContainerUpdate(ctx context.Context, ref string, u *container.UpdateConfig) (container.UpdateResponse, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if u == nil {
		u = &container.UpdateConfig{}
	}
	c.mu.Lock()
	if err := c.beginOpLocked(ctx); err != nil {
		c.mu.Unlock()
		return container.UpdateResponse{}, err
	}
	defer c.endOp()
	if c.markedForRemoval() {
		c.mu.Unlock()
		return container.UpdateResponse{}, errdefs.Conflict("container %s is marked for removal and cannot be updated", c.ID)
	}
	hc := *c.HostConfig
	oldHC := hc
	running := c.State.Running
	c.mu.Unlock()
	undo := func() {}

	if u.RestartPolicy.Name != "" {
		if err := validateRestartPolicy(u.RestartPolicy); err != nil {
			return container.UpdateResponse{}, err
		}
		if hc.AutoRemove && !u.RestartPolicy.IsNone() {
			return container.UpdateResponse{}, errdefs.Invalid("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	r := u.Resources
	warnings, err := validateUpdateBlkio(&r) // devices.go: Docker's warning where the host cannot apply it
	if err != nil {
		return container.UpdateResponse{}, err
	}
	if r.NanoCPUs != 0 && (r.CPUQuota != 0 || r.CPUPeriod != 0) {
		return container.UpdateResponse{}, errdefs.Invalid("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	}
	if r.NanoCPUs != 0 && (hc.CPUQuota != 0 || hc.CPUPeriod != 0) && r.CPUQuota == 0 && r.CPUPeriod == 0 {
		return container.UpdateResponse{}, errdefs.Invalid("Conflicting options: CPU Quota cannot be updated as NanoCPUs has already been set")
	}
	if r.NanoCPUs < 0 {
		return container.UpdateResponse{}, errdefs.Invalid("Range of CPUs is from 0.01 to %d.00, as there are only %d CPUs available", numCPU(), numCPU())
	}
	if r.Memory != 0 && r.Memory < 6*1024*1024 {
		return container.UpdateResponse{}, errdefs.Invalid("Minimum memory limit allowed is 6MB")
	}
	if r.Memory > 0 && r.MemorySwap == 0 && hc.MemorySwap > 0 && r.Memory > hc.MemorySwap {
		return container.UpdateResponse{}, errdefs.Invalid("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time")
	}
	set := func(dst *int64, v int64) {
		if v != 0 {
			*dst = v
		}
	}
	set(&hc.Memory, r.Memory)
	set(&hc.MemorySwap, r.MemorySwap)
	set(&hc.MemoryReservation, r.MemoryReservation)
	set(&hc.CPUShares, r.CPUShares)
	set(&hc.CPUQuota, r.CPUQuota)
	set(&hc.CPUPeriod, r.CPUPeriod)
	set(&hc.NanoCPUs, r.NanoCPUs)
	if r.NanoCPUs != 0 {
		hc.CPUQuota, hc.CPUPeriod = 0, 0
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.BlkioWeight != 0 {
		hc.BlkioWeight = r.BlkioWeight
	}
	if r.PidsLimit != nil {
		v := *r.PidsLimit
		hc.PidsLimit = &v
	}
	if r.Memory > 0 && r.MemorySwap == 0 && hc.MemorySwap > 0 && hc.MemorySwap < hc.Memory {
		hc.MemorySwap = 0
	}
	if running {
		cg, err := e.cgroupOf(c)
		if err != nil {
			return container.UpdateResponse{}, err
		}
		res := ocispec.Resources(&hc)
		res.Devices = nil // unchanged; rewriting them would briefly deny devices on v1
		if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
			unlimited := int64(-1)
			res.Pids = &specs.LinuxPids{Limit: &unlimited}
		}
		if err := cg.Update(res); err != nil {
			return container.UpdateResponse{}, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
		undo = func() {
			old := ocispec.Resources(&oldHC)
			old.Devices = nil
			if err := cg.Update(old); err != nil {
				e.log.Error("restore resources after an update that could not be recorded", "container", c.ID, "err", err)
			}
		}
	}
	c.mu.Lock()
	*c.HostConfig = hc
	err = e.persist(c)
	if err != nil {
		*c.HostConfig = oldHC
	}
	c.mu.Unlock()
	if err != nil {
		// The record keeps the old values: so do the container and
		// its cgroup.
		undo()
		return container.UpdateResponse{}, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
	}
	e.containerEvent(c, events.ActionUpdate, nil)
	return container.UpdateResponse{Warnings: append([]string{}, warnings...)}, nil
}

// ContainerTop runs the host's ps with psArgs (default -ef) and keeps the
// rows of the container's processes.
func (e *Engine) ContainerTop(ctx context.Context, ref, psArgs string) (container.TopResponse, error) {
	c, err := e.runningContainer(ref)
	if err != nil {
		return container.TopResponse{}, err
	}
	cg, err := e.cgroupOf(c)
	if err != nil {
		return container.TopResponse{}, err
	}
	pids, err := cg.Procs()
	if err != nil {
		return container.TopResponse{}, fmt.Errorf("top: list the processes of %s: %w", c.ID, err)
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	args := strings.Fields(psArgs)
	out, err := exec.CommandContext(ctx, "ps", args...).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
			msg = strings.TrimSpace(string(ee.Stderr))
		}
		return container.TopResponse{}, errdefs.System("Error running ps: %s", msg)
	}
	return parsePS(out, pids)
}

// parsePS keeps the rows of ps output whose PID is in pids. The last column
// (the command) may hold spaces.
func parsePS(out []byte, pids []int) (container.TopResponse, error) {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) == 0 {
		return container.TopResponse{}, errdefs.System("ps printed nothing")
	}
	titles := strings.Fields(lines[0])
	pidIndex := slices.Index(titles, "PID")
	if pidIndex < 0 {
		return container.TopResponse{}, errdefs.Invalid("Couldn't find PID field in ps output")
	}
	r := container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) <= pidIndex {
			continue
		}
		pid, err := strconv.Atoi(f[pidIndex])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		if len(f) > len(titles) {
			// Re-split keeping the last column whole.
			f = append(f[:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		}
		r.Processes = append(r.Processes, f)
	}
	return r, nil
}

func numCPU() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 1
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := sc.Text()
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
}
