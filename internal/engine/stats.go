package engine

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
)

// ContainerStats takes one sample of a container's resource usage from its
// cgroup (v1 or v2) and its network namespace, in Docker's stats format.
// PreCPUStats is left to the caller (the apiserver pairs samples). A
// container that is not running gives an empty sample, as Docker's does.
func (e *Engine) ContainerStats(ctx context.Context, ref string) (container.StatsResponse, error) {
	c, err := e.reg.get(ref)
	if err != nil {
		return container.StatsResponse{}, err
	}
	c.mu.Lock()
	running, pid, name := c.State.Running, c.State.Pid, c.Name
	c.mu.Unlock()
	s := container.StatsResponse{ID: c.ID, Name: "/" + name, OSType: "linux", Read: time.Now().UTC()}
	if !running {
		s.Read = time.Time{}
		return s, nil
	}
	cg, err := e.cgroupOf(c)
	if err != nil {
		return s, nil // exited meanwhile
	}
	st, err := cg.Stats()
	if err != nil && st == nil {
		return s, fmt.Errorf("stats of %s: %w", c.ID, err)
	}
	ncpu := uint32(numCPU())
	s.CPUStats = container.CPUStats{
		CPUUsage:    container.CPUUsage{TotalUsage: st.CPUUsageNs},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  ncpu,
	}
	s.MemoryStats = container.MemoryStats{Usage: st.MemoryUsage, Limit: st.MemoryLimit, Stats: map[string]uint64{}}
	if s.MemoryStats.Limit == 0 {
		s.MemoryStats.Limit = hostMemory()
	}
	s.PidsStats = container.PidsStats{Current: st.PidsCurrent, Limit: st.PidsLimit}
	readCgroupExtras(cg, &s)
	s.Networks = netStats(pid)
	return s, nil
}

// ctrlDir finds the directory of a v1 controller ("blkio", "memory") or the
// unified one ("").
func ctrlDir(cg cgroups.Manager, ctrl string) string {
	for k, d := range cg.Dirs() {
		if ctrl == "" && k == "" {
			return d
		}
		for _, n := range strings.Split(k, ",") {
			if n == ctrl {
				return d
			}
		}
	}
	return ""
}

// readCgroupExtras fills what Manager.Stats does not report: the page cache
// the docker CLI subtracts from memory usage, and block I/O.
func readCgroupExtras(cg cgroups.Manager, s *container.StatsResponse) {
	if cg.Unified() {
		dir := ctrlDir(cg, "")
		for k, v := range keyed(filepath.Join(dir, "memory.stat")) {
			s.MemoryStats.Stats[k] = v
		}
		// io.stat: "8:0 rbytes=N wbytes=N rios=N wios=N ..."
		b, _ := os.ReadFile(filepath.Join(dir, "io.stat"))
		for _, l := range strings.Split(string(b), "\n") {
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			var maj, min uint64
			if _, err := fmt.Sscanf(f[0], "%d:%d", &maj, &min); err != nil {
				continue
			}
			for _, kv := range f[1:] {
				k, v, _ := strings.Cut(kv, "=")
				n, _ := strconv.ParseUint(v, 10, 64)
				switch k {
				case "rbytes":
					s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive, container.BlkioStatEntry{Major: maj, Minor: min, Op: "read", Value: n})
				case "wbytes":
					s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive, container.BlkioStatEntry{Major: maj, Minor: min, Op: "write", Value: n})
				}
			}
		}
		return
	}
	if dir := ctrlDir(cg, "memory"); dir != "" {
		for k, v := range keyed(filepath.Join(dir, "memory.stat")) {
			s.MemoryStats.Stats[k] = v
		}
	}
	if dir := ctrlDir(cg, "blkio"); dir != "" {
		for _, file := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.throttle.io_service_bytes"} {
			b, err := os.ReadFile(filepath.Join(dir, file))
			if err != nil {
				continue
			}
			for _, l := range strings.Split(string(b), "\n") {
				f := strings.Fields(l) // "8:0 Read 4096"
				if len(f) != 3 {
					continue
				}
				var maj, min uint64
				if _, err := fmt.Sscanf(f[0], "%d:%d", &maj, &min); err != nil {
					continue
				}
				n, _ := strconv.ParseUint(f[2], 10, 64)
				s.BlkioStats.IoServiceBytesRecursive = append(s.BlkioStats.IoServiceBytesRecursive,
					container.BlkioStatEntry{Major: maj, Minor: min, Op: strings.ToLower(f[1]), Value: n})
			}
			break
		}
	}
}

// keyed reads a "key value" per line file.
func keyed(path string) map[string]uint64 {
	out := map[string]uint64{}
	b, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			out[k] = n
		}
	}
	return out
}

// systemCPUUsage is the host's total CPU time in nanoseconds, from the
// "cpu" line of /proc/stat (in USER_HZ = 100 ticks per second), as Docker
// computes it.
func systemCPUUsage() uint64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range f[1:8] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * (1e9 / 100)
}

func hostMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseUint(f[0], 10, 64)
				return n * 1024
			}
		}
	}
	return 0
}

// netStats reads the interfaces of pid's network namespace (loopback
// excluded, as Docker reports only the container's endpoints).
func netStats(pid int) map[string]container.NetworkStats {
	if pid <= 0 {
		return nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	for _, l := range strings.Split(string(b), "\n") {
		name, rest, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		name = strings.TrimSpace(name)
		f := strings.Fields(rest)
		if name == "lo" || len(f) < 16 {
			continue
		}
		u := func(i int) uint64 { n, _ := strconv.ParseUint(f[i], 10, 64); return n }
		out[name] = container.NetworkStats{
			RxBytes: u(0), RxPackets: u(1), RxErrors: u(2), RxDropped: u(3),
			TxBytes: u(8), TxPackets: u(9), TxErrors: u(10), TxDropped: u(11),
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
