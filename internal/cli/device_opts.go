package cli

import (
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// deviceOptions are the per-device block I/O flags of create and run, and
// --gpus.
type deviceOptions struct {
	gpus                opts.GpuOpts
	weightDevice        opts.WeightDeviceOpt
	readBps, writeBps   opts.ThrottleDeviceOpt
	readIOps, writeIOps opts.ThrottleDeviceOpt
}

func addDeviceFlags(flags *pflag.FlagSet) *deviceOptions {
	b := &deviceOptions{
		readBps:   opts.NewThrottleDeviceOpt(opts.ValidateThrottleBpsDevice),
		writeBps:  opts.NewThrottleDeviceOpt(opts.ValidateThrottleBpsDevice),
		readIOps:  opts.NewThrottleDeviceOpt(opts.ValidateThrottleIOpsDevice),
		writeIOps: opts.NewThrottleDeviceOpt(opts.ValidateThrottleIOpsDevice),
	}
	flags.Var(&b.weightDevice, "blkio-weight-device", "Block IO weight (relative device weight)")
	flags.Var(&b.readBps, "device-read-bps", "Limit read rate (bytes per second) from a device")
	flags.Var(&b.readIOps, "device-read-iops", "Limit read rate (IO per second) from a device")
	flags.Var(&b.writeBps, "device-write-bps", "Limit write rate (bytes per second) to a device")
	flags.Var(&b.writeIOps, "device-write-iops", "Limit write rate (IO per second) to a device")
	flags.Var(&b.gpus, "gpus", "GPU devices to add to the container ('all' to pass all GPUs)")
	return b
}

func (b *deviceOptions) apply(r *container.Resources) {
	r.BlkioWeightDevice = b.weightDevice.GetList()
	r.BlkioDeviceReadBps = b.readBps.GetList()
	r.BlkioDeviceWriteBps = b.writeBps.GetList()
	r.BlkioDeviceReadIOps = b.readIOps.GetList()
	r.BlkioDeviceWriteIOps = b.writeIOps.GetList()
	r.DeviceRequests = b.gpus.Value()
}
