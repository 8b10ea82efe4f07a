package cgroups

import (
	"os"
	"path/filepath"
	"strings"
)

// BlkioSupport is which block I/O settings this host's cgroups can apply
// (Docker's sysinfo for the blkio / io controller).
type BlkioSupport struct {
	Weight, WeightDevice            bool
	ReadBpsDevice, WriteBpsDevice   bool
	ReadIOpsDevice, WriteIOpsDevice bool
}

// Blkio reports what the host supports: on cgroup v1 the files of the blkio
// hierarchy (weights need the CFQ or BFQ scheduler, throttles the
// throttling layer); on v2 everything when the io controller is available
// to our cgroup.
func Blkio() BlkioSupport {
	unified, err := IsUnified()
	if err != nil {
		return BlkioSupport{}
	}
	if unified {
		own, err := ownCgroup("")
		if err != nil {
			return BlkioSupport{}
		}
		ctrls, _ := readFile(filepath.Join(DefaultRoot, own), "cgroup.controllers")
		for _, c := range strings.Fields(ctrls) {
			if c == "io" {
				return BlkioSupport{Weight: true, WeightDevice: true, ReadBpsDevice: true, WriteBpsDevice: true, ReadIOpsDevice: true, WriteIOpsDevice: true}
			}
		}
		return BlkioSupport{}
	}
	hs, err := v1Hierarchies()
	if err != nil {
		return BlkioSupport{}
	}
	for _, h := range hs {
		for _, c := range h.Controllers {
			if c != "blkio" {
				continue
			}
			has := func(names ...string) bool {
				for _, n := range names {
					if _, err := os.Stat(filepath.Join(h.Mountpoint, n)); err == nil {
						return true
					}
				}
				return false
			}
			return BlkioSupport{
				Weight:          has("blkio.weight", "blkio.bfq.weight"),
				WeightDevice:    has("blkio.weight_device", "blkio.bfq.weight_device"),
				ReadBpsDevice:   has("blkio.throttle.read_bps_device"),
				WriteBpsDevice:  has("blkio.throttle.write_bps_device"),
				ReadIOpsDevice:  has("blkio.throttle.read_iops_device"),
				WriteIOpsDevice: has("blkio.throttle.write_iops_device"),
			}
		}
	}
	return BlkioSupport{}
}
