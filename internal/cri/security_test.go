package cri

import (
	"os"
	"path/filepath"
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestSeccompOpt(t *testing.T) {
	prof := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(prof, []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`), 0o644)
	typed := func(pt runtimeapi.SecurityProfile_ProfileType, ref string) *runtimeapi.SecurityProfile {
		return &runtimeapi.SecurityProfile{ProfileType: pt, LocalhostRef: ref}
	}
	for _, tc := range []struct {
		p      *runtimeapi.SecurityProfile
		legacy string
		want   string
		bad    bool
	}{
		{nil, "", "seccomp=unconfined", false}, // as containerd: no profile is unconfined
		{nil, "unconfined", "seccomp=unconfined", false},
		{nil, "runtime/default", "", false},
		{nil, "docker/default", "", false},
		{nil, "localhost/" + prof, `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, false},
		{nil, "localhost/rel.json", "", true},
		{nil, "bogus", "", true},
		{typed(runtimeapi.SecurityProfile_RuntimeDefault, ""), "unconfined", "", false}, // typed wins
		{typed(runtimeapi.SecurityProfile_Unconfined, ""), "", "seccomp=unconfined", false},
		{typed(runtimeapi.SecurityProfile_Localhost, prof), "", `seccomp={"defaultAction":"SCMP_ACT_ALLOW"}`, false},
		{typed(runtimeapi.SecurityProfile_Localhost, "/nonexistent.json"), "", "", true},
	} {
		got, err := seccompOpt(tc.p, tc.legacy)
		if tc.bad != (err != nil) || got != tc.want {
			t.Errorf("seccompOpt(%v, %q) = %q, %v; want %q (error: %v)", tc.p, tc.legacy, got, err, tc.want, tc.bad)
		}
	}
	if err := checkAppArmor(&runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_Localhost, LocalhostRef: "p"}, ""); !(errdefs.KindOf(err) == errdefs.KindNotImplemented) {
		t.Errorf("AppArmor localhost profile: %v, want NotImplemented", err)
	}
	for _, ok := range []string{"", "unconfined", "runtime/default"} {
		if err := checkAppArmor(nil, ok); err != nil {
			t.Errorf("AppArmor %q: %v", ok, err)
		}
	}
}
