package ocispec

import (
	"testing"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestBlkioDevices(t *testing.T) {
	hc := &container.HostConfig{}
	hc.BlkioWeightDevice = []*blkiodev.WeightDevice{{Path: "/dev/null", Weight: 300}}
	hc.BlkioDeviceReadBps = []*blkiodev.ThrottleDevice{{Path: "/dev/zero", Rate: 1 << 20}}
	hc.BlkioDeviceWriteIOps = []*blkiodev.ThrottleDevice{{Path: "/dev/null", Rate: 50}}
	r := &specs.LinuxResources{}
	if err := withBlkioDevices(r, hc); err != nil {
		t.Fatal(err)
	}
	b := r.BlockIO
	if len(b.WeightDevice) != 1 || b.WeightDevice[0].Major != 1 || b.WeightDevice[0].Minor != 3 || *b.WeightDevice[0].Weight != 300 {
		t.Errorf("weight device %+v", b.WeightDevice)
	}
	if len(b.ThrottleReadBpsDevice) != 1 || b.ThrottleReadBpsDevice[0].Minor != 5 || b.ThrottleReadBpsDevice[0].Rate != 1<<20 {
		t.Errorf("read bps %+v", b.ThrottleReadBpsDevice)
	}
	if len(b.ThrottleWriteIOPSDevice) != 1 || b.ThrottleWriteIOPSDevice[0].Rate != 50 || len(b.ThrottleWriteBpsDevice) != 0 {
		t.Errorf("write iops %+v", b)
	}
	hc.BlkioDeviceWriteBps = []*blkiodev.ThrottleDevice{{Path: "/dev/skiff-nope", Rate: 1}}
	err := withBlkioDevices(&specs.LinuxResources{}, hc)
	if err == nil || err.Error() != "stat /dev/skiff-nope: no such file or directory" {
		t.Errorf("missing device: %v", err)
	}
	// Nothing asked: nothing set (update's Resources never carries them).
	r = &specs.LinuxResources{}
	if err := withBlkioDevices(r, &container.HostConfig{}); err != nil || r.BlockIO != nil {
		t.Errorf("%+v %v", r.BlockIO, err)
	}
}
