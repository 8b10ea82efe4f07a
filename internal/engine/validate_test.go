package engine

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

func TestValidateHostConfig(t *testing.T) {
	neg := int64(-5)
	cases := []struct {
		name string
		hc   container.HostConfig
		want string // substring of the error; "" = valid
	}{
		{"defaults", container.HostConfig{}, ""},
		{"memory too small", container.HostConfig{Resources: container.Resources{Memory: 1 << 20}}, "Minimum memory limit allowed is 6MB"},
		{"swap below memory", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: 32 << 20}}, "memoryswap limit should be larger"},
		{"swap without memory", container.HostConfig{Resources: container.Resources{MemorySwap: 64 << 20}}, "always set the Memory limit"},
		{"unlimited swap", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemorySwap: -1}}, ""},
		{"reservation above limit", container.HostConfig{Resources: container.Resources{Memory: 64 << 20, MemoryReservation: 128 << 20}}, "memory reservation"},
		{"too many cpus", container.HostConfig{Resources: container.Resources{NanoCPUs: 1000e9}}, "Range of CPUs"},
		{"nano and quota", container.HostConfig{Resources: container.Resources{NanoCPUs: 1e9, CPUQuota: 50000}}, "Conflicting options"},
		{"bad period", container.HostConfig{Resources: container.Resources{CPUPeriod: 10}}, "cfs period"},
		{"bad cpuset", container.HostConfig{Resources: container.Resources{CpusetCpus: "a-b"}}, "Invalid value a-b"},
		{"cpuset out of range", container.HostConfig{Resources: container.Resources{CpusetCpus: "0-99"}}, "not available"},
		{"good cpuset", container.HostConfig{Resources: container.Resources{CpusetCpus: "0"}}, ""},
		{"pids unlimited", container.HostConfig{Resources: container.Resources{PidsLimit: &neg}}, ""},
		{"empty container network", container.HostConfig{NetworkMode: "container:"}, "invalid network mode"},
		{"bad restart", container.HostConfig{RestartPolicy: container.RestartPolicy{Name: "sometimes"}}, "invalid restart policy"},
		{"rm with restart", container.HostConfig{AutoRemove: true, RestartPolicy: container.RestartPolicy{Name: "always"}}, "AutoRemove"},
		{"bad log driver", container.HostConfig{LogConfig: container.LogConfig{Type: "fluentbit"}}, "logger: no log driver named 'fluentbit' is registered"},
		{"syslog", container.HostConfig{LogConfig: container.LogConfig{Type: "syslog"}}, ""},
		{"bad max-size", container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"max-size": "lots"}}}, "invalid size: 'lots'"},
		{"unknown log opt", container.HostConfig{LogConfig: container.LogConfig{Config: map[string]string{"colour": "red"}}}, "unknown log opt"},
	}
	for _, c := range cases {
		_, err := validateHostConfig(&c.hc)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		case c.want != "" && !errdefs.IsInvalid(err):
			t.Errorf("%s: error kind %v, want Invalid", c.name, errdefs.KindOf(err))
		}
	}
}

func TestParseSignal(t *testing.T) {
	cases := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "term": syscall.SIGTERM, "KILL": syscall.SIGKILL, "9": syscall.SIGKILL, "SIGRTMIN+1": 35,
		"SIGRTMIN+3": 37, "rtmin+3": 37, "RTMIN": 34, "SIGRTMAX": 64, "RTMAX-1": 63, "SIGRTMAX-14": 50, "37": 37}
	for in, want := range cases {
		if got, err := ParseSignal(in); err != nil || got != want {
			t.Errorf("ParseSignal(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "NOPE", "0", "99", "SIGRTMIN+16", "RTMIN+x", "RTMAX-15", "RTMIN+03"} {
		if _, err := ParseSignal(bad); err == nil {
			t.Errorf("ParseSignal(%q) accepted", bad)
		}
	}
}

func TestMergeEnvOverridesByKey(t *testing.T) {
	got := mergeEnv([]string{"PATH=/bin", "A=1"}, []string{"A=2", "B=3"})
	if strings.Join(got, " ") != "PATH=/bin A=2 B=3" {
		t.Errorf("mergeEnv = %q", got)
	}
}

func TestEventLogFiltersAndReplay(t *testing.T) {
	l := newEventLog()
	start := time.Now().Add(-time.Second)
	l.publish(events.ContainerEventType, events.ActionCreate, "aaa", map[string]string{"name": "web", "image": "busybox"})
	l.publish(events.ImageEventType, events.ActionTag, "sha256:1", map[string]string{"name": "busybox:1"})
	past, live, cancel := l.subscribe(start, time.Time{}, filters.Args{"type": {"container"}})
	defer cancel()
	if len(past) != 1 || past[0].Actor.ID != "aaa" {
		t.Fatalf("past = %+v", past)
	}
	l.publish(events.ContainerEventType, events.ActionStart, "bbb", map[string]string{"name": "db"})
	l.publish(events.ImageEventType, events.ActionUnTag, "sha256:1", nil)
	select {
	case m := <-live:
		if m.Actor.ID != "bbb" || m.Action != events.ActionStart {
			t.Errorf("live = %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no live event")
	}
	select {
	case m := <-live:
		t.Errorf("filtered event delivered: %+v", m)
	default:
	}
	// until in the past: stored events only, no live channel.
	past, live2, _ := l.subscribe(start, time.Now(), filters.Args{"container": {"web"}})
	if len(past) != 1 || live2 != nil {
		t.Errorf("until: past %d, live %v", len(past), live2)
	}
}
