package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
)

func TestValidateDevicesBlkio(t *testing.T) {
	defer func(f func() cgroups.BlkioSupport) { blkioSupport = f }(blkioSupport)
	hc := func() *container.HostConfig {
		h := &container.HostConfig{}
		h.BlkioWeight = 300
		h.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: "/dev/sda", Weight: 200}}
		h.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/sda", Rate: 1}}
		return h
	}
	// Everything supported: kept, no warning.
	blkioSupport = func() cgroups.BlkioSupport {
		return cgroups.BlkioSupport{Weight: true, WeightDevice: true, ReadBpsDevice: true, WriteBpsDevice: true, ReadIOpsDevice: true, WriteIOpsDevice: true}
	}
	h := hc()
	if w, err := validateDevices(h); err != nil || len(w) != 0 || h.BlkioWeight != 300 || len(h.BlkioWeightDevice) != 1 || len(h.BlkioDeviceReadBps) != 1 {
		t.Errorf("supported: %v %v %+v", w, err, h.Resources)
	}
	h.BlkioWeight = 5
	if _, err := validateDevices(h); err == nil || err.Error() != "Range of blkio weight is from 10 to 1000" {
		t.Errorf("weight 5: %v", err)
	}
	// Only throttles (this host's v1): the weights go, with Docker's words.
	blkioSupport = func() cgroups.BlkioSupport { return cgroups.BlkioSupport{ReadBpsDevice: true, WriteBpsDevice: true} }
	h = hc()
	w, err := validateDevices(h)
	if err != nil || len(w) != 2 || !strings.Contains(w[0], "Weight discarded.") || !strings.Contains(w[1], "Weight-device discarded.") {
		t.Errorf("no weights: %q %v", w, err)
	}
	if h.BlkioWeight != 0 || len(h.BlkioWeightDevice) != 0 || len(h.BlkioDeviceReadBps) != 1 {
		t.Errorf("no weights: %+v", h.Resources)
	}
	// Bad device requests are refused at create.
	for _, tc := range []struct {
		hc   container.HostConfig
		want string
	}{
		{container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/sda", PathInContainer: "x"}}}}, "x is not an absolute path"},
		{container.HostConfig{Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/sda", CgroupPermissions: "rwx"}}}}, "bad mode specified: rwx"},
		{container.HostConfig{Resources: container.Resources{DeviceCgroupRules: []string{"c 1:3"}}}, "invalid device cgroup rule format: 'c 1:3'"},
	} {
		if _, err := validateDevices(&tc.hc); err == nil || err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.hc.Resources, err, tc.want)
		}
	}
}
