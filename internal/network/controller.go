package network

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/network/firewall"
)

// The controller is the network policy of the engine: network records, the
// subnet picker, address and port allocation, the endpoints of running
// containers, their teardown, /etc/hosts and resolv.conf, and the embedded
// DNS answers. It reaches the kernel, nftables, the DNS server and the
// engine's container names only through the small interfaces below, so its
// logic is tested with fakes and no root.

// Config is the daemon's bridge networking configuration.
type Config struct {
	Bridge    string // default bridge name, "skiff0"
	BIP       string // default bridge gateway/prefix, "172.17.0.1/16"
	FixedCIDR string // sub-range for container addresses on the default bridge
	MTU       int
	// NoIPForward leaves net.ipv4.ip_forward alone (outbound NAT then
	// needs it enabled by the administrator).
	NoIPForward bool
	// HostGatewayIP is what --add-host NAME:host-gateway resolves to
	// (daemon.json host-gateway-ip); empty: the default bridge's gateway.
	HostGatewayIP string
	NSDir         string // where container network namespaces are bind-mounted
}

// Firewall is what the controller asks of the nftables table.
type Firewall interface {
	AddNetwork(n firewall.Network) error
	RemoveNetwork(id string) error
	AddPorts(owner string, ip net.IP, ports []firewall.Port) error
	RemovePorts(owner string) error
	Destroy() error
}

// Kernel is what the controller asks of the host: bridges, veths, network
// namespaces, and whether a host port or subnet is already in use.
type Kernel interface {
	EnsureBridge(name string, gw *net.IPNet, mtu int) error
	DeleteLink(name string) error
	CreateNetNS(path string) error
	DeleteNetNS(path string) error
	Attach(ep Endpoint) error
	EnableForwarding() error
	HostPortFree(proto, hostIP string, port uint16) bool
	HostRouteOverlaps(p netip.Prefix) bool
}

// DNS starts the embedded DNS server in a namespace.
type DNS interface {
	Serve(nsPath string, lookup func(name string) []net.IP, upstream []string) (io.Closer, error)
}

// Containers is what the controller asks of the engine's containers.
type Containers interface {
	// Lookup resolves a container name or id to its id; ok false when
	// there is none.
	Lookup(ref string) (id string, ok bool)
	// Name is a container's current name (without the leading slash).
	Name(id string) string
}

var bucketNetworks = []byte("engine.networks.v1")

// Network is one network as stored.
type Network struct {
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

// Predefined tells the bridge, host and none networks.
func (n *Network) Predefined() bool {
	return n.Name == "bridge" || n.Name == "host" || n.Name == "none"
}

// Prefix is the network's subnet.
func (n *Network) Prefix() netip.Prefix {
	p, _ := netip.ParsePrefix(n.Subnet)
	return p
}

func (n *Network) pool() Pool {
	_, sub, _ := net.ParseCIDR(n.Subnet)
	p := Pool{ID: n.ID, Subnet: sub, Gateway: net.ParseIP(n.Gateway).To4()}
	if n.IPRange != "" {
		_, p.Range, _ = net.ParseCIDR(n.IPRange)
	}
	return p
}

// ContainerNet is a container's network state, part of its record.
type ContainerNet struct {
	// Requested endpoints (from NetworkingConfig and connect), by
	// network name. nil: the network mode's alone (records of old);
	// empty: none (every network was disconnected before the start).
	Config map[string]*network.EndpointSettings
	// MacAddress is the container-wide MAC address (--mac-address, compose
	// mac_address): the network mode's endpoint gets it when its own
	// settings have none, so it survives docker-compose v1's disconnect
	// and connect of that network before the start.
	MacAddress string `json:",omitempty"`
	// Set while running.
	NetNS     string                 `json:",omitempty"`
	Endpoints map[string]*Attachment `json:",omitempty"`
	Ports     []PublishedPort        `json:",omitempty"`
}

// Attachment is a running container's endpoint on one network.
type Attachment struct {
	NetworkID string
	IP        string
	PrefixLen int
	Gateway   string
	MAC       string
	HostVeth  string
	Aliases   []string `json:",omitempty"`
	// Links are "name:alias" of containers this one resolves by alias
	// on this network (user-defined networks only).
	Links []string `json:",omitempty"`
}

// PublishedPort is one host port forwarded to the container.
type PublishedPort struct {
	Proto         string
	HostIP        string
	HostPort      uint16
	ContainerPort uint16
}

// Controller owns the networks and the endpoints of running containers.
type Controller struct {
	cfg   Config
	db    *bolt.DB
	ipam  *IPAM
	fw    Firewall
	k     Kernel
	dns   DNS
	ctrs  Containers
	log   *slog.Logger
	table string

	mu        sync.Mutex
	nets      map[string]*Network  // by id
	ports     map[string]string    // "proto/port" → owner container id
	sandboxes map[string]*sandbox  // running containers, by id
	dnsSrv    map[string]io.Closer // embedded DNS servers, by container id

	// The slow half of a stopped container's network teardown runs in the
	// background: the kernel takes 15-20 ms per veth here and 5-10 ms per
	// nftables commit, both on the path of every `run --rm`. pending maps a
	// container to the end of its teardown: its next start waits for it
	// (veth names and rule tags are reused), a start that wants one of its
	// host ports waits for it, and Close waits for all.
	pendingMu sync.Mutex
	pending   map[string]chan struct{}
	cleanups  sync.WaitGroup
}

// New loads the stored networks, creates the predefined ones and recreates
// the bridges and rules of every bridge network.
func New(cfg Config, db *bolt.DB, fw Firewall, k Kernel, dns DNS, ctrs Containers, log *slog.Logger) (*Controller, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "skiff0"
	}
	if cfg.BIP == "" {
		cfg.BIP = "172.17.0.1/16"
	}
	if len(cfg.Bridge) > 15 {
		return nil, errdefs.Invalid("bridge name %q is longer than 15 characters", cfg.Bridge)
	}
	gw, sub, err := net.ParseCIDR(cfg.BIP)
	if err != nil || gw.To4() == nil {
		return nil, errdefs.Invalid("invalid bip %q", cfg.BIP)
	}
	if cfg.FixedCIDR != "" {
		if _, fc, err := net.ParseCIDR(cfg.FixedCIDR); err != nil || !sub.Contains(fc.IP) {
			return nil, errdefs.Invalid("invalid fixed-cidr %q: must be inside bip %s", cfg.FixedCIDR, cfg.BIP)
		}
	}
	if cfg.HostGatewayIP != "" {
		if _, err := netip.ParseAddr(cfg.HostGatewayIP); err != nil {
			return nil, errdefs.Invalid("invalid host-gateway-ip %q", cfg.HostGatewayIP)
		}
	}
	ipam, err := NewIPAM(db)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Controller{cfg: cfg, db: db, ipam: ipam, fw: fw, k: k, dns: dns, ctrs: ctrs, log: log,
		nets: map[string]*Network{}, ports: map[string]string{}, sandboxes: map[string]*sandbox{}, dnsSrv: map[string]io.Closer{}}
	if err := db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketNetworks)
		if err != nil {
			return err
		}
		return b.ForEach(func(k, v []byte) error {
			n := &Network{}
			if err := json.Unmarshal(v, n); err != nil {
				return fmt.Errorf("decode network %s: %w", k, err)
			}
			c.nets[n.ID] = n
			return nil
		})
	}); err != nil {
		return nil, fmt.Errorf("load networks: %w", err)
	}
	want := map[string]*Network{
		"bridge": {Name: "bridge", Driver: "bridge", Subnet: sub.String(), Gateway: gw.String(), IPRange: cfg.FixedCIDR, Bridge: cfg.Bridge,
			Options: map[string]string{"com.docker.network.bridge.name": cfg.Bridge, "com.docker.network.bridge.default_bridge": "true"}},
		"host": {Name: "host", Driver: "host"},
		"none": {Name: "none", Driver: "null"},
	}
	for name, w := range want {
		var cur *Network
		for _, n := range c.nets {
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
		if err := c.save(w); err != nil {
			return nil, err
		}
		c.nets[w.ID] = w
	}
	if !cfg.NoIPForward {
		if err := k.EnableForwarding(); err != nil {
			log.Warn("outbound NAT needs ip_forward", "err", err)
		}
	}
	for _, n := range c.nets {
		if n.Driver == "bridge" {
			if err := c.setupBridge(n); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

func newID() string {
	b := make([]byte, 32)
	f, err := os.Open("/dev/urandom")
	if err == nil {
		_, err = io.ReadFull(f, b)
		f.Close()
	}
	if err != nil {
		panic(fmt.Sprintf("read random id: %v", err))
	}
	return fmt.Sprintf("%x", b)
}

func (c *Controller) setupBridge(n *Network) error {
	_, sub, _ := net.ParseCIDR(n.Subnet)
	gw := net.ParseIP(n.Gateway)
	if err := c.k.EnsureBridge(n.Bridge, &net.IPNet{IP: gw.To4(), Mask: sub.Mask}, c.cfg.MTU); err != nil {
		return err
	}
	return c.fw.AddNetwork(firewall.Network{ID: n.ID, Bridge: n.Bridge, Subnet: sub, Internal: n.Internal})
}

func (c *Controller) save(n *Network) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	return c.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNetworks).Put([]byte(n.ID), b)
	})
}

// Network finds a network by id, name or unique id prefix.
func (c *Controller) Network(ref string) (*Network, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.byRefLocked(ref)
}

func (c *Controller) byRefLocked(ref string) (*Network, error) {
	if n, ok := c.nets[ref]; ok {
		return n, nil
	}
	for _, n := range c.nets {
		if n.Name == ref {
			return n, nil
		}
	}
	var found *Network
	for id, n := range c.nets {
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

// Networks lists every network, by name.
func (c *Controller) Networks() []*Network {
	c.mu.Lock()
	out := make([]*Network, 0, len(c.nets))
	for _, n := range c.nets {
		out = append(out, n)
	}
	c.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HostGateway is the address --add-host NAME:host-gateway stands for.
func (c *Controller) HostGateway() string {
	if c.cfg.HostGatewayIP != "" {
		return c.cfg.HostGatewayIP
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nets {
		if n.Name == "bridge" {
			return n.Gateway
		}
	}
	return ""
}

// CreateNetwork creates a user-defined bridge network; without a subnet
// the first free of Docker's local pools.
func (c *Controller) CreateNetwork(req network.CreateRequest, validName func(string) bool) (*Network, error) {
	if req.Name == "" {
		return nil, errdefs.Invalid("network name cannot be empty")
	}
	if !validName(req.Name) && len(req.Name) > 1 {
		return nil, errdefs.Invalid("invalid network name %q", req.Name)
	}
	if req.Driver != "" && req.Driver != "bridge" {
		return nil, errdefs.NotFound("could not find plugin %s in v1 plugin registry: plugin not found", req.Driver)
	}
	// skiff's networks are IPv4 only: --ipv6 (and --ipv4=false) would
	// otherwise be dropped without a word.
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		return nil, errdefs.NotImplemented("IPv6 networks are not supported: skiff's networks are IPv4 only")
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return nil, errdefs.NotImplemented("IPv6-only networks are not supported: skiff's networks are IPv4 only")
	}
	// By name only: a name that is also an id's prefix is not taken.
	for _, o := range c.Networks() {
		if o.Name == req.Name {
			return nil, errdefs.Conflict("network with name %s already exists", req.Name)
		}
	}
	n := &Network{ID: newID(), Name: req.Name, Driver: "bridge", Created: time.Now().UTC(), Internal: req.Internal,
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
		return nil, errdefs.Invalid("bridge name %q is longer than 15 characters", n.Bridge)
	}
	var sub netip.Prefix
	var gw netip.Addr
	if req.IPAM != nil && len(req.IPAM.Config) > 0 {
		ic := req.IPAM.Config[0]
		sub, gw = ic.Subnet.Masked(), ic.Gateway
		if !sub.IsValid() || !sub.Addr().Is4() {
			return nil, errdefs.Invalid("an IPv4 --subnet is required with --gateway/--ip-range")
		}
		if ic.IPRange.IsValid() {
			if !sub.Contains(ic.IPRange.Addr()) || ic.IPRange.Bits() < sub.Bits() {
				return nil, errdefs.Invalid("invalid pool request: ip-range %s is not within subnet %s", ic.IPRange, sub)
			}
			n.IPRange = ic.IPRange.Masked().String()
		}
		if gw.IsValid() && !sub.Contains(gw) {
			return nil, errdefs.Invalid("invalid pool request: gateway %s is not within subnet %s", gw, sub)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	taken := func(p netip.Prefix) bool {
		for _, o := range c.nets {
			if op, err := netip.ParsePrefix(o.Subnet); err == nil && op.Overlaps(p) {
				return true
			}
		}
		return c.k.HostRouteOverlaps(p)
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
			return nil, errdefs.Unavailable("all predefined address pools have been fully subnetted")
		}
	} else if taken(sub) {
		return nil, errdefs.Conflict("invalid pool request: Pool overlaps with other one on this address space")
	}
	if !gw.IsValid() {
		gw = sub.Addr().Next()
	}
	n.Subnet, n.Gateway = sub.String(), gw.String()
	if err := c.save(n); err != nil {
		return nil, err
	}
	c.nets[n.ID] = n
	if err := c.setupBridge(n); err != nil {
		delete(c.nets, n.ID)
		c.deleteRecord(n)
		return nil, err
	}
	return n, nil
}

func (c *Controller) deleteRecord(n *Network) {
	c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketNetworks).Delete([]byte(n.ID)) })
	c.ipam.DropPool(n.ID)
}

// RemoveNetwork deletes a user-defined network; the engine has checked that
// no container uses it.
func (c *Controller) RemoveNetwork(n *Network) error {
	if n.Predefined() {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	if err := c.fw.RemoveNetwork(n.ID); err != nil {
		return err
	}
	if err := c.k.DeleteLink(n.Bridge); err != nil {
		return err
	}
	c.mu.Lock()
	delete(c.nets, n.ID)
	c.mu.Unlock()
	c.deleteRecord(n)
	return nil
}

// NetworkEndpoints lists the running containers' endpoints on network n, by
// container id.
func (c *Controller) NetworkEndpoints(n *Network) map[string]network.EndpointResource {
	type row struct {
		id string
		ep Attachment
	}
	var rows []row
	c.mu.Lock()
	for id, sb := range c.sandboxes {
		if ep := sb.net.Endpoints[n.Name]; ep != nil {
			rows = append(rows, row{id, *ep})
		}
	}
	c.mu.Unlock()
	out := map[string]network.EndpointResource{}
	for _, r := range rows {
		res := network.EndpointResource{Name: c.ctrs.Name(r.id), EndpointID: r.ep.HostVeth}
		if hw, err := net.ParseMAC(r.ep.MAC); err == nil {
			res.MacAddress = network.HardwareAddr(hw)
		}
		if a, err := netip.ParseAddr(r.ep.IP); err == nil {
			res.IPv4Address = netip.PrefixFrom(a, r.ep.PrefixLen)
		}
		out[r.id] = res
	}
	return out
}

// Close waits for the teardowns in progress.
func (c *Controller) Close() {
	c.cleanups.Wait()
	c.mu.Lock()
	for id, s := range c.dnsSrv {
		s.Close()
		delete(c.dnsSrv, id)
	}
	c.mu.Unlock()
}

// Destroy removes the bridges and the firewall table, when no container
// runs any more (running ones keep their network: live restore).
func (c *Controller) Destroy() {
	c.fw.Destroy()
	for _, n := range c.Networks() {
		if n.Driver == "bridge" {
			c.k.DeleteLink(n.Bridge)
		}
	}
	os.Remove(c.cfg.NSDir)
}
