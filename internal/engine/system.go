package engine

import (
	"context"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/filters"
)

// APIVersion is the newest Docker Engine API version skiff speaks.
const (
	APIVersion    = "1.51"
	MinAPIVersion = "1.24"
)

// Info answers GET /info.
func (e *Engine) Info(ctx context.Context) (*system.Info, error) {
	var running, stopped int
	all := e.reg.all()
	for _, c := range all {
		c.mu.Lock()
		if c.State.Running {
			running++
		} else {
			stopped++
		}
		c.mu.Unlock()
	}
	imgs, _ := e.images.List(ctx)
	var uts unix.Utsname
	unix.Uname(&uts)
	var si unix.Sysinfo_t
	unix.Sysinfo(&si)
	host, _ := os.Hostname()
	cgv := "1"
	if isCgroup2() {
		cgv = "2"
	}
	return &system.Info{
		ID: "skiff", Containers: len(all), ContainersRunning: running, ContainersStopped: stopped,
		Images: len(imgs), Driver: "overlayfs", DriverStatus: [][2]string{{"driver-type", "skiff overlay snapshots"}},
		MemoryLimit: true, SwapLimit: fileExists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes") || cgv == "2",
		CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true, CPUSet: true, PidsLimit: true,
		OomKillDisable: cgv == "1", IPv4Forwarding: true, NGoroutines: runtime.NumGoroutine(),
		SystemTime: time.Now().Format(time.RFC3339Nano), LoggingDriver: e.defaultLogDriver(),
		CgroupDriver: "cgroupfs", CgroupVersion: cgv,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]), OperatingSystem: osName(),
		OSVersion: "", OSType: "linux", Architecture: unix.ByteSliceToString(uts.Machine[:]),
		NCPU: runtime.NumCPU(), MemTotal: int64(si.Totalram) * int64(si.Unit),
		DockerRootDir: e.cfg.DataRoot, Name: host, ServerVersion: Version,
		Runtimes:       map[string]system.RuntimeWithStatus{"skiff": {Runtime: system.Runtime{Path: e.cfg.ShimPath}}},
		DefaultRuntime: "skiff", LiveRestoreEnabled: true, Labels: []string{},
		SecurityOptions: e.securityOptions(), CDISpecDirs: []string{}, Warnings: []string{},
		Plugins: system.PluginsInfo{Log: logDriverPlugins()}, // logconfig.go
	}, nil
}

// Version answers GET /version.
func (e *Engine) Version(ctx context.Context) system.VersionResponse {
	var uts unix.Utsname
	unix.Uname(&uts)
	return system.VersionResponse{
		Platform: struct{ Name string }{Name: "skiff Engine"},
		Components: []system.ComponentVersion{{Name: "Engine", Version: Version, Details: map[string]string{
			"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "GoVersion": runtime.Version(), "Os": "linux", "Arch": runtime.GOARCH,
		}}},
		Version: Version, APIVersion: APIVersion, MinAPIVersion: MinAPIVersion,
		GoVersion: runtime.Version(), Os: "linux", Arch: runtime.GOARCH,
		KernelVersion: unix.ByteSliceToString(uts.Release[:]), BuildTime: "",
	}
}

// SubscribeEvents returns past events and a live feed.
func (e *Engine) SubscribeEvents(since, until time.Time, f filters.Args) ([]events.Message, <-chan events.Message, func()) {
	return e.events.subscribe(since, until, f)
}

func isCgroup2() bool {
	var st unix.Statfs_t
	return unix.Statfs("/sys/fs/cgroup", &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}
