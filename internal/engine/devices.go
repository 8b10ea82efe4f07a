package engine

import (
	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/ocispec"
)

// blkioSupport is what the host can apply; a variable for tests.
var blkioSupport = cgroups.Blkio

// validateDevices refuses malformed device mappings and cgroup rules, and
// applies Docker's block I/O rules: a setting the host's cgroups cannot
// apply is discarded with Docker's warning (the v1 weights need the CFQ or
// BFQ scheduler, which many hosts lack), and a weight out of range is
// refused.
func validateDevices(hc *container.HostConfig) (warnings []string, err error) {
	if err := ocispec.ValidateDevices(hc); err != nil {
		return nil, err
	}
	return validateBlkio(&hc.Resources)
}

// validateBlkio is dockerd's sysinfo check of the block I/O settings, for
// create and update.
func validateBlkio(r *container.Resources) (warnings []string, err error) {
	if r.BlkioWeight == 0 && len(r.BlkioWeightDevice)+len(r.BlkioDeviceReadBps)+len(r.BlkioDeviceWriteBps)+
		len(r.BlkioDeviceReadIOps)+len(r.BlkioDeviceWriteIOps) == 0 {
		return nil, nil
	}
	sup := blkioSupport()
	if r.BlkioWeight > 0 && !sup.Weight {
		warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		r.BlkioWeight = 0
	}
	if r.BlkioWeight > 0 && (r.BlkioWeight < 10 || r.BlkioWeight > 1000) {
		return warnings, errdefs.Invalid("Range of blkio weight is from 10 to 1000")
	}
	if len(r.BlkioWeightDevice) > 0 && !sup.WeightDevice {
		warnings = append(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		r.BlkioWeightDevice = []*blkiodev.WeightDevice{}
	}
	for _, t := range []struct {
		devs *[]*blkiodev.ThrottleDevice
		ok   bool
		msg  string
	}{
		{&r.BlkioDeviceReadBps, sup.ReadBpsDevice, "Your kernel does not support BPS Block I/O read limit or the cgroup is not mounted. Block I/O BPS read limit discarded."},
		{&r.BlkioDeviceWriteBps, sup.WriteBpsDevice, "Your kernel does not support BPS Block I/O write limit or the cgroup is not mounted. Block I/O BPS write limit discarded."},
		{&r.BlkioDeviceReadIOps, sup.ReadIOpsDevice, "Your kernel does not support IOPS Block read limit or the cgroup is not mounted. Block I/O IOPS read limit discarded."},
		{&r.BlkioDeviceWriteIOps, sup.WriteIOpsDevice, "Your kernel does not support IOPS Block write limit or the cgroup is not mounted. Block I/O IOPS write limit discarded."},
	} {
		if len(*t.devs) > 0 && !t.ok {
			warnings = append(warnings, t.msg)
			*t.devs = []*blkiodev.ThrottleDevice{}
		}
	}
	return warnings, nil
}

// validateUpdateBlkio is validateBlkio for an update. The per-device lists
// are dropped first, as dockerd's router drops them below API 1.55 (skiff
// serves 1.51): an update never changes them.
func validateUpdateBlkio(r *container.Resources) ([]string, error) {
	r.BlkioWeightDevice, r.BlkioDeviceReadBps, r.BlkioDeviceWriteBps = nil, nil, nil
	r.BlkioDeviceReadIOps, r.BlkioDeviceWriteIOps = nil, nil
	return validateBlkio(r)
}
