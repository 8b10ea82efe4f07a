package runtime

import (
	"golang.org/x/sys/unix"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// loopbackUp sets IFF_UP on "lo" in the current network namespace. A new
// namespace starts with its loopback down, and programs expect 127.0.0.1 to
// work; one ioctl is cheaper than a netlink round trip on the start path.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return errdefs.System("loopback: socket: %v", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return errdefs.System("loopback: %v", err)
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return errdefs.System("loopback: get flags: %v", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return errdefs.System("loopback: set flags: %v", err)
	}
	return nil
}
