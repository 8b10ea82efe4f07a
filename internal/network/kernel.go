package network

import (
	"net"
	"net/netip"
	"strconv"
)

// Host is the Kernel of a real host: netlink, namespaces and sockets.
type Host struct{}

var _ Kernel = Host{}

func (Host) EnsureBridge(name string, gw *net.IPNet, mtu int) error {
	return EnsureBridge(name, gw, mtu)
}
func (Host) DeleteLink(name string) error  { return DeleteLink(name) }
func (Host) CreateNetNS(path string) error { return CreateNetNS(path) }
func (Host) DeleteNetNS(path string) error { return DeleteNetNS(path) }
func (Host) Attach(ep Endpoint) error      { return Attach(ep) }
func (Host) EnableForwarding() error       { return EnableForwarding() }

// HostPortFree tells whether no host process listens on the port.
func (Host) HostPortFree(proto, hostIP string, p uint16) bool {
	addr := net.JoinHostPort(hostIP, strconv.Itoa(int(p)))
	if proto == "udp" {
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return false
		}
		c.Close()
		return true
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	l.Close()
	return true
}

// HostRouteOverlaps tells whether p overlaps a network the host already
// routes (its own interfaces), so a new bridge never shadows it.
func (Host) HostRouteOverlaps(p netip.Prefix) bool {
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && !ipn.IP.IsLoopback() {
			ones, _ := ipn.Mask.Size()
			ap, _ := netip.AddrFromSlice(ipn.IP.To4())
			if netip.PrefixFrom(ap, ones).Masked().Overlaps(p) {
				return true
			}
		}
	}
	return false
}
