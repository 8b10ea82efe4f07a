package engine

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

// runtimeNames are the --runtime values skiff answers to: its own runtime
// (skiff-shim) under the names dockerd gives its default one, so compose
// files and scripts that say runtime: runc keep working.
var runtimeNames = map[string]bool{"": true, "runc": true, "io.containerd.runc.v2": true, "skiff": true}

// validateCreateFields takes or refuses the fields of a create request that
// no other check looks at, as dockerd does on Linux: what Linux cannot do is
// refused with dockerd's words, what this host's kernel lacks is discarded
// with dockerd's warning. Nothing is dropped without a word.
func validateCreateFields(hc *container.HostConfig) (warnings []string, err error) {
	if !hc.Isolation.IsDefault() {
		return nil, errdefs.Invalid("invalid isolation (%s): linux only supports 'default'", hc.Isolation)
	}
	if hc.IOMaximumBandwidth != 0 {
		return nil, errdefs.Invalid("invalid option: QoS maximum bandwidth configuration is not supported on linux")
	}
	if hc.IOMaximumIOps != 0 {
		return nil, errdefs.Invalid("invalid option: QoS maximum IOPs configuration is not supported on linux")
	}
	if hc.CPUPercent > 0 {
		warnings = append(warnings, "linux does not support CPU percent. Percent discarded.")
		hc.CPUPercent = 0
	}
	if hc.CPUCount > 0 {
		// dockerd drops it without a word; skiff says so.
		warnings = append(warnings, "linux does not support CPU count. Count discarded.")
		hc.CPUCount = 0
	}
	if !runtimeNames[hc.Runtime] {
		return nil, errdefs.Invalid("unknown or invalid runtime name: %s", hc.Runtime)
	}
	// skiff has no device drivers (dockerd's come from the NVIDIA
	// container toolkit), so every device request fails as dockerd's
	// does without one.
	for _, r := range hc.DeviceRequests {
		return nil, errdefs.Invalid("could not select device driver %q with capabilities: %v", r.Driver, r.Capabilities)
	}
	// Overlay snapshots have no per-container quota (dockerd's overlay2
	// has one only on xfs with pquota).
	if len(hc.StorageOpt) > 0 {
		return nil, errdefs.Invalid("--storage-opt is supported only for overlay over xfs with 'pquota' mount option")
	}
	for k := range hc.Annotations {
		if k == "" {
			return nil, errdefs.Invalid("invalid Annotations: the empty string is not permitted as an annotation key")
		}
		// The runtime reads its own instructions from org.skiff.*
		// annotations (overlay mount data, the seccomp filter).
		if strings.HasPrefix(k, "org.skiff.") {
			return nil, errdefs.Invalid("invalid Annotations: the org.skiff. prefix is reserved for skiff's runtime")
		}
	}
	if err := validateSecurityOpts(hc.SecurityOpt); err != nil {
		return nil, err
	}
	if hc.OomScoreAdj < -1000 || hc.OomScoreAdj > 1000 {
		return nil, errdefs.Invalid("Invalid value %d, range for oom score adj is [-1000, 1000]", hc.OomScoreAdj)
	}
	r := &hc.Resources
	if r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0 {
		if !hostHasRealtimeSched() {
			return nil, errdefs.Invalid("kernel does not support CPU real-time scheduler")
		}
		if r.CPURealtimePeriod != 0 && r.CPURealtimeRuntime > r.CPURealtimePeriod {
			return nil, errdefs.Invalid("cpu real-time runtime cannot be higher than cpu real-time period")
		}
	}
	warnings = append(warnings, discardMemoryFields(r)...)
	if r.BlkioWeight > 0 {
		if !hostHasBlkioWeight() {
			warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
			r.BlkioWeight = 0
		} else if r.BlkioWeight < 10 || r.BlkioWeight > 1000 {
			return nil, errdefs.Invalid("Range of blkio weight is from 10 to 1000")
		}
	}
	if r.CpusetMems != "" {
		avail := onlineMemNodes()
		if !cpusetWithin(r.CpusetMems, avail) {
			return nil, errdefs.Invalid("Requested memory nodes are not available - requested %s, available: %s", r.CpusetMems, avail)
		}
	}
	return warnings, nil
}

// hostHasRealtimeSched: real-time group scheduling has cgroup v1 files only.
func hostHasRealtimeSched() bool {
	if unified, _ := cgroups.IsUnified(); unified {
		return false
	}
	_, err := os.Stat("/sys/fs/cgroup/cpu/cpu.rt_runtime_us")
	return err == nil
}

// hostHasBlkioWeight: v1 has a weight file only under the CFQ or BFQ
// scheduler; v2 has the io controller.
func hostHasBlkioWeight() bool {
	if unified, _ := cgroups.IsUnified(); unified {
		b, _ := os.ReadFile("/sys/fs/cgroup/cgroup.controllers")
		return slices.Contains(strings.Fields(string(b)), "io")
	}
	for _, f := range []string{"blkio.weight", "blkio.bfq.weight"} {
		if _, err := os.Stat("/sys/fs/cgroup/blkio/" + f); err == nil {
			return true
		}
	}
	return false
}

// onlineMemNodes is the host's NUMA nodes, as "0" or "0-1".
func onlineMemNodes() string {
	b, err := os.ReadFile("/sys/devices/system/node/online")
	if err != nil || strings.TrimSpace(string(b)) == "" {
		return "0"
	}
	return strings.TrimSpace(string(b))
}

// cpusetWithin reports whether every number of the list s (as "0-2,4") is
// in the list avail.
func cpusetWithin(s, avail string) bool {
	have := map[int]bool{}
	for _, n := range expandCPUList(avail) {
		have[n] = true
	}
	nums := expandCPUList(s)
	if nums == nil {
		return false
	}
	for _, n := range nums {
		if !have[n] {
			return false
		}
	}
	return true
}

func expandCPUList(s string) []int {
	var out []int
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		var a, b int
		if _, err := fmt.Sscanf(lo, "%d", &a); err != nil {
			return nil
		}
		b = a
		if isRange {
			if _, err := fmt.Sscanf(hi, "%d", &b); err != nil {
				return nil
			}
		}
		for i := a; i <= b && i-a < 1<<12; i++ {
			out = append(out, i)
		}
	}
	return out
}

type createPlatformKey struct{}

// WithCreatePlatform carries the platform query parameter of a create
// request (API >= 1.41) to ContainerCreate.
func WithCreatePlatform(ctx context.Context, platform string) context.Context {
	if platform == "" {
		return ctx
	}
	return context.WithValue(ctx, createPlatformKey{}, platform)
}

// checkCreatePlatform refuses an image of another platform than the one the
// create asked for, with dockerd's words. NotFound, as dockerd's: a client
// then pulls the image for that platform.
func checkCreatePlatform(ctx context.Context, ref string, img *image.Image) error {
	want, _ := ctx.Value(createPlatformKey{}).(string)
	if want == "" {
		return nil
	}
	parts := strings.Split(strings.ToLower(want), "/")
	if len(parts) > 3 || parts[0] == "" {
		return errdefs.Invalid("%q: unknown operating system or architecture: invalid argument", want)
	}
	have := img.Config.Platform
	haveOS, haveArch := have.OS, normalizeArch(have.Architecture)
	if haveOS == "" {
		haveOS = "linux"
	}
	match := parts[0] == haveOS
	if len(parts) > 1 && normalizeArch(parts[1]) != haveArch {
		match = false
	}
	if len(parts) > 2 && have.Variant != "" && parts[2] != have.Variant {
		match = false
	}
	if match {
		return nil
	}
	got := haveOS + "/" + haveArch
	if have.Variant != "" {
		got += "/" + have.Variant
	}
	return errdefs.NotFound("image with reference %s was found but its platform (%s) does not match the specified platform (%s)", ref, got, strings.Join(parts, "/"))
}

func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

// validateSecurityOpts accepts what dockerd's parser accepts, with its
// words for the rest: label (SELinux) and apparmor options are taken and,
// on a host without SELinux or AppArmor, have no effect, as under dockerd;
// seccomp, no-new-privileges and writable-cgroups take effect in the spec.
func validateSecurityOpts(opts []string) error {
	for _, o := range opts {
		switch o {
		case "no-new-privileges", "writable-cgroups", "disable":
			continue
		}
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			k, v, ok = strings.Cut(o, ":")
		}
		if !ok {
			return errdefs.Invalid("invalid --security-opt 1: %q", o)
		}
		switch k {
		case "label", "apparmor", "seccomp":
		case "no-new-privileges", "writable-cgroups":
			if _, err := strconv.ParseBool(v); err != nil {
				return errdefs.Invalid("invalid --security-opt 2: %q", o)
			}
		default:
			return errdefs.Invalid("invalid --security-opt 2: %q", o)
		}
	}
	return nil
}

// discardMemoryFields drops, with dockerd's warnings, the memory settings the
// host's hierarchy has no file for: swappiness and the OOM-killer switch on
// cgroup v2, the swap limit on a v1 host without swap accounting.
func discardMemoryFields(r *container.Resources) (warnings []string) {
	if unified, _ := cgroups.IsUnified(); unified {
		if r.MemorySwappiness != nil && *r.MemorySwappiness != -1 {
			warnings = append(warnings, "Your kernel does not support memory swappiness capabilities or the cgroup is not mounted. Memory swappiness discarded.")
			r.MemorySwappiness = nil
		}
		if r.OomKillDisable != nil && *r.OomKillDisable {
			warnings = append(warnings, "Your kernel does not support OomKillDisable. OomKillDisable discarded.")
			r.OomKillDisable = nil
		}
		return warnings
	}
	if r.Memory > 0 && r.MemorySwap > 0 {
		if _, err := os.Stat("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes"); err != nil {
			warnings = append(warnings, "Your kernel does not support swap limit capabilities or the cgroup is not mounted. Memory limited without swap.")
			r.MemorySwap = -1
		}
	}
	return warnings
}
