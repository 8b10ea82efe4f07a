package ocispec

import (
	"os"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// withBlkioDevices adds --blkio-weight-device and the --device-read-bps,
// -write-bps, -read-iops and -write-iops throttles to r, each device path
// turned into its major:minor as Docker does (stat, following symlinks). A
// path that cannot be stat'ed fails the start with Docker's words. They are
// not part of Resources: update leaves them as the start set them.
func withBlkioDevices(r *specs.LinuxResources, hc *container.HostConfig) error {
	res := &hc.Resources
	if len(res.BlkioWeightDevice)+len(res.BlkioDeviceReadBps)+len(res.BlkioDeviceWriteBps)+
		len(res.BlkioDeviceReadIOps)+len(res.BlkioDeviceWriteIOps) == 0 {
		return nil
	}
	if r.BlockIO == nil {
		r.BlockIO = &specs.LinuxBlockIO{}
	}
	b := r.BlockIO
	for _, wd := range res.BlkioWeightDevice {
		if wd == nil {
			continue
		}
		major, minor, err := blkioDevice(wd.Path)
		if err != nil {
			return err
		}
		b.WeightDevice = append(b.WeightDevice, specs.LinuxWeightDevice{
			LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Weight: ptr(wd.Weight),
		})
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{res.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice},
		{res.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{res.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice},
		{res.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			if d == nil {
				continue
			}
			major, minor, err := blkioDevice(d.Path)
			if err != nil {
				return err
			}
			*t.out = append(*t.out, specs.LinuxThrottleDevice{
				LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: d.Rate,
			})
		}
	}
	return nil
}

func blkioDevice(path string) (int64, int64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, errdefs.System("%v", &os.PathError{Op: "stat", Path: path, Err: err})
	}
	return int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev)), nil
}
