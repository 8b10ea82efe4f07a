package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/image"
)

func TestValidateCreateFields(t *testing.T) {
	cases := []struct {
		name string
		hc   container.HostConfig
		want string // substring of the error; "" = valid
		warn string // substring of a warning
	}{
		{"defaults", container.HostConfig{}, "", ""},
		{"default isolation", container.HostConfig{Isolation: "default"}, "", ""},
		{"hyperv", container.HostConfig{Isolation: "hyperv"}, "invalid isolation (hyperv): linux only supports 'default'", ""},
		{"io bandwidth", container.HostConfig{Resources: container.Resources{IOMaximumBandwidth: 1}}, "QoS maximum bandwidth configuration is not supported on linux", ""},
		{"io iops", container.HostConfig{Resources: container.Resources{IOMaximumIOps: 1}}, "QoS maximum IOPs configuration is not supported on linux", ""},
		{"cpu percent", container.HostConfig{Resources: container.Resources{CPUPercent: 20}}, "", "linux does not support CPU percent. Percent discarded."},
		{"cpu count", container.HostConfig{Resources: container.Resources{CPUCount: 2}}, "", "linux does not support CPU count"},
		{"runc", container.HostConfig{Runtime: "runc"}, "", ""},
		{"unknown runtime", container.HostConfig{Runtime: "kata"}, "unknown or invalid runtime name: kata", ""},
		{"gpus", container.HostConfig{Resources: container.Resources{DeviceRequests: []container.DeviceRequest{{Count: -1, Capabilities: [][]string{{"gpu"}}}}}},
			`could not select device driver "" with capabilities: [[gpu]]`, ""},
		{"storage opt", container.HostConfig{StorageOpt: map[string]string{"size": "1G"}}, "--storage-opt is supported only for overlay over xfs", ""},
		{"annotation", container.HostConfig{Annotations: map[string]string{"org.example": "x"}}, "", ""},
		{"empty annotation key", container.HostConfig{Annotations: map[string]string{"": "x"}}, "the empty string is not permitted as an annotation key", ""},
		{"skiff annotation", container.HostConfig{Annotations: map[string]string{"org.skiff.rootfs.overlay": "x"}}, "the org.skiff. prefix is reserved", ""},
		{"oom score adj", container.HostConfig{OomScoreAdj: -1001}, "Invalid value -1001, range for oom score adj is [-1000, 1000]", ""},
		{"security opts", container.HostConfig{SecurityOpt: []string{"no-new-privileges", "no-new-privileges=1", "label=disable", "label:type:x", "apparmor=unconfined", "seccomp=unconfined", "writable-cgroups=true", "disable"}}, "", ""},
		{"unknown security opt", container.HostConfig{SecurityOpt: []string{"foo=bar"}}, `invalid --security-opt 2: "foo=bar"`, ""},
		{"security opt without value", container.HostConfig{SecurityOpt: []string{"label"}}, `invalid --security-opt 1: "label"`, ""},
		{"systempaths over the API", container.HostConfig{SecurityOpt: []string{"systempaths=unconfined"}}, `invalid --security-opt 2: "systempaths=unconfined"`, ""},
		{"bad no-new-privileges", container.HostConfig{SecurityOpt: []string{"no-new-privileges=maybe"}}, `invalid --security-opt 2: "no-new-privileges=maybe"`, ""},
		{"mems beyond the host", container.HostConfig{Resources: container.Resources{CpusetMems: "0-1000"}}, "Requested memory nodes are not available - requested 0-1000", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hc := tc.hc
			warnings, err := validateCreateFields(&hc)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errdefs.IsInvalid(err)):
				t.Fatalf("error %v, want an invalid-parameter error with %q", err, tc.want)
			}
			if tc.warn != "" && !strings.Contains(strings.Join(warnings, "\n"), tc.warn) {
				t.Errorf("warnings %q lack %q", warnings, tc.warn)
			}
		})
	}
}

func TestCheckCreatePlatform(t *testing.T) {
	img := &image.Image{}
	img.Config.Platform = ocispec.Platform{OS: "linux", Architecture: "amd64"}
	for _, tc := range []struct {
		platform string
		want     string
	}{
		{"", ""},
		{"linux", ""},
		{"linux/amd64", ""},
		{"linux/x86_64", ""},
		{"linux/arm64", "image with reference busybox was found but its platform (linux/amd64) does not match the specified platform (linux/arm64)"},
		{"windows", "does not match the specified platform (windows)"},
	} {
		err := checkCreatePlatform(WithCreatePlatform(context.Background(), tc.platform), "busybox", img)
		if (tc.want == "") != (err == nil) || (err != nil && (!strings.Contains(err.Error(), tc.want) || !errdefs.IsNotFound(err))) {
			t.Errorf("platform %q: %v, want %q", tc.platform, err, tc.want)
		}
	}
}
