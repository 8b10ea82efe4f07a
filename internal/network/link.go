package network

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// EnsureBridge creates (or reuses) bridge name with gateway address gw
// (e.g. 172.18.0.1/16), brings it up and lets it route loopback-sourced
// traffic (route_localnet), so DNAT from 127.0.0.1 to a container works,
// and forwards what arrives on it (hairpin to published ports).
func EnsureBridge(name string, gw *net.IPNet, mtu int) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if !errors.As(err, &nf) {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = name
		if mtu > 0 {
			attrs.MTU = mtu
		}
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create bridge %s: %w", name, err)
		}
		if link, err = netlink.LinkByName(name); err != nil {
			return fmt.Errorf("look up bridge %s: %w", name, err)
		}
	} else if link.Type() != "bridge" {
		return fmt.Errorf("interface %s exists and is not a bridge", name)
	}
	if err := netlink.AddrReplace(link, &netlink.Addr{IPNet: gw}); err != nil {
		return fmt.Errorf("address %s on bridge %s: %w", gw, name, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring up bridge %s: %w", name, err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/route_localnet", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("route_localnet on %s: %w", name, err)
	}
	// Forwarding for packets that arrive on this bridge only (the host's
	// ip_forward is the daemon's "ip-forward" setting): a container
	// reaching a published port through a host address is routed back out
	// this same bridge after the DNAT.
	if err := os.WriteFile("/proc/sys/net/ipv4/conf/"+name+"/forwarding", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("forwarding on %s: %w", name, err)
	}
	return nil
}

// DeleteLink removes an interface by name; a missing one is not an error.
func DeleteLink(name string) error {
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := netlink.LinkDel(link); err != nil && !errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("delete %s: %w", name, err)
	}
	return nil
}

// Endpoint is one container interface on a bridge.
type Endpoint struct {
	NetNS    string // bind-mounted namespace path
	Bridge   string
	HostName string // host-side veth name (at most 15 bytes)
	IfName   string // name inside the container, e.g. eth0
	Addr     *net.IPNet
	Gateway  net.IP // nil: no default route (e.g. a second network)
	MAC      net.HardwareAddr
	MTU      int
	// LinkLocal are extra addresses on the interface (--link-local-ip).
	LinkLocal []*net.IPNet
}

// Attach creates a veth pair whose peer is born inside ep.NetNS (no move
// across namespaces), plugs the host side into the bridge and configures
// address, MAC, loopback and default route inside.
func Attach(ep Endpoint) (err error) {
	ns, err := netns.GetFromPath(ep.NetNS)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", ep.NetNS, err)
	}
	defer ns.Close()
	br, err := netlink.LinkByName(ep.Bridge)
	if err != nil {
		return fmt.Errorf("look up bridge %s: %w", ep.Bridge, err)
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name = ep.HostName
	attrs.MasterIndex = br.Attrs().Index
	if ep.MTU > 0 {
		attrs.MTU = ep.MTU
	}
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ep.IfName, PeerHardwareAddr: ep.MAC, PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostName, err)
	}
	defer func() {
		if err != nil {
			DeleteLink(ep.HostName)
		}
	}()
	host, err := netlink.LinkByName(ep.HostName)
	if err != nil {
		return fmt.Errorf("look up veth %s: %w", ep.HostName, err)
	}
	// Hairpin: with br_netfilter loaded the DNAT of a container's own
	// published port happens at the bridge, and the frame must go back
	// out the port it came in on.
	if err := netlink.LinkSetHairpin(host, true); err != nil {
		return fmt.Errorf("hairpin mode on %s: %w", ep.HostName, err)
	}
	if err := netlink.LinkSetUp(host); err != nil {
		return fmt.Errorf("bring up veth %s: %w", ep.HostName, err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("netlink in %s: %w", ep.NetNS, err)
	}
	defer h.Close()
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
	}
	in, err := h.LinkByName(ep.IfName)
	if err != nil {
		return fmt.Errorf("look up %s in container: %w", ep.IfName, err)
	}
	if err := h.AddrAdd(in, &netlink.Addr{IPNet: ep.Addr}); err != nil {
		return fmt.Errorf("address %s on %s: %w", ep.Addr, ep.IfName, err)
	}
	// skiff's networks are IPv4 only: as dockerd, IPv6 is off on the
	// interface (no autoconfigured fe80:: address, no multicast groups
	// open to NDP poisoning), so an IPv6 --link-local-ip fails below with
	// the kernel's EACCES, as on dockerd.
	if err := disableIPv6(ns, ep.IfName); err != nil {
		return err
	}
	for _, a := range ep.LinkLocal {
		if err := h.AddrAdd(in, &netlink.Addr{IPNet: a}); err != nil {
			// dockerd's words (libnetwork's osl), which make the docker
			// CLI exit 126 on "permission denied".
			return fmt.Errorf("error setting interface %q link local IPs to %v: %w", ep.IfName, ep.LinkLocal, err)
		}
	}
	if err := h.LinkSetUp(in); err != nil {
		return fmt.Errorf("bring up %s: %w", ep.IfName, err)
	}
	if ep.Gateway != nil {
		if err := h.RouteAdd(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: ep.Gateway}); err != nil {
			return fmt.Errorf("default route via %s: %w", ep.Gateway, err)
		}
	}
	return nil
}

// disableIPv6 sets net.ipv6.conf.IFNAME.disable_ipv6 in namespace ns. The
// sysctl is the writer's namespace's: a locked thread enters ns for it. A
// kernel without IPv6 has no such file, and nothing to disable.
func disableIPv6(ns netns.NsHandle, ifName string) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("disable IPv6 on %s: %w", ifName, err)
			return
		}
		defer orig.Close()
		if err := netns.Set(ns); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("disable IPv6 on %s: enter namespace: %w", ifName, err)
			return
		}
		err = os.WriteFile("/proc/sys/net/ipv6/conf/"+ifName+"/disable_ipv6", []byte("1"), 0o644)
		if errors.Is(err, os.ErrNotExist) {
			err = nil
		}
		if err != nil {
			err = fmt.Errorf("disable IPv6 on %s: %w", ifName, err)
		}
		// A thread that cannot go back stays locked: the runtime then
		// discards it with the goroutine.
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		errc <- err
	}()
	return <-errc
}

// MACFor derives Docker's stable MAC for an IPv4 address: 02:42 then the
// four address bytes.
func MACFor(ip net.IP) net.HardwareAddr {
	v4 := ip.To4()
	return net.HardwareAddr{0x02, 0x42, v4[0], v4[1], v4[2], v4[3]}
}

// EnableForwarding turns on IPv4 forwarding, needed for outbound NAT.
func EnableForwarding() error {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err == nil && len(b) > 0 && b[0] == '1' {
		return nil
	}
	if err := os.WriteFile("/proc/sys/net/ipv4/ip_forward", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("enable ip_forward: %w", err)
	}
	return nil
}
