package engine

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
	skinet "github.com/skiff-dev/skiff/internal/network"
)

// NetworkCreate creates a user-defined bridge network.
func (e *Engine) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	m := e.net
	if req.Name == "" {
		return network.CreateResponse{}, errdefs.Invalid("network name cannot be empty")
	}
	if !validName.MatchString(req.Name) && len(req.Name) > 1 {
		return network.CreateResponse{}, errdefs.Invalid("invalid network name %q", req.Name)
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return network.CreateResponse{}, errdefs.NotFound("could not find plugin %s in v1 plugin registry: plugin not found", req.Driver)
	}
	if _, err := m.byRef(req.Name); err == nil {
		return network.CreateResponse{}, errdefs.Conflict("network with name %s already exists", req.Name)
	}
	n := &netRecord{ID: newID(), Name: req.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: req.Internal,
		Labels: req.Labels, Options: req.Options}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	if n.Options == nil {
		n.Options = map[string]string{}
	}
	n.Bridge = n.Options["com.docker.network.bridge.name"]
	if n.Bridge == "" {
		n.Bridge = "br-" + n.ID[:12]
	}
	if len(n.Bridge) > 15 {
		return network.CreateResponse{}, errdefs.Invalid("bridge name %q is longer than 15 characters", n.Bridge)
	}
	var sub netip.Prefix
	var gw netip.Addr
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		c := req.IPAM.Config[0]
		sub, gw = c.Subnet.Masked(), c.Gateway
		if !sub.IsValid() || !sub.Addr().Is4() {
			return network.CreateResponse{}, errdefs.Invalid("an IPv4 --subnet is required with --gateway/--ip-range")
		}
		if c.IPRange.IsValid() {
			if !sub.Contains(c.IPRange.Addr()) || c.IPRange.Bits() < sub.Bits() {
				return network.CreateResponse{}, errdefs.Invalid("invalid pool request: ip-range %s is not within subnet %s", c.IPRange, sub)
			}
			n.IPRange = c.IPRange.Masked().String()
		}
		if gw.IsValid() && !sub.Contains(gw) {
			return network.CreateResponse{}, errdefs.Invalid("invalid pool request: gateway %s is not within subnet %s", gw, sub)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	taken := func(p netip.Prefix) bool {
		for _, o := range m.nets {
			if op, err := netip.ParsePrefix(o.Subnet); err == nil && op.Overlaps(p) {
				return true
			}
		}
		return hostRouteOverlaps(p)
	}
	if !sub.IsValid() {
		// Docker's local pools: 172.18-31.0.0/16, then 192.168.x.0/20.
		for i := 18; i <= 31 && !sub.IsValid(); i++ {
			if p := netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16); !taken(p) {
				sub = p
			}
		}
		for i := 0; i < 256 && !sub.IsValid(); i += 16 {
			if p := netip.PrefixFrom(netip.AddrFrom4([4]byte{192, 168, byte(i), 0}), 20); !taken(p) {
				sub = p
			}
		}
		if !sub.IsValid() {
			return network.CreateResponse{}, errdefs.Unavailable("all predefined address pools have been fully subnetted")
		}
	} else if taken(sub) {
		return network.CreateResponse{}, errdefs.Conflict("invalid pool request: Pool overlaps with other one on this address space")
	}
	if !gw.IsValid() {
		gw = sub.Addr().Next()
	}
	n.Subnet, n.Gateway = sub.String(), gw.String()
	if err := e.saveNetwork(n); err != nil {
		return network.CreateResponse{}, err
	}
	m.nets[n.ID] = n
	if err := e.setupBridge(n); err != nil {
		delete(m.nets, n.ID)
		e.deleteNetworkRecord(n)
		return network.CreateResponse{}, err
	}
	e.events.publish(events.NetworkEventType, events.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return network.CreateResponse{ID: n.ID}, nil
}

// hostRouteOverlaps tells whether p overlaps a network the host already
// routes (its own interfaces), so a new bridge never shadows it.
func hostRouteOverlaps(p netip.Prefix) bool {
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

func (e *Engine) deleteNetworkRecord(n *netRecord) {
	e.db.Bolt().Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(n.ID)) })
	e.net.ipam.DropPool(n.ID)
}

// usersOf lists the containers configured on network n.
func (e *Engine) usersOf(n *netRecord) []*Container {
	var out []*Container
	for _, c := range e.reg.all() {
		c.mu.Lock()
		use := netMode(c.HostConfig) == n.Name
		if c.Net != nil {
			if _, ok := c.Net.Config[n.Name]; ok {
				use = true
			}
		}
		c.mu.Unlock()
		if use {
			out = append(out, c)
		}
	}
	return out
}

// NetworkRemove deletes a user-defined network that no container uses.
func (e *Engine) NetworkRemove(ctx context.Context, ref string) error {
	n, err := e.net.byRef(ref)
	if err != nil {
		return err
	}
	if n.Name == "bridge" || n.Name == "host" || n.Name == "none" {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	if users := e.usersOf(n); len(users) > 0 {
		return errdefs.Conflict("error while removing network: network %s has active endpoints (name:%q id:%q)", n.Name, users[0].Name, users[0].ID[:12])
	}
	if err := e.net.fw.RemoveNetwork(n.ID); err != nil {
		return err
	}
	if err := skinet.DeleteLink(n.Bridge); err != nil {
		return err
	}
	e.net.mu.Lock()
	delete(e.net.nets, n.ID)
	e.net.mu.Unlock()
	e.deleteNetworkRecord(n)
	e.events.publish(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

func (e *Engine) networkDoc(n *netRecord) network.Inspect {
	doc := network.Inspect{Network: network.Network{
		Name: n.Name, ID: n.ID, Created: n.Created, Scope: "local", Driver: n.Driver, EnableIPv4: n.Driver == "bridge",
		Internal: n.Internal, Options: n.Options, Labels: n.Labels,
		IPAM: network.IPAM{Driver: "default", Config: []network.IPAMConfig{}},
	}, Containers: map[string]network.EndpointResource{}}
	if doc.Options == nil {
		doc.Options = map[string]string{}
	}
	if doc.Labels == nil {
		doc.Labels = map[string]string{}
	}
	if n.Subnet != "" {
		c := network.IPAMConfig{}
		c.Subnet, _ = netip.ParsePrefix(n.Subnet)
		c.Gateway, _ = netip.ParseAddr(n.Gateway)
		if n.IPRange != "" {
			c.IPRange, _ = netip.ParsePrefix(n.IPRange)
		}
		doc.IPAM.Config = append(doc.IPAM.Config, c)
	}
	for _, c := range e.reg.all() {
		c.mu.Lock()
		if c.Net != nil && c.Net.Endpoints != nil {
			if ep := c.Net.Endpoints[n.Name]; ep != nil {
				r := network.EndpointResource{Name: c.Name, EndpointID: ep.HostVeth}
				if hw, err := net.ParseMAC(ep.MAC); err == nil {
					r.MacAddress = network.HardwareAddr(hw)
				}
				if a, err := netip.ParseAddr(ep.IP); err == nil {
					r.IPv4Address = netip.PrefixFrom(a, ep.PrefixLen)
				}
				doc.Containers[c.ID] = r
			}
		}
		c.mu.Unlock()
	}
	return doc
}

// NetworkInspect returns Docker's network document with its containers.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	n, err := e.net.byRef(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return e.networkDoc(n), nil
}

func (e *Engine) netMatches(n *netRecord, f filters.Args) bool {
	if !f.MatchPrefix("id", n.ID) || !f.Match("driver", n.Driver) || !f.MatchLabels("label", n.Labels) {
		return false
	}
	if f.Has("name") {
		ok := false
		for _, v := range f.Get("name") {
			if strings.Contains(n.Name, v) {
				ok = true
			}
		}
		if !ok {
			return false
		}
	}
	if f.Has("type") {
		t := "custom"
		if n.Name == "bridge" || n.Name == "host" || n.Name == "none" {
			t = "builtin"
		}
		if !f.Match("type", t) {
			return false
		}
	}
	return true
}

// NetworkList lists the networks matching f.
func (e *Engine) NetworkList(ctx context.Context, f filters.Args) ([]network.Summary, error) {
	if err := f.Validate("id", "name", "driver", "label", "type", "scope", "dangling"); err != nil {
		return nil, err
	}
	e.net.mu.Lock()
	nets := make([]*netRecord, 0, len(e.net.nets))
	for _, n := range e.net.nets {
		nets = append(nets, n)
	}
	e.net.mu.Unlock()
	sort.Slice(nets, func(i, j int) bool { return nets[i].Name < nets[j].Name })
	out := []network.Summary{}
	for _, n := range nets {
		if e.netMatches(n, f) {
			out = append(out, network.Summary{Network: e.networkDoc(n).Network})
		}
	}
	return out, nil
}

// NetworkPrune removes unused user-defined networks.
func (e *Engine) NetworkPrune(ctx context.Context, f filters.Args) (network.PruneReport, error) {
	rep := network.PruneReport{NetworksDeleted: []string{}}
	if err := f.Validate("label", "label!", "until"); err != nil {
		return rep, err
	}
	all, _ := e.NetworkList(ctx, filters.Args{})
	for _, s := range all {
		n, err := e.net.byRef(s.ID)
		if err != nil || n.Name == "bridge" || n.Name == "host" || n.Name == "none" || !f.MatchLabels("label", n.Labels) {
			continue
		}
		if len(e.usersOf(n)) > 0 {
			continue
		}
		if err := e.NetworkRemove(ctx, n.ID); err == nil {
			rep.NetworksDeleted = append(rep.NetworksDeleted, n.Name)
		}
	}
	return rep, nil
}

// NetworkConnect adds a network to a container, live when it runs.
func (e *Engine) NetworkConnect(ctx context.Context, ref, ctr string, es *network.EndpointSettings) error {
	n, err := e.net.byRef(ref)
	if err != nil {
		return err
	}
	c, err := e.reg.get(ctr)
	if err != nil {
		return err
	}
	if n.Driver != "bridge" {
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	mode := netMode(c.HostConfig)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		c.mu.Unlock()
		return errdefs.Forbidden("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	if c.Net == nil {
		c.Net = &containerNet{}
	}
	if c.Net.Config == nil {
		c.Net.Config = map[string]*network.EndpointSettings{}
	}
	if _, ok := c.Net.Config[n.Name]; ok {
		c.mu.Unlock()
		return errdefs.Forbidden("endpoint with name %s already exists in network %s", c.Name, n.Name)
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	running, nsPath := c.State.Running, c.Net.NetNS
	idx := len(c.Net.Endpoints)
	c.mu.Unlock()
	if running && nsPath != "" {
		var want net.IP
		if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
			want = net.IP(es.IPAMConfig.IPv4Address.AsSlice())
		}
		ip, err := e.net.ipam.Allocate(n.pool(), c.ID, want)
		if err != nil {
			return err
		}
		_, sub, _ := net.ParseCIDR(n.Subnet)
		ones, _ := sub.Mask.Size()
		ep := &netEndpoint{NetworkID: n.ID, IP: ip.String(), PrefixLen: ones, Gateway: n.Gateway, MAC: skinet.MACFor(ip).String(),
			HostVeth: vethName(c.ID, idx), Aliases: es.Aliases}
		if err := skinet.Attach(skinet.Endpoint{NetNS: nsPath, Bridge: n.Bridge, HostName: ep.HostVeth, IfName: fmt.Sprintf("eth%d", idx),
			Addr: &net.IPNet{IP: ip, Mask: sub.Mask}, MAC: skinet.MACFor(ip), MTU: e.net.cfg.MTU}); err != nil {
			e.net.ipam.Release(n.ID, c.ID)
			return err
		}
		c.mu.Lock()
		c.Net.Endpoints[n.Name] = ep
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.Net.Config[n.Name] = es
	err = e.persist(c)
	c.mu.Unlock()
	e.events.publish(events.NetworkEventType, events.ActionConnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}

// NetworkDisconnect removes a network from a container.
func (e *Engine) NetworkDisconnect(ctx context.Context, ref, ctr string, force bool) error {
	n, err := e.net.byRef(ref)
	if err != nil {
		return err
	}
	c, err := e.reg.get(ctr)
	if err != nil {
		return err
	}
	c.op.Lock()
	defer c.op.Unlock()
	c.mu.Lock()
	if c.Net == nil || c.Net.Config[n.Name] == nil && netMode(c.HostConfig) != n.Name {
		c.mu.Unlock()
		return errdefs.Forbidden("container %s is not connected to network %s", c.ID, n.Name)
	}
	var ep *netEndpoint
	if c.Net.Endpoints != nil {
		ep = c.Net.Endpoints[n.Name]
		delete(c.Net.Endpoints, n.Name)
	}
	delete(c.Net.Config, n.Name)
	if netMode(c.HostConfig) == n.Name {
		// The container's primary network goes: it is left with none
		// once it restarts, as with Docker.
		c.HostConfig.NetworkMode = "none"
	}
	err = e.persist(c)
	c.mu.Unlock()
	if ep != nil {
		if ports := c.Net.Ports; len(ports) > 0 && ep.HostVeth == vethName(c.ID, 0) {
			e.net.fw.RemovePorts(c.ID)
		}
		skinet.DeleteLink(ep.HostVeth)
		e.net.ipam.Release(n.ID, c.ID)
	}
	e.events.publish(events.NetworkEventType, events.ActionDisconnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}
