package ocispec

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestSeccompProfile(t *testing.T) {
	for _, tc := range []struct {
		name   string
		hc     container.HostConfig
		filter bool
		err    string
	}{
		{"default", container.HostConfig{}, true, ""},
		{"builtin", container.HostConfig{SecurityOpt: []string{"seccomp=builtin"}}, true, ""},
		{"unconfined", container.HostConfig{SecurityOpt: []string{"seccomp=unconfined"}}, false, ""},
		{"privileged", container.HostConfig{Privileged: true}, false, ""},
		{"custom", container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["mkdir"],"action":"SCMP_ACT_ERRNO"}]}`}}, true, ""},
		{"bad json", container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":1}`}}, false, "Decoding seccomp profile failed"},
		{"bad action", container.HostConfig{SecurityOpt: []string{`seccomp={"defaultAction":"SCMP_ACT_NOPE"}`}}, false, `unknown action "SCMP_ACT_NOPE"`},
	} {
		prof, prog, err := SeccompProfile(&tc.hc, DefaultCaps)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || errdefs.KindOf(err) != errdefs.KindInvalid {
				t.Errorf("%s: %v, want Invalid %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || (prof != nil) != tc.filter || (prog != "") != tc.filter {
			t.Errorf("%s: profile %v filter %d chars err %v", tc.name, prof != nil, len(prog), err)
		}
	}
	// The same profile and capabilities compile once.
	a, _, _ := SeccompProfile(&container.HostConfig{}, DefaultCaps)
	b, _, _ := SeccompProfile(&container.HostConfig{}, DefaultCaps)
	if a != b {
		t.Error("default profile compiled twice")
	}
}
