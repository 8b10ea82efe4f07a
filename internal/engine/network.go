package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	skinet "github.com/skiff-dev/skiff/internal/network"
	"github.com/skiff-dev/skiff/internal/network/firewall"
)

// NetConfig is the daemon's bridge networking configuration.
type NetConfig struct {
	Bridge    string // default bridge name, "skiff0"
	BIP       string // default bridge gateway/prefix, "172.17.0.1/16"
	FixedCIDR string // sub-range for container addresses on the default bridge
	MTU       int
	NftTable  string // the nftables table skiff owns, "skiff"
	// NoIPForward leaves net.ipv4.ip_forward alone (outbound NAT then
	// needs it enabled by the administrator).
	NoIPForward bool
}

var bucketNetworks = []byte("engine.networks.v1")

// netRecord is one network as stored.
type netRecord struct {
	ID       string
	Name     string
	Driver   string // bridge, host, null
	Created  time.Time
	Subnet   string
	Gateway  string
	IPRange  string `json:",omitempty"`
	Internal bool
	Bridge   string
	Labels   map[string]string
	Options  map[string]string
}

func (n *netRecord) pool() skinet.Pool {
	_, sub, _ := net.ParseCIDR(n.Subnet)
	p := skinet.Pool{ID: n.ID, Subnet: sub, Gateway: net.ParseIP(n.Gateway).To4()}
	if n.IPRange != "" {
		_, p.Range, _ = net.ParseCIDR(n.IPRange)
	}
	return p
}

// containerNet is a container's network state, part of its record.
type containerNet struct {
	// Requested endpoints (from NetworkingConfig), by network name.
	Config map[string]*network.EndpointSettings `json:",omitempty"`
	// Set while running.
	NetNS     string                  `json:",omitempty"`
	Endpoints map[string]*netEndpoint `json:",omitempty"`
	Ports     []publishedPort         `json:",omitempty"`
}

type netEndpoint struct {
	NetworkID string
	IP        string
	PrefixLen int
	Gateway   string
	MAC       string
	HostVeth  string
	Aliases   []string `json:",omitempty"`
}

type publishedPort struct {
	Proto         string
	HostIP        string
	HostPort      uint16
	ContainerPort uint16
}

// netManager holds the networks and the shared network mechanisms.
type netManager struct {
	cfg   NetConfig
	nsDir string
	ipam  *skinet.IPAM
	fw    *firewall.Firewall

	mu    sync.Mutex
	nets  map[string]*netRecord // by id
	ports map[string]string     // "proto/port" → owner container id

	// The slow half of a stopped container's network teardown runs in the
	// background: the kernel takes 15-20 ms per veth here and 5-10 ms per
	// nftables commit, both on the path of every `run --rm`. pending maps a
	// container to the end of its teardown: its next start waits for it
	// (veth names and rule tags are reused), a start that wants one of its
	// host ports waits for it, and the engine's Close waits for all.
	pendingMu sync.Mutex
	pending   map[string]chan struct{}
	cleanups  sync.WaitGroup
}

// cleanupLater runs fn, the rest of container id's teardown, in the
// background.
func (m *netManager) cleanupLater(id string, fn func()) {
	done := make(chan struct{})
	m.pendingMu.Lock()
	if m.pending == nil {
		m.pending = map[string]chan struct{}{}
	}
	m.pending[id] = done
	m.pendingMu.Unlock()
	m.cleanups.Add(1)
	go func() {
		defer m.cleanups.Done()
		fn()
		m.pendingMu.Lock()
		if m.pending[id] == done {
			delete(m.pending, id)
		}
		m.pendingMu.Unlock()
		close(done)
	}()
}

// pendingCleanup returns the end of container id's teardown in progress,
// or nil.
func (m *netManager) pendingCleanup(id string) chan struct{} {
	m.pendingMu.Lock()
	defer m.pendingMu.Unlock()
	return m.pending[id]
}

// waitCleanup waits for container id's teardown in progress, if any.
func (m *netManager) waitCleanup(id string) {
	if done := m.pendingCleanup(id); done != nil {
		<-done
	}
}

func (m *netManager) byRef(ref string) (*netRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if n, ok := m.nets[ref]; ok {
		return n, nil
	}
	for _, n := range m.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *netRecord
	for id, n := range m.nets {
		if len(ref) > 0 && strings.HasPrefix(id, ref) {
			if found != nil {
				return nil, errdefs.Invalid("network %s is ambiguous", ref)
			}
			found = n
		}
	}
	if found == nil {
		return nil, errdefs.NotFound("network %s not found", ref)
	}
	return found, nil
}

// initNetworking opens the firewall table, creates the predefined networks
// and recreates bridges and rules of every stored network.
func (e *Engine) initNetworking(ctx context.Context) error {
	cfg := e.cfg.Net
	if cfg.Bridge == "" {
		cfg.Bridge = "skiff0"
	}
	if cfg.BIP == "" {
		cfg.BIP = "172.17.0.1/16"
	}
	if cfg.NftTable == "" {
		cfg.NftTable = "skiff"
	}
	if len(cfg.Bridge) > 15 {
		return errdefs.Invalid("bridge name %q is longer than 15 characters", cfg.Bridge)
	}
	gw, sub, err := net.ParseCIDR(cfg.BIP)
	if err != nil || gw.To4() == nil {
		return errdefs.Invalid("invalid bip %q", cfg.BIP)
	}
	if cfg.FixedCIDR != "" {
		if _, fc, err := net.ParseCIDR(cfg.FixedCIDR); err != nil || !sub.Contains(fc.IP) {
			return errdefs.Invalid("invalid fixed-cidr %q: must be inside bip %s", cfg.FixedCIDR, cfg.BIP)
		}
	}
	ipam, err := skinet.NewIPAM(e.db.Bolt())
	if err != nil {
		return err
	}
	fw, err := firewall.New(cfg.NftTable)
	if err != nil {
		return err
	}
	m := &netManager{cfg: cfg, nsDir: filepath.Join(e.cfg.ExecRoot, "netns"), ipam: ipam, fw: fw,
		nets: map[string]*netRecord{}, ports: map[string]string{}}
	e.net = m
	if err := e.db.Bolt().Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			n := &netRecord{}
			if err := json.Unmarshal(v, n); err != nil {
				return fmt.Errorf("decode network %s: %w", k, err)
			}
			m.nets[n.ID] = n
			return nil
		})
	}); err != nil {
		return fmt.Errorf("load networks: %w", err)
	}
	want := map[string]*netRecord{
		"bridge": {Name: "bridge", Driver: "bridge", Subnet: sub.String(), Gateway: gw.String(), IPRange: cfg.FixedCIDR, Bridge: cfg.Bridge,
			Options: map[string]string{"com.docker.network.bridge.name": cfg.Bridge, "com.docker.network.bridge.default_bridge": "true"}},
		"host": {Name: "host", Driver: "host"},
		"none": {Name: "none", Driver: "null"},
	}
	for name, w := range want {
		var cur *netRecord
		for _, n := range m.nets {
			if n.Name == name {
				cur = n
			}
		}
		if cur != nil && cur.Subnet == w.Subnet && cur.Gateway == w.Gateway && cur.IPRange == w.IPRange && cur.Bridge == w.Bridge {
			continue
		}
		if cur != nil {
			// The daemon's configuration changed: leases of the old pool go.
			ipam.DropPool(cur.ID)
			w.ID, w.Created = cur.ID, cur.Created
		} else {
			w.ID, w.Created = newID(), time.Now().UTC()
		}
		if err := e.saveNetwork(w); err != nil {
			return err
		}
		m.nets[w.ID] = w
	}
	if !cfg.NoIPForward {
		if err := skinet.EnableForwarding(); err != nil {
			e.log.Warn("outbound NAT needs ip_forward", "err", err)
		}
	}
	for _, n := range m.nets {
		if n.Driver == "bridge" {
			if err := e.setupBridge(n); err != nil {
				return err
			}
		}
	}
	return nil
}

func (e *Engine) setupBridge(n *netRecord) error {
	gw, sub, _ := net.ParseCIDR(n.Subnet)
	gw = net.ParseIP(n.Gateway)
	if err := skinet.EnsureBridge(n.Bridge, &net.IPNet{IP: gw.To4(), Mask: sub.Mask}, e.net.cfg.MTU); err != nil {
		return err
	}
	return e.net.fw.AddNetwork(firewall.Network{ID: n.ID, Bridge: n.Bridge, Subnet: sub, Internal: n.Internal})
}

func (e *Engine) saveNetwork(n *netRecord) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return e.db.Bolt().Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNetworks).Put([]byte(n.ID), b)
	})
}

// restoreNetworking runs after containers are restored: namespaces, veths
// and leases of containers that are not running (a crash in the middle of
// a start) go; published ports of running containers come back (the table
// was rebuilt).
func (e *Engine) restoreNetworking() {
	m := e.net
	running := map[string]*Container{}
	for _, c := range e.reg.all() {
		c.mu.Lock()
		if c.State.Running {
			running[c.ID] = c
		}
		c.mu.Unlock()
	}
	// A restart policy may already be starting a container: hold its op
	// lock while deciding, so a start in progress is never undone.
	stale := func(id string, clean func()) {
		if _, ok := running[id]; ok {
			return
		}
		c, err := e.reg.get(id)
		if err != nil {
			clean()
			return
		}
		c.op.Lock()
		defer c.op.Unlock()
		c.mu.Lock()
		r := c.State.Running
		c.mu.Unlock()
		if !r {
			clean()
		}
	}
	entries, _ := os.ReadDir(m.nsDir)
	for _, ent := range entries {
		stale(ent.Name(), func() { e.cleanupNet(ent.Name()) })
	}
	for _, n := range m.nets {
		leases, _ := m.ipam.Leases(n.ID)
		for _, owner := range leases {
			stale(owner, func() { m.ipam.Release(n.ID, owner) })
		}
	}
	for _, c := range running {
		c.mu.Lock()
		cn := c.Net
		c.mu.Unlock()
		if cn == nil || len(cn.Endpoints) == 0 {
			continue
		}
		m.mu.Lock()
		for _, p := range cn.Ports {
			m.ports[p.Proto+"/"+strconv.Itoa(int(p.HostPort))] = c.ID
		}
		m.mu.Unlock()
		if err := e.startDNS(c, cn.NetNS, cn); err != nil {
			e.log.Warn("restore embedded DNS", "container", c.ID, "err", err)
		}
		if ep := primaryEndpoint(cn); ep != nil {
			if err := m.fw.AddPorts(c.ID, net.ParseIP(ep.IP), toFirewallPorts(cn.Ports)); err != nil {
				e.log.Warn("restore published ports", "container", c.ID, "err", err)
			}
		}
	}
}

// cleanupNet removes what a start may have left for container id: the
// given host veths, or when unknown (after a crash) every name it may have
// used.
func (e *Engine) cleanupNet(id string, veths ...string) {
	if veths == nil {
		for i := 0; i < 8; i++ {
			veths = append(veths, vethName(id, i))
		}
	}
	for _, v := range veths {
		skinet.DeleteLink(v)
	}
	if err := skinet.DeleteNetNS(filepath.Join(e.net.nsDir, id)); err != nil {
		e.log.Warn("remove network namespace", "container", id, "err", err)
	}
}

// closeNetworking removes the bridges and the firewall table when no
// container runs any more (running ones keep their network: live restore).
func (e *Engine) closeNetworking() {
	if e.net == nil {
		return
	}
	e.net.cleanups.Wait()
	for _, c := range e.reg.all() {
		c.mu.Lock()
		r := c.State.Running
		c.mu.Unlock()
		if r {
			return
		}
	}
	e.net.fw.Destroy()
	for _, n := range e.net.nets {
		if n.Driver == "bridge" {
			skinet.DeleteLink(n.Bridge)
		}
	}
	os.Remove(e.net.nsDir)
}

func vethName(id string, i int) string { return fmt.Sprintf("sk%s%d", id[:12], i) }

// netMode names the mode of hc: bridge networks by name, or host, none,
// container:X.
func netMode(hc *container.HostConfig) string {
	m := string(hc.NetworkMode)
	if m == "" || m == "default" {
		return "bridge"
	}
	return m
}

// validateNetworking checks the network mode and endpoint settings at create.
func (e *Engine) validateNetworking(hc *container.HostConfig, nc *network.NetworkingConfig) (*containerNet, error) {
	mode := netMode(hc)
	cn := &containerNet{}
	switch {
	case mode == "host" || mode == "none":
		return cn, nil
	case strings.HasPrefix(mode, "container:"):
		if _, err := e.reg.get(strings.TrimPrefix(mode, "container:")); err != nil {
			return nil, err
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, errdefs.Invalid("conflicting options: port publishing and the container type network mode")
		}
		return cn, nil
	}
	n, err := e.net.byRef(mode)
	if err != nil {
		return nil, errdefs.NotFound("network %s not found", mode)
	}
	cn.Config = map[string]*network.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if es == nil {
				es = &network.EndpointSettings{}
			}
			if name == "" || name == "default" {
				name = "bridge"
			}
			ref, err := e.net.byRef(name)
			if err != nil {
				return nil, errdefs.NotFound("network %s not found", name)
			}
			if es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
				if ref.Name == "bridge" {
					return nil, errdefs.Invalid("user specified IP address is supported on user defined networks only")
				}
				if !prefixOf(ref).Contains(es.IPAMConfig.IPv4Address) {
					return nil, errdefs.Invalid("no configured subnet contains IP address %s", es.IPAMConfig.IPv4Address)
				}
			}
			if len(es.Aliases) > 0 && ref.Name == "bridge" {
				return nil, errdefs.Invalid("network-scoped alias is supported only for containers in user defined networks")
			}
			cn.Config[ref.Name] = es
		}
	}
	if _, ok := cn.Config[n.Name]; !ok {
		cn.Config[n.Name] = &network.EndpointSettings{}
	}
	hc.NetworkMode = container.NetworkMode(n.Name)
	return cn, nil
}

func prefixOf(n *netRecord) netip.Prefix {
	p, _ := netip.ParsePrefix(n.Subnet)
	return p
}

// netStart creates the container's namespace and endpoints and publishes
// its ports; the caller holds c.op. On error nothing is left.
func (e *Engine) netStart(ctx context.Context, c *Container) (err error) {
	c.mu.Lock()
	hc := c.HostConfig
	cfg := c.Config
	cn := c.Net
	c.mu.Unlock()
	mode := netMode(hc)
	if mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		return nil
	}
	if cn == nil {
		cn = &containerNet{}
	}
	if len(cn.Config) == 0 {
		cn.Config = map[string]*network.EndpointSettings{mode: {}}
	}
	m := e.net
	nsPath := filepath.Join(m.nsDir, c.ID)
	t0 := time.Now()
	m.waitCleanup(c.ID)
	if _, err := os.Stat(nsPath); err == nil {
		e.cleanupNet(c.ID) // what an interrupted start left
	}
	if err := skinet.CreateNetNS(nsPath); err != nil {
		return err
	}
	eps := map[string]*netEndpoint{}
	defer func() {
		if err != nil {
			m.fw.RemovePorts(c.ID)
			e.releasePorts(c.ID)
			e.cleanupNet(c.ID)
			for _, ep := range eps {
				m.ipam.Release(ep.NetworkID, c.ID)
			}
		}
	}()
	// The primary network (the mode) gets eth0 and the default route.
	names := make([]string, 0, len(cn.Config))
	for name := range cn.Config {
		if name != mode {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	names = append([]string{mode}, names...)
	for i, name := range names {
		n, err := m.byRef(name)
		if err != nil {
			return err
		}
		es := cn.Config[name]
		var want net.IP
		if es != nil && es.IPAMConfig != nil && es.IPAMConfig.IPv4Address.IsValid() {
			want = net.IP(es.IPAMConfig.IPv4Address.AsSlice())
		}
		ip, err := m.ipam.Allocate(n.pool(), c.ID, want)
		if err != nil {
			return err
		}
		ep := &netEndpoint{NetworkID: n.ID, IP: ip.String(), Gateway: n.Gateway, MAC: skinet.MACFor(ip).String(), HostVeth: vethName(c.ID, i)}
		eps[name] = ep
		_, sub, _ := net.ParseCIDR(n.Subnet)
		ep.PrefixLen, _ = sub.Mask.Size()
		if es != nil {
			ep.Aliases = es.Aliases
		}
		var gw net.IP
		if i == 0 && !n.Internal {
			gw = net.ParseIP(n.Gateway)
		}
		if err := skinet.Attach(skinet.Endpoint{
			NetNS: nsPath, Bridge: n.Bridge, HostName: ep.HostVeth, IfName: fmt.Sprintf("eth%d", i),
			Addr: &net.IPNet{IP: ip, Mask: sub.Mask}, Gateway: gw, MAC: skinet.MACFor(ip), MTU: m.cfg.MTU,
		}); err != nil {
			return err
		}
	}
	ports, err := e.allocatePorts(c.ID, cfg, hc)
	if err != nil {
		return err
	}
	if len(ports) > 0 {
		if err := m.fw.AddPorts(c.ID, net.ParseIP(eps[mode].IP), toFirewallPorts(ports)); err != nil {
			return err
		}
	}
	links, err := e.linkHosts(hc.Links)
	if err != nil {
		return err
	}
	rewriteHosts(e.containerDir(c.ID), cfg.Hostname, eps[mode].IP)
	appendHosts(e.containerDir(c.ID), links)
	c.mu.Lock()
	nc := *cn
	nc.NetNS, nc.Endpoints, nc.Ports = nsPath, eps, ports
	c.Net = &nc
	c.mu.Unlock()
	err = e.startDNS(c, nsPath, &nc)
	e.log.Debug("network up", "id", c.ID[:12], "took", time.Since(t0))
	return err
}

// netStop undoes netStart; safe to call more than once.
func (e *Engine) netStop(c *Container) {
	if e.net == nil {
		return
	}
	c.mu.Lock()
	cn := c.Net
	c.mu.Unlock()
	if cn == nil || cn.NetNS == "" {
		return
	}
	e.stopDNS(c.ID)
	veths := []string{}
	for _, ep := range cn.Endpoints {
		veths = append(veths, ep.HostVeth)
	}
	// The namespace goes now (its file and mount are what a restart and
	// the leak checks look at); the host-side veths after, in the
	// background. The addresses are free at once: IPAM hands out the next
	// one after the last, not a just-released one.
	if err := skinet.DeleteNetNS(filepath.Join(e.net.nsDir, c.ID)); err != nil {
		e.log.Warn("remove network namespace", "container", c.ID, "err", err)
	}
	// The published ports stay reserved until their rules are gone.
	e.net.cleanupLater(c.ID, func() {
		if err := e.net.fw.RemovePorts(c.ID); err != nil {
			e.log.Warn("remove published ports", "container", c.ID, "err", err)
		}
		e.releasePorts(c.ID)
		for _, v := range veths {
			skinet.DeleteLink(v)
		}
	})
	for _, ep := range cn.Endpoints {
		e.net.ipam.Release(ep.NetworkID, c.ID)
	}
	c.mu.Lock()
	if c.Net != nil {
		nc := *c.Net
		nc.NetNS, nc.Endpoints, nc.Ports = "", nil, nil
		c.Net = &nc
	}
	c.mu.Unlock()
}

// netSpec points the spec at the container's network namespace.
func (e *Engine) netSpec(c *Container, spec *specs.Spec) error {
	c.mu.Lock()
	mode := netMode(c.HostConfig)
	var path string
	if c.Net != nil {
		path = c.Net.NetNS
	}
	c.mu.Unlock()
	if strings.HasPrefix(mode, "container:") {
		other, err := e.reg.get(strings.TrimPrefix(mode, "container:"))
		if err != nil {
			return err
		}
		other.mu.Lock()
		running, pid, status := other.State.Running, other.State.Pid, other.State.Status
		if other.Net != nil && other.Net.NetNS != "" {
			path = other.Net.NetNS
		} else {
			path = fmt.Sprintf("/proc/%d/ns/net", pid)
		}
		other.mu.Unlock()
		if !running {
			// dockerd's words: the name and the state.
			return errdefs.Conflict("cannot join network namespace of a non running container: container %s is %s", other.Name, status)
		}
	}
	if path == "" || spec.Linux == nil {
		return nil
	}
	for i := range spec.Linux.Namespaces {
		if spec.Linux.Namespaces[i].Type == specs.NetworkNamespace {
			spec.Linux.Namespaces[i].Path = path
		}
	}
	return nil
}

func primaryEndpoint(cn *containerNet) *netEndpoint {
	var names []string
	for n := range cn.Endpoints {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if cn.Endpoints[n].HostVeth != "" && strings.HasSuffix(cn.Endpoints[n].HostVeth, "0") {
			return cn.Endpoints[n]
		}
	}
	if len(names) > 0 {
		return cn.Endpoints[names[0]]
	}
	return nil
}

func toFirewallPorts(ps []publishedPort) []firewall.Port {
	out := make([]firewall.Port, 0, len(ps))
	for _, p := range ps {
		out = append(out, firewall.Port{Proto: p.Proto, HostIP: net.ParseIP(p.HostIP), HostPort: p.HostPort, ContainerPort: p.ContainerPort})
	}
	return out
}

// allocatePorts resolves -p and -P into concrete host ports, reserving
// them in the manager (a port taken by another container or by a host
// process is refused, as Docker does).
func (e *Engine) allocatePorts(owner string, cfg *container.Config, hc *container.HostConfig) (out []publishedPort, err error) {
	defer func() {
		if err != nil {
			e.releasePorts(owner)
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
		port, err := e.reservePort(owner, proto, hostIP, lo, hi)
		if err != nil {
			return nil, err
		}
		out = append(out, publishedPort{Proto: proto, HostIP: hostIP, HostPort: port, ContainerPort: r.port.Num()})
	}
	return out, nil
}

func (e *Engine) reservePort(owner, proto, hostIP string, lo, hi uint16) (uint16, error) {
	m := e.net
	if lo != 0 {
		// A port asked for by number and held by a container whose
		// teardown is in progress is free in a few milliseconds: wait
		// (`run -p 8080:80` right after the last one stopped must work).
		m.mu.Lock()
		var waits []chan struct{}
		for p := int(lo); p <= int(hi); p++ {
			if o, ok := m.ports[proto+"/"+strconv.Itoa(p)]; ok {
				if done := m.pendingCleanup(o); done != nil {
					waits = append(waits, done)
				}
			}
		}
		m.mu.Unlock()
		for _, done := range waits {
			<-done
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	try := func(p uint16) bool {
		k := proto + "/" + strconv.Itoa(int(p))
		if _, taken := m.ports[k]; taken {
			return false
		}
		if !hostPortFree(proto, hostIP, p) {
			return false
		}
		m.ports[k] = owner
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

// hostPortFree tells whether a host process already listens on the port.
func hostPortFree(proto, hostIP string, p uint16) bool {
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

func (e *Engine) releasePorts(owner string) {
	m := e.net
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, o := range m.ports {
		if o == owner {
			delete(m.ports, k)
		}
	}
}

// rewriteHosts replaces the 127.0.1.1 placeholder for the container's own
// name with its address.
func rewriteHosts(dir, hostname, ip string) {
	p := filepath.Join(dir, "hosts")
	b, err := os.ReadFile(p)
	if err != nil {
		return
	}
	old := "127.0.1.1\t" + hostname + "\n"
	s := string(b)
	if i := strings.Index(s, old); i >= 0 {
		s = s[:i] + ip + "\t" + hostname + "\n" + s[i+len(old):]
	} else if !strings.Contains(s, ip+"\t"+hostname+"\n") {
		s += ip + "\t" + hostname + "\n"
	}
	os.WriteFile(p, []byte(s), 0o644)
}

// networkSettings is inspect's NetworkSettings for c; the caller holds c.mu.
func (e *Engine) networkSettings(c *Container) (map[string]*network.EndpointSettings, network.PortMap) {
	mode := netMode(c.HostConfig)
	out := map[string]*network.EndpointSettings{}
	ports := network.PortMap{}
	if e.net == nil || mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:") {
		name := mode
		if strings.HasPrefix(mode, "container:") {
			return out, ports
		}
		es := &network.EndpointSettings{}
		if n, err := e.net.byRef(name); err == nil {
			es.NetworkID = n.ID
		}
		out[name] = es
		return out, ports
	}
	cn := c.Net
	var cfgs map[string]*network.EndpointSettings
	if cn != nil {
		cfgs = cn.Config
	}
	if len(cfgs) == 0 {
		cfgs = map[string]*network.EndpointSettings{mode: {}}
	}
	for name, req := range cfgs {
		es := &network.EndpointSettings{}
		if req != nil {
			es.IPAMConfig, es.Aliases = req.IPAMConfig, req.Aliases
		}
		if n, err := e.net.byRef(name); err == nil {
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
				if name != "bridge" {
					es.DNSNames = append([]string{c.Name, c.ID[:12]}, ep.Aliases...)
				}
			}
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
	if c.State.Running {
		for p := range c.Config.ExposedPorts {
			if _, ok := ports[p]; !ok {
				ports[p] = nil
			}
		}
	}
	return out, ports
}

// inspectNetwork is inspect's NetworkSettings; the caller holds c.mu.
func (e *Engine) inspectNetwork(c *Container) *container.NetworkSettings {
	nets, ports := e.networkSettings(c)
	ns := &container.NetworkSettings{Networks: nets, Ports: ports}
	if c.Net != nil && c.Net.NetNS != "" {
		ns.SandboxID, ns.SandboxKey = c.ID, c.Net.NetNS
	}
	return ns
}

// netSummary is the ps row's networks; the caller holds c.mu.
func (e *Engine) netSummary(c *Container) map[string]*network.EndpointSettings {
	nets, _ := e.networkSettings(c)
	return nets
}

// portSummary is the ps row's ports; the caller holds c.mu.
func (e *Engine) portSummary(c *Container) []container.PortSummary {
	out := []container.PortSummary{}
	if c.Net == nil {
		return out
	}
	for _, p := range c.Net.Ports {
		ip := netip.IPv4Unspecified()
		if p.HostIP != "" {
			ip, _ = netip.ParseAddr(p.HostIP)
		}
		out = append(out, container.PortSummary{IP: ip, PrivatePort: p.ContainerPort, PublicPort: p.HostPort, Type: p.Proto})
	}
	return out
}
