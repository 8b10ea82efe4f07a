package cli

import (
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// blkioOptions are the per-device block I/O flags of create and run.
type blkioOptions struct {
	weightDevice        opts.WeightDeviceOpt
	readBps, writeBps   opts.ThrottleDeviceOpt
	readIOps, writeIOps opts.ThrottleDeviceOpt
}

func addBlkioFlags(flags *pflag.FlagSet) *blkioOptions {
	b := &blkioOptions{
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
	return b
}

func (b *blkioOptions) apply(r *container.Resources) {
	r.BlkioWeightDevice = b.weightDevice.GetList()
	r.BlkioDeviceReadBps = b.readBps.GetList()
	r.BlkioDeviceWriteBps = b.writeBps.GetList()
	r.BlkioDeviceReadIOps = b.readIOps.GetList()
	r.BlkioDeviceWriteIOps = b.writeIOps.GetList()
}
