// Package firewall keeps skiff's packet filtering and NAT in one nftables
// table that skiff owns (through netlink, no nft binary). It never lists,
// flushes or edits any other table. Rules carry their owner in the rule's
// user data ("n:<network>" or "c:<container>") so they can be removed by
// owner.
package firewall

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Firewall is the skiff table. Methods are safe for concurrent use.
type Firewall struct {
	mu                                  sync.Mutex
	conn                                *nftables.Conn
	table                               *nftables.Table
	pre, out, post, ports, fwd, isolate *nftables.Chain
}

// New (re)creates table name from scratch: a table left by a crashed engine
// is dropped first, and callers re-add the rules of what still runs.
func New(name string) (*Firewall, error) {
	conn, err := nftables.New()
	if err != nil {
		return nil, fmt.Errorf("nftables: %w", err)
	}
	f := &Firewall{conn: conn, table: &nftables.Table{Name: name, Family: nftables.TableFamilyIPv4}}
	if t, err := conn.ListTableOfFamily(name, nftables.TableFamilyIPv4); err == nil && t != nil {
		conn.DelTable(f.table)
		if err := conn.Flush(); err != nil {
			return nil, fmt.Errorf("drop stale nftables table %s: %w", name, err)
		}
	}
	conn.AddTable(f.table)
	accept := nftables.ChainPolicyAccept
	base := func(n string, typ nftables.ChainType, hook *nftables.ChainHook, prio *nftables.ChainPriority) *nftables.Chain {
		return conn.AddChain(&nftables.Chain{Name: n, Table: f.table, Type: typ, Hooknum: hook, Priority: prio, Policy: &accept})
	}
	f.pre = base("prerouting", nftables.ChainTypeNAT, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest)
	f.out = base("output", nftables.ChainTypeNAT, nftables.ChainHookOutput, nftables.ChainPriorityNATDest)
	f.post = base("postrouting", nftables.ChainTypeNAT, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource)
	f.fwd = base("forward", nftables.ChainTypeFilter, nftables.ChainHookForward, nftables.ChainPriorityFilter)
	f.ports = conn.AddChain(&nftables.Chain{Name: "ports", Table: f.table})
	f.isolate = conn.AddChain(&nftables.Chain{Name: "isolate", Table: f.table})
	// Published ports apply to traffic addressed to one of the host's own
	// addresses, whether it arrives (prerouting) or is sent by the host
	// itself (output, e.g. to 127.0.0.1).
	for _, c := range []*nftables.Chain{f.pre, f.out} {
		conn.AddRule(&nftables.Rule{Table: f.table, Chain: c, Exprs: []expr.Any{
			&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: f.ports.Name},
		}})
	}
	if err := conn.Flush(); err != nil {
		return nil, fmt.Errorf("create nftables table %s: %w", name, err)
	}
	return f, nil
}

// Destroy deletes the table and everything in it.
func (f *Firewall) Destroy() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.conn.DelTable(f.table)
	if err := f.conn.Flush(); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete nftables table %s: %w", f.table.Name, err)
	}
	return nil
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

func metaCmp(key expr.MetaKey, op expr.CmpOp, data []byte) []expr.Any {
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: data}}
}

// ipMatch matches the source (offset 12) or destination (16) against n.
// ctDNAT matches connections whose destination was rewritten (ct status dnat).
func ctDNAT() []expr.Any {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, 1<<5) // IPS_DST_NAT
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: make([]byte, 4)},
	}
}

func ipMatch(offset uint32, n *net.IPNet) []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: []byte(n.Mask), Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: n.IP.Mask(n.Mask).To4()},
	}
}

func cat(parts ...[]expr.Any) []expr.Any {
	var out []expr.Any
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

var loopback = &net.IPNet{IP: net.IPv4(127, 0, 0, 0).To4(), Mask: net.CIDRMask(8, 32)}

// Network is one bridge network's rules.
type Network struct {
	ID       string
	Bridge   string
	Subnet   *net.IPNet
	Internal bool // no traffic in or out of the bridge
}

// AddNetwork installs masquerade for outbound traffic, masquerade for
// loopback-sourced traffic DNATed into the bridge, and isolation from the
// other skiff bridges.
func (f *Firewall) AddNetwork(n Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tag := []byte("n:" + n.ID)
	add := func(c *nftables.Chain, e []expr.Any) {
		f.conn.AddRule(&nftables.Rule{Table: f.table, Chain: c, Exprs: e, UserData: tag})
	}
	br := ifname(n.Bridge)
	if n.Internal {
		add(f.fwd, cat(metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}))
		add(f.fwd, cat(metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpNeq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}))
	} else {
		add(f.post, cat(ipMatch(12, n.Subnet), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br), []expr.Any{&expr.Masq{}}))
	}
	add(f.post, cat(ipMatch(12, loopback), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), []expr.Any{&expr.Masq{}}))
	// Hairpin: a container reaching a published port (its own or a
	// neighbour's) through a host address goes back out the same bridge
	// after the DNAT. Without masquerade the answer would go straight to
	// it from the server's own address and not match its connection (and
	// to itself it would never leave the container). The source, not the
	// input interface, is matched: with br_netfilter loaded the input is
	// the veth port, not the bridge.
	add(f.post, cat(ipMatch(12, n.Subnet), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), ctDNAT(), []expr.Any{&expr.Masq{}}))
	// Traffic leaving this bridge for another one goes through "isolate",
	// which drops it when the other one is a skiff bridge too.
	add(f.fwd, cat(metaCmp(expr.MetaKeyIIFNAME, expr.CmpOpEq, br), metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpNeq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: f.isolate.Name}}))
	add(f.isolate, cat(metaCmp(expr.MetaKeyOIFNAME, expr.CmpOpEq, br), []expr.Any{&expr.Verdict{Kind: expr.VerdictDrop}}))
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables rules for network %s: %w", n.ID, err)
	}
	return nil
}

// RemoveNetwork deletes the rules of network id.
func (f *Firewall) RemoveNetwork(id string) error {
	return f.removeTagged("n:"+id, f.post, f.fwd, f.isolate)
}

// Port is one published port.
type Port struct {
	Proto         string // tcp or udp
	HostIP        net.IP // nil or unspecified: every local address
	HostPort      uint16
	ContainerPort uint16
}

// AddPorts DNATs each port to ip (a container's address).
func (f *Firewall) AddPorts(owner string, ip net.IP, ports []Port) error {
	if len(ports) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range ports {
		proto := byte(unix.IPPROTO_TCP)
		if strings.EqualFold(p.Proto, "udp") {
			proto = unix.IPPROTO_UDP
		}
		var e []expr.Any
		if p.HostIP != nil && !p.HostIP.IsUnspecified() && p.HostIP.To4() != nil {
			e = ipMatch(16, &net.IPNet{IP: p.HostIP.To4(), Mask: net.CIDRMask(32, 32)})
		}
		e = cat(e, metaCmp(expr.MetaKeyL4PROTO, expr.CmpOpEq, []byte{proto}), []expr.Any{
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p.HostPort)},
			&expr.Immediate{Register: 1, Data: ip.To4()},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		})
		f.conn.AddRule(&nftables.Rule{Table: f.table, Chain: f.ports, Exprs: e, UserData: []byte("c:" + owner)})
	}
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("nftables rules for published ports: %w", err)
	}
	return nil
}

// RemovePorts deletes owner's published ports.
func (f *Firewall) RemovePorts(owner string) error {
	return f.removeTagged("c:"+owner, f.ports)
}

func (f *Firewall) removeTagged(tag string, chains ...*nftables.Chain) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range chains {
		rules, err := f.conn.GetRules(f.table, c)
		if err != nil {
			return fmt.Errorf("list nftables rules of %s: %w", c.Name, err)
		}
		for _, r := range rules {
			if string(r.UserData) == tag {
				if err := f.conn.DelRule(r); err != nil {
					return err
				}
				n++
			}
		}
	}
	if n == 0 {
		return nil
	}
	if err := f.conn.Flush(); err != nil {
		return fmt.Errorf("delete nftables rules %s: %w", tag, err)
	}
	return nil
}
