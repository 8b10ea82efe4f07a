package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/network/firewall"
)

// sandbox is a running container's network: its namespace and endpoints.
type sandbox struct {
	net *ContainerNet // NetNS, Endpoints and Ports as attached
	// hostname is a name the embedded DNS answers too, as dockerd's
	// DNSNames.
	hostname string
	// dns are the --dns servers the embedded DNS forwards to.
	dns []string
}

// VethName is the host side of container id's i-th interface.
func VethName(id string, i int) string { return fmt.Sprintf("sk%s%d", id[:12], i) }

// NSPath is where container id's network namespace is bind-mounted.
func (c *Controller) NSPath(id string) string { return filepath.Join(c.cfg.NSDir, id) }

// Validate checks the endpoint settings of a container created on network
// mode (a bridge network's name or id) and gives the network's name and
// the container's requested endpoints.
func (c *Controller) Validate(mode string, nc *network.NetworkingConfig) (string, *ContainerNet, error) {
	n, err := c.Network(mode)
	if err != nil {
		return "", nil, errdefs.NotFound("network %s not found", mode)
	}
	cn := &ContainerNet{Config: map[string]*network.EndpointSettings{}}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if es == nil {
				es = &network.EndpointSettings{}
			}
			if name == "" || name == "default" {
				name = "bridge"
			}
			ref, err := c.Network(name)
			if err != nil {
				return "", nil, errdefs.NotFound("network %s not found", name)
			}
			if err := checkEndpoint(ref, es); err != nil {
				return "", nil, err
			}
			cn.Config[ref.Name] = es
		}
	}
	if _, ok := cn.Config[n.Name]; !ok {
		cn.Config[n.Name] = &network.EndpointSettings{}
	}
	if mac := cn.Config[n.Name].MacAddress; len(mac) == 6 {
		cn.MacAddress = mac.String()
	}
	return n.Name, cn, nil
}

// checkEndpoint refuses what dockerd refuses in an endpoint's settings,
// in its words (every problem listed under one heading).
func checkEndpoint(n *Network, es *network.EndpointSettings) error {
	var errs []string
	if ic := es.IPAMConfig; ic != nil {
		if n.Name == "bridge" && (ic.IPv4Address.IsValid() || ic.IPv6Address.IsValid()) {
			errs = append(errs, "user specified IP address is supported on user defined networks only")
		}
		if a := ic.IPv4Address; a.IsValid() {
			if !a.Unmap().Is4() || a.IsUnspecified() {
				errs = append(errs, "invalid IPv4 address: "+a.String())
			} else if !n.Prefix().Contains(a.Unmap()) {
				errs = append(errs, "no configured subnet contains IP address "+a.String())
			}
		}
		if a := ic.IPv6Address; a.IsValid() {
			if !a.Is6() || a.Is4In6() || a.IsUnspecified() {
				errs = append(errs, "invalid IPv6 address: "+a.String())
			} else {
				// skiff's networks are IPv4 only: no subnet contains it,
				// as dockerd says for a network without IPv6.
				errs = append(errs, "no configured subnet contains IP address "+a.String())
			}
		}
	}
	if ic := es.IPAMConfig; ic != nil {
		// dockerd takes any address as a link-local one (it does not
		// insist on 169.254/16 or fe80::/10), only not none or 0.0.0.0/::.
		for i, a := range ic.LinkLocalIPs {
			if !a.IsValid() || a.IsUnspecified() {
				errs = append(errs, "invalid link-local IP address: "+a.String())
			}
			ic.LinkLocalIPs[i] = a.Unmap()
		}
	}
	if len(es.Aliases) > 0 && n.Name == "bridge" {
		errs = append(errs, "network-scoped alias is supported only for containers in user defined networks")
	}
	if len(errs) > 0 {
		return errdefs.Invalid("invalid endpoint settings:\n%s", strings.Join(errs, "\n"))
	}
	if len(es.MacAddress) > 0 && len(es.MacAddress) != 6 {
		return errdefs.Invalid("invalid MAC address %s", es.MacAddress)
	}
	return nil
}

// CheckConnect refuses what dockerd refuses when a container whose
// requested networks are have is connected to n.
func (c *Controller) CheckConnect(n *Network, es *network.EndpointSettings) error {
	if n.Driver != "bridge" {
		return errdefs.Forbidden("container cannot be disconnected from host network or connected to host network")
	}
	return checkEndpoint(n, es)
}

// AttachRequest is what a container's start gives the controller.
type AttachRequest struct {
	ID       string
	Hostname string
	Dir      string // the container's directory: hosts and resolv.conf
	Mode     string // the primary network's name
	Net      *ContainerNet
	Config   *container.Config
	Host     *container.HostConfig
}

// Attach creates the container's namespace and endpoints, publishes its
// ports, writes its /etc/hosts and resolv.conf and starts its embedded
// DNS. On error nothing is left.
func (c *Controller) Attach(req AttachRequest) (out *ContainerNet, err error) {
	cn := req.Net
	if cn == nil {
		cn = &ContainerNet{}
	}
	mode := req.Mode
	cfgs := cn.Config
	if cfgs == nil {
		cfgs = map[string]*network.EndpointSettings{mode: {}}
	}
	id := req.ID
	nsPath := c.NSPath(id)
	c.waitCleanup(id)
	if _, err := os.Stat(nsPath); err == nil {
		c.Cleanup(id) // what an interrupted start left
	}
	if err := c.k.CreateNetNS(nsPath); err != nil {
		return nil, err
	}
	eps := map[string]*Attachment{}
	defer func() {
		if err != nil {
			c.fw.RemovePorts(id)
			c.releasePorts(id)
			c.Cleanup(id)
			for _, ep := range eps {
				c.ipam.Release(ep.NetworkID, id)
			}
		}
	}()
	// The primary network (the mode) gets eth0 and the default route;
	// when it was disconnected before the start, the first by name.
	names := make([]string, 0, len(cfgs))
	for name := range cfgs {
		if name != mode {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if _, ok := cfgs[mode]; ok {
		names = append([]string{mode}, names...)
	}
	primary := ""
	for i, name := range names {
		n, err := c.Network(name)
		if err != nil {
			return nil, err
		}
		es := cfgs[name]
		if es == nil {
			es = &network.EndpointSettings{}
		}
		if name == mode && len(es.MacAddress) == 0 && cn.MacAddress != "" {
			if hw, err := net.ParseMAC(cn.MacAddress); err == nil {
				cp := *es
				cp.MacAddress = network.HardwareAddr(hw)
				es = &cp
			}
		}
		ep, err := c.attachOne(id, nsPath, n, es, i, i == 0)
		if err != nil {
			return nil, err
		}
		eps[name] = ep
		if i == 0 {
			primary = name
		}
		if n.Name != "bridge" && len(es.Links) == 0 && len(req.Host.Links) > 0 && i == 0 {
			// --link on a user-defined network: an alias only this
			// container resolves (the docker CLI also puts them in the
			// endpoint's Links; docker-py only in HostConfig).
			ep.Links = append([]string{}, req.Host.Links...)
		}
	}
	var ports []PublishedPort
	if primary != "" {
		ports, err = c.allocatePorts(id, req.Config, req.Host)
		if err != nil {
			return nil, err
		}
		if len(ports) > 0 {
			if err := c.fw.AddPorts(id, net.ParseIP(eps[primary].IP), toFirewallPorts(ports)); err != nil {
				return nil, err
			}
		}
	}
	hosts := ""
	if eps["bridge"] != nil {
		if hosts, err = c.legacyLinkHosts(req.Host.Links); err != nil {
			return nil, err
		}
	}
	if primary != "" {
		rewriteHosts(req.Dir, req.Hostname, eps[primary].IP)
	}
	appendHosts(req.Dir, hosts)
	nc := *cn
	nc.NetNS, nc.Endpoints, nc.Ports = nsPath, eps, ports
	sb := &sandbox{net: &nc, hostname: req.Hostname}
	for _, a := range req.Host.DNS {
		sb.dns = append(sb.dns, a.String())
	}
	c.mu.Lock()
	c.sandboxes[id] = sb
	c.mu.Unlock()
	if err := c.startDNS(id, req.Dir); err != nil {
		c.mu.Lock()
		delete(c.sandboxes, id)
		c.mu.Unlock()
		return nil, err
	}
	return &nc, nil
}

// attachOne allocates the address and creates the interface of container
// id on n; primary gets the default route.
func (c *Controller) attachOne(id, nsPath string, n *Network, es *network.EndpointSettings, idx int, primary bool) (*Attachment, error) {
	var want net.IP
	if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
		want = net.IP(es.IPAMConfig.IPv4Address.Unmap().AsSlice())
	}
	ip, err := c.ipam.Allocate(n.pool(), id, want)
	if err != nil {
		return nil, err
	}
	mac := MACFor(ip)
	if len(es.MacAddress) == 6 {
		mac = net.HardwareAddr(es.MacAddress)
	}
	_, sub, _ := net.ParseCIDR(n.Subnet)
	ones, _ := sub.Mask.Size()
	ep := &Attachment{NetworkID: n.ID, IP: ip.String(), PrefixLen: ones, Gateway: n.Gateway, MAC: mac.String(),
		HostVeth: VethName(id, idx), Aliases: es.Aliases, Links: es.Links}
	var gw net.IP
	if primary && !n.Internal {
		gw = net.ParseIP(n.Gateway)
	}
	if err := c.k.Attach(Endpoint{
		NetNS: nsPath, Bridge: n.Bridge, HostName: ep.HostVeth, IfName: fmt.Sprintf("eth%d", idx),
		Addr: &net.IPNet{IP: ip, Mask: sub.Mask}, Gateway: gw, MAC: mac, MTU: c.cfg.MTU,
		LinkLocal: linkLocalNets(es.IPAMConfig),
	}); err != nil {
		c.ipam.Release(n.ID, id)
		return nil, err
	}
	return ep, nil
}

// linkLocalNets gives the --link-local-ip addresses of an endpoint with
// the prefixes dockerd puts on the interface: /16 for IPv4, /64 for IPv6.
func linkLocalNets(ic *network.EndpointIPAMConfig) []*net.IPNet {
	if ic == nil {
		return nil
	}
	var out []*net.IPNet
	for _, a := range ic.LinkLocalIPs {
		a = a.Unmap()
		mask := net.CIDRMask(64, 128)
		if a.Is4() {
			mask = net.CIDRMask(16, 32)
		}
		out = append(out, &net.IPNet{IP: net.IP(a.AsSlice()), Mask: mask})
	}
	return out
}

// Detach undoes Attach; a container not attached is left alone. The
// namespace goes now (its file and mount are what a restart and the leak
// checks look at); the host-side veths and port rules after, in the
// background. The addresses are free at once: IPAM hands out the next one
// after the last, not a just-released one.
func (c *Controller) Detach(id string) {
	c.mu.Lock()
	sb := c.sandboxes[id]
	delete(c.sandboxes, id)
	srv := c.dnsSrv[id]
	delete(c.dnsSrv, id)
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
	if sb == nil {
		// Not attached here (a second stop, or a namespace this
		// controller never saw): only a namespace left on disk goes.
		if _, err := os.Stat(c.NSPath(id)); err == nil {
			c.Cleanup(id)
		}
		return
	}
	veths := []string{}
	for _, ep := range sb.net.Endpoints {
		veths = append(veths, ep.HostVeth)
	}
	if err := c.k.DeleteNetNS(c.NSPath(id)); err != nil {
		c.log.Warn("remove network namespace", "container", id, "err", err)
	}
	// The published ports stay reserved until their rules are gone.
	c.cleanupLater(id, func() {
		if err := c.fw.RemovePorts(id); err != nil {
			c.log.Warn("remove published ports", "container", id, "err", err)
		}
		c.releasePorts(id)
		for _, v := range veths {
			c.k.DeleteLink(v)
		}
	})
	for _, ep := range sb.net.Endpoints {
		c.ipam.Release(ep.NetworkID, id)
	}
}

// Attached tells whether container id has a network namespace of its own.
func (c *Controller) Attached(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sandboxes[id] != nil
}

// Cleanup removes what a start may have left for container id: the veth
// names it may have used and its namespace.
func (c *Controller) Cleanup(id string) {
	for i := 0; i < 8; i++ {
		c.k.DeleteLink(VethName(id, i))
	}
	if err := c.k.DeleteNetNS(c.NSPath(id)); err != nil {
		c.log.Warn("remove network namespace", "container", id, "err", err)
	}
}

// ConnectRunning adds an endpoint on n to running container id, whose
// interfaces are numbered after its current ones.
func (c *Controller) ConnectRunning(id string, n *Network, es *network.EndpointSettings) (*Attachment, error) {
	c.mu.Lock()
	sb := c.sandboxes[id]
	c.mu.Unlock()
	if sb == nil {
		return nil, errdefs.Conflict("container %s is not running", id)
	}
	used := map[string]bool{}
	for _, ep := range sb.net.Endpoints {
		used[ep.HostVeth] = true
	}
	idx := 0
	for used[VethName(id, idx)] {
		idx++
	}
	ep, err := c.attachOne(id, c.NSPath(id), n, es, idx, false)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	nc := *sb.net
	nc.Endpoints = map[string]*Attachment{}
	for k, v := range sb.net.Endpoints {
		nc.Endpoints[k] = v
	}
	nc.Endpoints[n.Name] = ep
	sb.net = &nc
	c.mu.Unlock()
	return ep, nil
}

// StartDNS starts the embedded DNS of running container id if one of its
// networks is user-defined and it has none yet.
func (c *Controller) StartDNS(id, dir string) error { return c.startDNS(id, dir) }

// DisconnectRunning removes running container id's endpoint on n.
func (c *Controller) DisconnectRunning(id string, n *Network) {
	c.mu.Lock()
	sb := c.sandboxes[id]
	var ep *Attachment
	if sb != nil {
		ep = sb.net.Endpoints[n.Name]
		nc := *sb.net
		nc.Endpoints = map[string]*Attachment{}
		for k, v := range sb.net.Endpoints {
			if k != n.Name {
				nc.Endpoints[k] = v
			}
		}
		sb.net = &nc
	}
	c.mu.Unlock()
	if ep == nil {
		return
	}
	if ep.HostVeth == VethName(id, 0) && len(sb.net.Ports) > 0 {
		c.fw.RemovePorts(id)
	}
	c.k.DeleteLink(ep.HostVeth)
	c.ipam.Release(n.ID, id)
}

// Restored is a running container's network as the engine found it at
// its start.
type Restored struct {
	ID       string
	Hostname string
	Net      *ContainerNet
	DNS      []string
	Dir      string
}

// Restore runs after the engine's containers are loaded: namespaces and
// leases of containers that are not running (a crash in the middle of a
// start) go; running containers' sandboxes, published ports and DNS
// servers come back (the table was rebuilt). stale(id, clean) runs clean
// when container id is not running.
func (c *Controller) Restore(running []Restored, stale func(id string, clean func())) {
	isRunning := map[string]bool{}
	for _, r := range running {
		isRunning[r.ID] = true
	}
	check := func(id string, clean func()) {
		if !isRunning[id] {
			stale(id, clean)
		}
	}
	entries, _ := os.ReadDir(c.cfg.NSDir)
	for _, ent := range entries {
		id := ent.Name()
		check(id, func() { c.Cleanup(id) })
	}
	for _, n := range c.Networks() {
		leases, _ := c.ipam.Leases(n.ID)
		for _, owner := range leases {
			id, nid := owner, n.ID
			check(id, func() { c.ipam.Release(nid, id) })
		}
	}
	for _, r := range running {
		// A namespace without endpoints (every network disconnected
		// before the start) is a sandbox too: its stop removes it.
		if r.Net == nil || r.Net.NetNS == "" {
			continue
		}
		c.mu.Lock()
		c.sandboxes[r.ID] = &sandbox{net: r.Net, dns: r.DNS, hostname: r.Hostname}
		for _, p := range r.Net.Ports {
			c.ports[p.Proto+"/"+strconv.Itoa(int(p.HostPort))] = r.ID
		}
		c.mu.Unlock()
		if err := c.startDNS(r.ID, r.Dir); err != nil {
			c.log.Warn("restore embedded DNS", "container", r.ID, "err", err)
		}
		if ep := primaryEndpoint(r.Net); ep != nil && len(r.Net.Ports) > 0 {
			if err := c.fw.AddPorts(r.ID, net.ParseIP(ep.IP), toFirewallPorts(r.Net.Ports)); err != nil {
				c.log.Warn("restore published ports", "container", r.ID, "err", err)
			}
		}
	}
}

func primaryEndpoint(cn *ContainerNet) *Attachment {
	var names []string
	for n := range cn.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if strings.HasSuffix(cn.Endpoints[n].HostVeth, "0") && len(cn.Endpoints[n].HostVeth) == 2+12+1 {
			return cn.Endpoints[n]
		}
	}
	if len(names) > 0 {
		return cn.Endpoints[names[0]]
	}
	return nil
}

// cleanupLater runs fn, the rest of container id's teardown, in the
// background.
func (c *Controller) cleanupLater(id string, fn func()) {
	done := make(chan struct{})
	c.pendingMu.Lock()
	if c.pending == nil {
		c.pending = map[string]chan struct{}{}
	}
	c.pending[id] = done
	c.pendingMu.Unlock()
	c.cleanups.Add(1)
	go func() {
		defer c.cleanups.Done()
		fn()
		c.pendingMu.Lock()
		if c.pending[id] == done {
			delete(c.pending, id)
		}
		c.pendingMu.Unlock()
		close(done)
	}()
}

// pendingCleanup returns the end of container id's teardown in progress,
// or nil.
func (c *Controller) pendingCleanup(id string) chan struct{} {
	c.pendingMu.Lock()
	defer c.pendingMu.Unlock()
	return c.pending[id]
}

// waitCleanup waits for container id's teardown in progress, if any.
func (c *Controller) waitCleanup(id string) {
	if done := c.pendingCleanup(id); done != nil {
		<-done
	}
}

func toFirewallPorts(ps []PublishedPort) []firewall.Port {
	out := make([]firewall.Port, 0, len(ps))
	for _, p := range ps {
		out = append(out, firewall.Port{Proto: p.Proto, HostIP: net.ParseIP(p.HostIP), HostPort: p.HostPort, ContainerPort: p.ContainerPort})
	}
	return out
}

// allocatePorts resolves -p and -P into concrete host ports, reserving
// them (a port taken by another container or by a host process is
// refused, as Docker does).
func (c *Controller) allocatePorts(owner string, cfg *container.Config, hc *container.HostConfig) (out []PublishedPort, err error) {
	defer func() {
		if err != nil {
			c.releasePorts(owner)
		}
	}()
	type req struct {
		port network.Port
		b    network.PortBinding
	}
	var reqs []req
	keys := make([]network.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		keys = append(keys, p)
	}
	if hc.PublishAllPorts {
		for p := range cfg.ExposedPorts {
			if _, ok := hc.PortBindings[p]; !ok {
				keys = append(keys, p)
			}
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, p := range keys {
		bs := hc.PortBindings[p]
		if len(bs) == 0 {
			bs = []network.PortBinding{{}}
		}
		for _, b := range bs {
			reqs = append(reqs, req{p, b})
		}
	}
	for _, r := range reqs {
		proto := string(r.port.Proto())
		if proto == "sctp" {
			return nil, errdefs.Invalid("sctp port publishing is not supported")
		}
		lo, hi := uint16(0), uint16(0)
		if r.b.HostPort != "" {
			pr, err := network.ParsePortRange(r.b.HostPort)
			if err != nil {
				return nil, errdefs.Invalid("invalid host port %q: %v", r.b.HostPort, err)
			}
			lo, hi = pr.Start(), pr.End()
		}
		hostIP := ""
		if r.b.HostIP.IsValid() && !r.b.HostIP.IsUnspecified() {
			if !r.b.HostIP.Is4() {
				continue // IPv6 publishing is not supported: skipped as Docker does without ip6tables
			}
			hostIP = r.b.HostIP.String()
		}
		port, err := c.reservePort(owner, proto, hostIP, lo, hi)
		if err != nil {
			return nil, err
		}
		out = append(out, PublishedPort{Proto: proto, HostIP: hostIP, HostPort: port, ContainerPort: r.port.Num()})
	}
	return out, nil
}

func (c *Controller) reservePort(owner, proto, hostIP string, lo, hi uint16) (uint16, error) {
	if lo != 0 {
		// A port asked for by number and held by a container whose
		// teardown is in progress is free in a few milliseconds: wait
		// (`run -p 8080:80` right after the last one stopped must work).
		c.mu.Lock()
		var waits []chan struct{}
		for p := int(lo); p <= int(hi); p++ {
			if o, ok := c.ports[proto+"/"+strconv.Itoa(p)]; ok {
				if done := c.pendingCleanup(o); done != nil {
					waits = append(waits, done)
				}
			}
		}
		c.mu.Unlock()
		for _, done := range waits {
			<-done
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	try := func(p uint16) bool {
		k := proto + "/" + strconv.Itoa(int(p))
		if _, taken := c.ports[k]; taken {
			return false
		}
		if !c.k.HostPortFree(proto, hostIP, p) {
			return false
		}
		c.ports[k] = owner
		return true
	}
	if lo == 0 {
		// Docker's ephemeral range.
		for i := 0; i < 200; i++ {
			p := uint16(32768 + (time.Now().UnixNano()/7+int64(i)*7919)%(60999-32768))
			if try(p) {
				return p, nil
			}
		}
		return 0, errdefs.Unavailable("no free host port for %s", proto)
	}
	for p := int(lo); p <= int(hi); p++ {
		if try(uint16(p)) {
			return uint16(p), nil
		}
	}
	ip := hostIP
	if ip == "" {
		ip = "0.0.0.0"
	}
	return 0, errdefs.System("driver failed programming external connectivity: Bind for %s:%d failed: port is already allocated", ip, lo)
}

func (c *Controller) releasePorts(owner string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, o := range c.ports {
		if o == owner {
			delete(c.ports, k)
		}
	}
}

// usesEmbeddedDNS: containers on user-defined networks resolve each other
// through the embedded server, as with Docker; the default bridge does not.
func usesEmbeddedDNS(cn *ContainerNet) bool {
	for name := range cn.Endpoints {
		if name != "bridge" {
			return true
		}
	}
	return false
}

// startDNS serves 127.0.0.11 in container id's namespace and points its
// resolv.conf there; the upstream servers are --dns, else the host's.
func (c *Controller) startDNS(id, dir string) error {
	c.mu.Lock()
	sb := c.sandboxes[id]
	running := c.dnsSrv[id] != nil
	c.mu.Unlock()
	if sb == nil || running || !usesEmbeddedDNS(sb.net) {
		return nil
	}
	upstream := sb.dns
	if len(upstream) == 0 {
		upstream = hostNameservers()
	}
	srv, err := c.dns.Serve(c.NSPath(id), func(name string) []net.IP { return c.resolveFor(id, name) }, upstream)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if old := c.dnsSrv[id]; old != nil {
		old.Close()
	}
	c.dnsSrv[id] = srv
	c.mu.Unlock()
	pointResolvConf(dir)
	return nil
}

// resolveFor answers name for container id: running containers sharing a
// user-defined network with it, by name, short id or network alias, and
// the aliases of its own links on those networks.
func (c *Controller) resolveFor(id, name string) []net.IP {
	type cand struct {
		id       string
		ip       string
		aliases  []string
		hostname string
	}
	var cands []cand
	type link struct{ target, alias, network string }
	var links []link
	c.mu.Lock()
	self := c.sandboxes[id]
	if self == nil {
		c.mu.Unlock()
		return nil
	}
	mine := map[string]bool{}
	for n, ep := range self.net.Endpoints {
		if n == "bridge" {
			continue
		}
		mine[n] = true
		for _, l := range ep.Links {
			t, a := ParseLink(l)
			links = append(links, link{t, a, n})
		}
	}
	for cid, sb := range c.sandboxes {
		for n, ep := range sb.net.Endpoints {
			if mine[n] {
				cands = append(cands, cand{cid, ep.IP, ep.Aliases, sb.hostname})
			}
		}
	}
	c.mu.Unlock()
	var out []net.IP
	add := func(s string) {
		if ip := net.ParseIP(s); ip != nil {
			out = append(out, ip)
		}
	}
	for _, l := range links {
		if !strings.EqualFold(l.alias, name) {
			continue
		}
		tid, ok := c.ctrs.Lookup(l.target)
		if !ok {
			continue
		}
		c.mu.Lock()
		if sb := c.sandboxes[tid]; sb != nil {
			if ep := sb.net.Endpoints[l.network]; ep != nil {
				add(ep.IP)
			}
		}
		c.mu.Unlock()
	}
	if len(out) > 0 {
		return out
	}
	for _, cd := range cands {
		match := len(name) == 12 && strings.HasPrefix(cd.id, strings.ToLower(name)) || cd.hostname != "" && strings.EqualFold(cd.hostname, name)
		for _, a := range cd.aliases {
			match = match || strings.EqualFold(a, name)
		}
		if !match && strings.EqualFold(c.ctrs.Name(cd.id), name) {
			match = true
		}
		if match {
			add(cd.ip)
		}
	}
	return out
}

// ParseLink splits a link as the CLI sends it ("name:alias") or as Docker
// stores it ("/name:/container/alias"); no alias means the name.
func ParseLink(l string) (name, alias string) {
	name, alias, _ = strings.Cut(l, ":")
	name = strings.TrimPrefix(name, "/")
	if i := strings.LastIndexByte(alias, '/'); i >= 0 {
		alias = alias[i+1:]
	}
	if alias == "" {
		alias = name
	}
	return name, alias
}

// legacyLinkHosts gives the /etc/hosts lines of --link NAME[:ALIAS] on the
// default bridge: the linked container must run there.
func (c *Controller) legacyLinkHosts(links []string) (string, error) {
	var b strings.Builder
	for _, l := range links {
		name, alias := ParseLink(l)
		id, ok := c.ctrs.Lookup(name)
		if !ok {
			return "", errdefs.Invalid("could not get container for %s", name)
		}
		var ip string
		c.mu.Lock()
		if sb := c.sandboxes[id]; sb != nil && sb.net.Endpoints["bridge"] != nil {
			ip = sb.net.Endpoints["bridge"].IP
		}
		c.mu.Unlock()
		cname := c.ctrs.Name(id)
		if ip == "" {
			return "", errdefs.Invalid("cannot link to a non running container: /%s", name)
		}
		fmt.Fprintf(&b, "%s\t%s %s %s\n", ip, alias, id[:12], cname)
	}
	return b.String(), nil
}

// Settings is inspect's view of a container's networks: ctrName is the
// container's name, hostname its hostname, mode its network mode, cn its record. It never calls back
// into the engine (whose caller holds the container's lock).
func (c *Controller) Settings(id, ctrName, hostname, mode string, cn *ContainerNet) (map[string]*network.EndpointSettings, network.PortMap) {
	out := map[string]*network.EndpointSettings{}
	ports := network.PortMap{}
	if mode == "host" || mode == "none" {
		es := &network.EndpointSettings{}
		if n, err := c.Network(mode); err == nil {
			es.NetworkID = n.ID
		}
		out[mode] = es
		return out, ports
	}
	var cfgs map[string]*network.EndpointSettings
	if cn != nil {
		cfgs = cn.Config
	}
	if cfgs == nil {
		cfgs = map[string]*network.EndpointSettings{mode: {}}
	}
	for name, req := range cfgs {
		es := &network.EndpointSettings{}
		if req != nil {
			es.IPAMConfig, es.Aliases, es.Links, es.MacAddress = req.IPAMConfig, req.Aliases, req.Links, req.MacAddress
		}
		if n, err := c.Network(name); err == nil {
			es.NetworkID = n.ID
		}
		if cn != nil && cn.Endpoints != nil {
			if ep := cn.Endpoints[name]; ep != nil {
				es.EndpointID = ep.HostVeth
				es.IPAddress, _ = netip.ParseAddr(ep.IP)
				es.Gateway, _ = netip.ParseAddr(ep.Gateway)
				es.IPPrefixLen = ep.PrefixLen
				if hw, err := net.ParseMAC(ep.MAC); err == nil {
					es.MacAddress = network.HardwareAddr(hw)
				}
				if len(ep.Links) > 0 {
					es.Links = ep.Links
				}
			}
		}
		if name != "bridge" {
			es.DNSNames = dnsNames(ctrName, es.Aliases, id[:12], hostname)
		}
		out[name] = es
	}
	if cn != nil {
		for _, p := range cn.Ports {
			key, _ := network.PortFrom(p.ContainerPort, network.IPProtocol(p.Proto))
			ip := netip.IPv4Unspecified()
			if p.HostIP != "" {
				ip, _ = netip.ParseAddr(p.HostIP)
			}
			ports[key] = append(ports[key], network.PortBinding{HostIP: ip, HostPort: strconv.Itoa(int(p.HostPort))})
		}
	}
	return out, ports
}

// dnsNames are the names an endpoint on a user-defined network answers
// to, in dockerd's order: name, aliases, short id, hostname, without
// repeats.
func dnsNames(name string, aliases []string, short, hostname string) []string {
	var out []string
	seen := map[string]bool{}
	for _, n := range append(append([]string{name}, aliases...), short, hostname) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
