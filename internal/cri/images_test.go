package cri

import (
	"testing"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestRefuseImageVolumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mounts []*runtimeapi.Mount
		refuse bool
	}{
		{"no mounts", nil, false},
		{"host paths", []*runtimeapi.Mount{{HostPath: "/a", ContainerPath: "/b"}}, false},
		{"an empty image spec", []*runtimeapi.Mount{{HostPath: "/a", ContainerPath: "/b", Image: &runtimeapi.ImageSpec{}}}, false},
		{"an image", []*runtimeapi.Mount{{HostPath: "/a", ContainerPath: "/b"}, {ContainerPath: "/img", Image: &runtimeapi.ImageSpec{Image: "busybox"}}}, true},
	} {
		err := refuseImageVolumes(&runtimeapi.ContainerConfig{Metadata: &runtimeapi.ContainerMetadata{Name: "c"}, Mounts: tc.mounts})
		if tc.refuse != (err != nil) || (err != nil && errdefs.KindOf(err) != errdefs.KindNotImplemented) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
