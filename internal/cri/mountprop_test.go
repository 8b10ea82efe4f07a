package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{
		"/plain":              "/plain",
		`/with\040space`:      "/with space",
		`/tab\011and\134back`: "/tab\tand\\back",
		`/trailing\04`:        `/trailing\04`, // too short to be an escape
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// The mount holding a path is the deepest mount point above it.
func TestMountOf(t *testing.T) {
	for path, want := range map[string]string{"/proc/self/status": "/proc", "/proc": "/proc", "/": "/"} {
		mp, _, err := mountOf(path)
		if err != nil || mp != want {
			t.Errorf("mountOf(%s) = %q, %v; want %q", path, mp, err, want)
		}
	}
	if _, _, err := mountOf("/no/such/path"); err == nil {
		t.Error("mountOf of a missing path succeeded")
	}
	// A private propagation is never checked; a missing host path with
	// one that is, is refused.
	if err := checkPropagation(&runtimeapi.Mount{HostPath: "/no/such/path"}); err != nil {
		t.Errorf("private mount of a missing path: %v", err)
	}
	if err := checkPropagation(&runtimeapi.Mount{HostPath: "/no/such/path", Propagation: runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL}); err == nil {
		t.Error("rshared mount of a missing path passed")
	}
}
