package network

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/network/firewall"
)

// fakeFW records the firewall calls.
type fakeFW struct {
	mu    sync.Mutex
	nets  map[string]firewall.Network
	ports map[string][]firewall.Port
	dnat  map[string]net.IP
}

func (f *fakeFW) AddNetwork(n firewall.Network) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nets[n.ID] = n
	return nil
}
func (f *fakeFW) RemoveNetwork(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.nets, id)
	return nil
}
func (f *fakeFW) AddPorts(owner string, ip net.IP, ps []firewall.Port) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ports[owner], f.dnat[owner] = ps, ip
	return nil
}
func (f *fakeFW) RemovePorts(owner string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.ports, owner)
	return nil
}
func (f *fakeFW) Destroy() error { return nil }

// fakeKernel keeps links and namespaces in maps; namespaces are plain files.
type fakeKernel struct {
	mu      sync.Mutex
	bridges map[string]*net.IPNet
	links   map[string]Endpoint
	busy    map[uint16]bool // host ports a host process holds
	routes  []netip.Prefix  // the host's own subnets
}

func (k *fakeKernel) EnsureBridge(name string, gw *net.IPNet, mtu int) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.bridges[name] = gw
	return nil
}
func (k *fakeKernel) DeleteLink(name string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	delete(k.links, name)
	delete(k.bridges, name)
	return nil
}
func (k *fakeKernel) CreateNetNS(p string) error {
	os.MkdirAll(filepath.Dir(p), 0o755)
	return os.WriteFile(p, nil, 0o644)
}
func (k *fakeKernel) DeleteNetNS(p string) error {
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		return err
	}
	return nil
}
func (k *fakeKernel) Attach(ep Endpoint) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.bridges[ep.Bridge]; !ok {
		return errdefs.NotFound("no bridge %s", ep.Bridge)
	}
	k.links[ep.HostName] = ep
	return nil
}
func (k *fakeKernel) EnableForwarding() error { return nil }
func (k *fakeKernel) HostPortFree(proto, ip string, p uint16) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return !k.busy[p]
}
func (k *fakeKernel) HostRouteOverlaps(p netip.Prefix) bool {
	for _, r := range k.routes {
		if r.Overlaps(p) {
			return true
		}
	}
	return false
}

// fakeDNS keeps the lookup functions it was given, by namespace.
type fakeDNS struct {
	mu      sync.Mutex
	lookups map[string]func(string) []net.IP
}

func (d *fakeDNS) Serve(ns string, lookup func(string) []net.IP, up []string) (io.Closer, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups[ns] = lookup
	return closeFunc(func() {
		d.mu.Lock()
		delete(d.lookups, ns)
		d.mu.Unlock()
	}), nil
}

type closeFunc func()

func (f closeFunc) Close() error { f(); return nil }

// fakeCtrs names containers: id → name.
type fakeCtrs map[string]string

func (f fakeCtrs) Lookup(ref string) (string, bool) {
	for id, n := range f {
		if ref == n || ref == id {
			return id, true
		}
	}
	return "", false
}
func (f fakeCtrs) Name(id string) string { return f[id] }

type rig struct {
	c    *Controller
	fw   *fakeFW
	k    *fakeKernel
	dns  *fakeDNS
	ctrs fakeCtrs
	dir  string
}

func newRig(t *testing.T, cfg Config) *rig {
	t.Helper()
	dir := t.TempDir()
	db, err := bolt.Open(filepath.Join(dir, "db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r := &rig{fw: &fakeFW{nets: map[string]firewall.Network{}, ports: map[string][]firewall.Port{}, dnat: map[string]net.IP{}},
		k:   &fakeKernel{bridges: map[string]*net.IPNet{}, links: map[string]Endpoint{}, busy: map[uint16]bool{}},
		dns: &fakeDNS{lookups: map[string]func(string) []net.IP{}}, ctrs: fakeCtrs{}, dir: dir}
	cfg.NSDir = filepath.Join(dir, "netns")
	r.c, err = New(cfg, db, r.fw, r.k, r.dns, r.ctrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.c.Close)
	return r
}

func id(n byte) string { return strings.Repeat(string('a'+n), 64) }

// create makes a container directory with its etc files and validates its
// networking as the engine's create does.
func (r *rig) create(t *testing.T, n byte, name, mode string, nc *network.NetworkingConfig, hc *container.HostConfig) AttachRequest {
	t.Helper()
	cid := id(n)
	r.ctrs[cid] = name
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if mode == "" {
		mode = "bridge"
	}
	netName, cn, err := r.c.Validate(mode, nc)
	if err != nil {
		t.Fatal(err)
	}
	hc.NetworkMode = container.NetworkMode(netName)
	dir := filepath.Join(r.dir, cid)
	os.MkdirAll(dir, 0o755)
	cfg := &container.Config{Hostname: cid[:12]}
	if err := r.c.WriteEtcFiles(dir, cfg, hc); err != nil {
		t.Fatal(err)
	}
	return AttachRequest{ID: cid, Hostname: cfg.Hostname, Dir: dir, Mode: netName, Net: cn, Config: cfg, Host: hc}
}

func (r *rig) userNet(t *testing.T, name, subnet string) *Network {
	t.Helper()
	req := network.CreateRequest{Name: name}
	if subnet != "" {
		req.IPAM = &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix(subnet)}}}
	}
	n, err := r.c.CreateNetwork(req, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestIPv6Refused: skiff's networks are IPv4 only; asking for IPv6 is
// refused, not dropped.
func TestIPv6Refused(t *testing.T) {
	r := newRig(t, Config{})
	yes, no := true, false
	for _, req := range []network.CreateRequest{{Name: "v6", EnableIPv6: &yes}, {Name: "v6only", EnableIPv4: &no}} {
		_, err := r.c.CreateNetwork(req, func(string) bool { return true })
		if errdefs.KindOf(err) != errdefs.KindNotImplemented || !strings.Contains(err.Error(), "skiff's networks are IPv4 only") {
			t.Errorf("%s: %v", req.Name, err)
		}
	}
	if _, err := r.c.CreateNetwork(network.CreateRequest{Name: "v4", EnableIPv6: &no, EnableIPv4: &yes}, func(string) bool { return true }); err != nil {
		t.Errorf("--ipv6=false: %v", err)
	}
}

func TestSubnetPicker(t *testing.T) {
	r := newRig(t, Config{})
	r.k.routes = []netip.Prefix{netip.MustParsePrefix("172.18.5.0/24")} // a host interface
	a := r.userNet(t, "a", "")
	b := r.userNet(t, "b", "")
	if a.Subnet != "172.19.0.0/16" || b.Subnet != "172.20.0.0/16" {
		t.Fatalf("subnets %s %s, want the first free 172.x/16 after the host's", a.Subnet, b.Subnet)
	}
	if a.Gateway != "172.19.0.1" {
		t.Fatalf("network a: %+v", a)
	}
	if _, err := r.c.CreateNetwork(network.CreateRequest{Name: "c", IPAM: &network.IPAM{Config: []network.IPAMConfig{{Subnet: netip.MustParsePrefix("172.20.1.0/24")}}}},
		func(string) bool { return true }); !errdefs.IsConflict(err) {
		t.Fatalf("overlapping subnet: %v", err)
	}
	if _, ok := r.fw.nets[a.ID]; !ok || r.k.bridges[a.Bridge] == nil {
		t.Fatalf("bridge or firewall of %s missing", a.Name)
	}
	if err := r.c.RemoveNetwork(a); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.fw.nets[a.ID]; ok || r.k.bridges[a.Bridge] != nil {
		t.Fatalf("bridge or firewall of %s left", a.Name)
	}
}

func TestAttachDetach(t *testing.T) {
	r := newRig(t, Config{BIP: "10.9.0.1/16"})
	hc := &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8080"}}}}
	req := r.create(t, 0, "web", "", nil, hc)
	cn, err := r.c.Attach(req)
	if err != nil {
		t.Fatal(err)
	}
	ep := cn.Endpoints["bridge"]
	if ep == nil || ep.IP != "10.9.0.2" || ep.MAC != "02:42:0a:09:00:02" || ep.HostVeth != VethName(req.ID, 0) {
		t.Fatalf("endpoint %+v", ep)
	}
	link := r.k.links[ep.HostVeth]
	if link.IfName != "eth0" || link.Gateway.String() != "10.9.0.1" {
		t.Fatalf("link %+v", link)
	}
	if len(cn.Ports) != 1 || cn.Ports[0].HostPort != 8080 || r.fw.dnat[req.ID].String() != "10.9.0.2" {
		t.Fatalf("ports %+v dnat %v", cn.Ports, r.fw.dnat[req.ID])
	}
	hosts, _ := os.ReadFile(filepath.Join(req.Dir, "hosts"))
	if !strings.Contains(string(hosts), "10.9.0.2\t"+req.Hostname+"\n") {
		t.Fatalf("hosts:\n%s", hosts)
	}
	// A second container asking for the same host port is refused.
	req2 := r.create(t, 1, "web2", "", nil, &container.HostConfig{PortBindings: hc.PortBindings})
	if _, err := r.c.Attach(req2); err == nil || !strings.Contains(err.Error(), "port is already allocated") {
		t.Fatalf("second -p 8080: %v", err)
	}
	if r.k.links[VethName(req2.ID, 0)].HostName != "" {
		t.Fatal("a failed attach left its veth")
	}
	r.c.Detach(req.ID)
	r.c.Close() // waits for the background teardown
	if len(r.k.links) != 0 || len(r.fw.ports) != 0 {
		t.Fatalf("left: links %v ports %v", r.k.links, r.fw.ports)
	}
	if _, err := os.Stat(r.c.NSPath(req.ID)); !os.IsNotExist(err) {
		t.Fatal("namespace left")
	}
	// The port is free again, and the address is not reused at once.
	cn2, err := r.c.Attach(req2)
	if err != nil {
		t.Fatal(err)
	}
	if cn2.Endpoints["bridge"].IP == "10.9.0.2" {
		t.Fatalf("next address %s", cn2.Endpoints["bridge"].IP)
	}
}

func TestValidateEndpoints(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "fixed", "10.77.0.0/24")
	r.userNet(t, "auto", "")
	ip := func(net, addr string) *network.NetworkingConfig {
		return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			net: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr(addr)}}}}
	}
	for _, tc := range []struct {
		mode string
		nc   *network.NetworkingConfig
		want string
	}{
		{"bridge", ip("bridge", "172.17.0.9"), "user specified IP address is supported on user defined networks only"},
		{"auto", ip("auto", "172.19.0.9"), "no configured subnet contains IP address 172.19.0.9"},
		{"auto", ip("auto", "172.18.0.9"), ""},
		{"fixed", ip("fixed", "10.78.0.9"), "no configured subnet contains IP address 10.78.0.9"},
		{"fixed", &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			"fixed": {IPAMConfig: &network.EndpointIPAMConfig{IPv6Address: netip.MustParseAddr("fd00::9")}}}},
			"no configured subnet contains IP address fd00::9"},
		{"bridge", &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"bridge": {Aliases: []string{"x"}}}},
			"network-scoped alias is supported only for containers in user defined networks"},
		{"nope", nil, "network nope not found"},
		{"bridge", linkLocal("bridge", netip.IPv4Unspecified(), netip.IPv6Unspecified(), netip.Addr{}),
			"invalid link-local IP address: 0.0.0.0\ninvalid link-local IP address: ::\ninvalid link-local IP address: invalid IP"},
		// The default bridge takes them (only a static --ip is refused
		// there), and so does any address outside 169.254/16 and fe80::/10.
		{"bridge", linkLocal("bridge", netip.MustParseAddr("169.254.10.10"), netip.MustParseAddr("10.1.2.3")), ""},
		{"fixed", ip("fixed", "10.77.0.9"), ""},
	} {
		_, _, err := r.c.Validate(tc.mode, tc.nc)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: %v, want %q", tc.mode, err, tc.want)
		}
	}
}

func linkLocal(net string, addrs ...netip.Addr) *network.NetworkingConfig {
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		net: {IPAMConfig: &network.EndpointIPAMConfig{LinkLocalIPs: addrs}}}}
}

// TestLinkLocalIPs: --link-local-ip addresses go on the container's
// interface on that network with dockerd's prefixes, next to its address,
// on the primary network and on one connected later.
func TestLinkLocalIPs(t *testing.T) {
	r := newRig(t, Config{BIP: "10.9.0.1/16"})
	r.userNet(t, "other", "10.77.0.0/24")
	nc := linkLocal("bridge", netip.MustParseAddr("169.254.10.10"), netip.MustParseAddr("::ffff:169.254.7.7"), netip.MustParseAddr("fe80::42"))
	req := r.create(t, 0, "ll", "", nc, nil)
	got, err := r.c.Attach(req)
	if err != nil {
		t.Fatal(err)
	}
	link := r.k.links[got.Endpoints["bridge"].HostVeth]
	if link.Addr.String() != "10.9.0.2/16" || fmt.Sprint(link.LinkLocal) != "[169.254.10.10/16 169.254.7.7/16 fe80::42/64]" {
		t.Fatalf("link %+v", link)
	}
	es := &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.MustParseAddr("169.254.3.3")}}}
	other, _ := r.c.Network("other")
	if err := r.c.CheckConnect(other, es); err != nil {
		t.Fatal(err)
	}
	ep, err := r.c.ConnectRunning(req.ID, other, es)
	if err != nil {
		t.Fatal(err)
	}
	if l := r.k.links[ep.HostVeth]; fmt.Sprint(l.LinkLocal) != "[169.254.3.3/16]" || l.IfName != "eth1" {
		t.Fatalf("connected link %+v", l)
	}
	bad := &network.EndpointSettings{IPAMConfig: &network.EndpointIPAMConfig{LinkLocalIPs: []netip.Addr{netip.IPv4Unspecified()}}}
	if err := r.c.CheckConnect(other, bad); err == nil || err.Error() != "invalid endpoint settings:\ninvalid link-local IP address: 0.0.0.0" {
		t.Fatalf("connect with 0.0.0.0: %v", err)
	}
	r.c.Detach(req.ID)
}

func TestStaticIPAndMAC(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "fixed", "10.77.0.0/24")
	mac, _ := net.ParseMAC("92:d0:c6:0a:29:33")
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"fixed": {
		IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.77.0.50")}, MacAddress: network.HardwareAddr(mac)}}}
	req := r.create(t, 0, "a", "fixed", nc, nil)
	cn, err := r.c.Attach(req)
	if err != nil {
		t.Fatal(err)
	}
	ep := cn.Endpoints["fixed"]
	if ep.IP != "10.77.0.50" || ep.MAC != "92:d0:c6:0a:29:33" || r.k.links[ep.HostVeth].MAC.String() != "92:d0:c6:0a:29:33" {
		t.Fatalf("endpoint %+v", ep)
	}
	req2 := r.create(t, 1, "b", "fixed", nc, nil)
	if _, err := r.c.Attach(req2); err == nil || !strings.Contains(err.Error(), "Address already in use") {
		t.Fatalf("same --ip twice: %v", err)
	}
}

func TestHostGateway(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{{Config{BIP: "10.5.0.1/16"}, "10.5.0.1"}, {Config{HostGatewayIP: "192.0.2.7"}, "192.0.2.7"}} {
		r := newRig(t, tc.cfg)
		req := r.create(t, 0, "a", "", nil, &container.HostConfig{ExtraHosts: []string{"gw:host-gateway", "x=10.1.2.3"}})
		hosts, _ := os.ReadFile(filepath.Join(req.Dir, "hosts"))
		if !strings.Contains(string(hosts), tc.want+"\tgw\n") || !strings.Contains(string(hosts), "10.1.2.3\tx\n") {
			t.Errorf("%+v: hosts\n%s", tc.cfg, hosts)
		}
	}
}

// Names, aliases and links as the embedded DNS answers them.
func TestResolve(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "app", "10.60.0.0/24")
	r.userNet(t, "other", "10.61.0.0/24")
	db, err := r.c.Attach(r.create(t, 0, "db", "app", &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		"app": {Aliases: []string{"database"}}}}, nil))
	if err != nil {
		t.Fatal(err)
	}
	web := r.create(t, 1, "web", "app", &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		"app": {Links: []string{"db:sql"}}}}, nil)
	if _, err := r.c.Attach(web); err != nil {
		t.Fatal(err)
	}
	// A container created with --link in HostConfig only (docker-py).
	old := r.create(t, 2, "old", "app", nil, &container.HostConfig{Links: []string{"/db:/old/pg"}})
	if _, err := r.c.Attach(old); err != nil {
		t.Fatal(err)
	}
	stranger := r.create(t, 3, "stranger", "other", nil, nil)
	if _, err := r.c.Attach(stranger); err != nil {
		t.Fatal(err)
	}
	dbIP := db.Endpoints["app"].IP
	lookup := func(req AttachRequest, name string) string {
		r.dns.mu.Lock()
		f := r.dns.lookups[r.c.NSPath(req.ID)]
		r.dns.mu.Unlock()
		if f == nil {
			t.Fatalf("no DNS server for %s", req.ID[:12])
		}
		var s []string
		for _, ip := range f(name) {
			s = append(s, ip.String())
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		from AttachRequest
		name string
		want string
	}{
		{web, "db", dbIP}, {web, "DB", dbIP}, {web, "database", dbIP}, {web, id(0)[:12], dbIP},
		{web, "sql", dbIP}, {old, "sql", ""}, {old, "pg", dbIP}, {web, "pg", ""},
		{stranger, "db", ""}, {stranger, "sql", ""},
	} {
		if got := lookup(tc.from, tc.name); got != tc.want {
			t.Errorf("%s resolves %s to %q, want %q", r.ctrs[tc.from.ID], tc.name, got, tc.want)
		}
	}
	resolv, _ := os.ReadFile(filepath.Join(web.Dir, "resolv.conf"))
	if !strings.HasPrefix(string(resolv), "nameserver 127.0.0.11\n") {
		t.Fatalf("resolv.conf:\n%s", resolv)
	}
	r.c.Detach(web.ID)
	if _, ok := r.dns.lookups[r.c.NSPath(web.ID)]; ok {
		t.Fatal("DNS server left after detach")
	}
}

// Legacy links on the default bridge: /etc/hosts entries, the linked
// container must run.
func TestLegacyLinks(t *testing.T) {
	r := newRig(t, Config{BIP: "10.8.0.1/16"})
	dbReq := r.create(t, 0, "db", "", nil, nil)
	lonely := r.create(t, 2, "lonely", "", nil, &container.HostConfig{Links: []string{"db:x"}})
	if _, err := r.c.Attach(lonely); err == nil || !strings.Contains(err.Error(), "cannot link to a non running container") {
		t.Fatalf("link to a stopped container: %v", err)
	}
	db, err := r.c.Attach(dbReq)
	if err != nil {
		t.Fatal(err)
	}
	web := r.create(t, 1, "web", "", nil, &container.HostConfig{Links: []string{"db:sql"}})
	if _, err := r.c.Attach(web); err != nil {
		t.Fatal(err)
	}
	hosts, _ := os.ReadFile(filepath.Join(web.Dir, "hosts"))
	if want := db.Endpoints["bridge"].IP + "\tsql " + id(0)[:12] + " db\n"; !strings.Contains(string(hosts), want) {
		t.Fatalf("hosts lacks %q:\n%s", want, hosts)
	}
}

// docker-compose v1: created on one network, disconnected, connected
// with aliases, then started; a running container connects live.
func TestConnectRunning(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "a", "10.70.0.0/24")
	b := r.userNet(t, "b", "10.71.0.0/24")
	req := r.create(t, 0, "x", "bridge", nil, nil)
	if _, err := r.c.Attach(req); err != nil {
		t.Fatal(err)
	}
	ep, err := r.c.ConnectRunning(req.ID, b, &network.EndpointSettings{Aliases: []string{"bee"}})
	if err != nil {
		t.Fatal(err)
	}
	if ep.HostVeth != VethName(req.ID, 1) || r.k.links[ep.HostVeth].IfName != "eth1" || r.k.links[ep.HostVeth].Gateway != nil {
		t.Fatalf("second endpoint %+v link %+v", ep, r.k.links[ep.HostVeth])
	}
	if err := r.c.StartDNS(req.ID, req.Dir); err != nil {
		t.Fatal(err)
	}
	if _, ok := r.dns.lookups[r.c.NSPath(req.ID)]; !ok {
		t.Fatal("no embedded DNS after connecting a user network")
	}
	if got := r.c.NetworkEndpoints(b); got[req.ID].Name != "x" {
		t.Fatalf("network endpoints %+v", got)
	}
	r.c.DisconnectRunning(req.ID, b)
	if _, ok := r.k.links[ep.HostVeth]; ok || len(r.c.NetworkEndpoints(b)) != 0 {
		t.Fatal("endpoint left after disconnect")
	}
	// Created with an empty set of networks (all disconnected): loopback
	// only, no ports, no error.
	req2 := r.create(t, 1, "y", "a", nil, nil)
	req2.Net.Config = map[string]*network.EndpointSettings{}
	cn, err := r.c.Attach(req2)
	if err != nil || len(cn.Endpoints) != 0 {
		t.Fatalf("no networks: %v %+v", err, cn)
	}
	// Also after an engine restart, its stop removes its namespace.
	c2, err := New(Config{NSDir: r.c.cfg.NSDir}, r.c.db, r.fw, r.k, r.dns, r.ctrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	c2.Restore([]Restored{{ID: req.ID, Net: &ContainerNet{}}, {ID: req2.ID, Net: cn, Dir: req2.Dir}}, func(string, func()) {})
	c2.Detach(req2.ID)
	c2.Close()
	if _, err := os.Stat(c2.NSPath(req2.ID)); !os.IsNotExist(err) {
		t.Fatal("namespace of a container without networks left")
	}
}

// An engine restart: a running container's endpoints, ports and DNS come
// back; a namespace and a lease left by a container that is not running
// go.
func TestRestore(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "app", "10.62.0.0/24")
	hc := &container.HostConfig{PortBindings: network.PortMap{network.MustParsePort("80/tcp"): {{HostPort: "8081"}}}}
	run := r.create(t, 0, "run", "app", nil, hc)
	cn, err := r.c.Attach(run)
	if err != nil {
		t.Fatal(err)
	}
	dead := r.create(t, 1, "dead", "app", nil, nil)
	if _, err := r.c.Attach(dead); err != nil {
		t.Fatal(err)
	}
	// The engine dies: a new controller on the same store and host.
	c2, err := New(Config{NSDir: r.c.cfg.NSDir}, r.c.db, r.fw, r.k, r.dns, r.ctrs, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.fw.ports = map[string][]firewall.Port{} // the table was rebuilt
	var cleaned []string
	c2.Restore([]Restored{{ID: run.ID, Net: cn, Dir: run.Dir}}, func(id string, clean func()) {
		cleaned = append(cleaned, id)
		clean()
	})
	defer c2.Close()
	if _, err := os.Stat(c2.NSPath(dead.ID)); !os.IsNotExist(err) {
		t.Fatal("the stopped container's namespace is left")
	}
	n, _ := c2.Network("app")
	leases, _ := c2.ipam.Leases(n.ID)
	for _, owner := range leases {
		if owner == dead.ID {
			t.Fatal("the stopped container's lease is left")
		}
	}
	if len(r.fw.ports[run.ID]) != 1 || !c2.Attached(run.ID) {
		t.Fatalf("running container not restored: ports %v", r.fw.ports)
	}
	if _, err := c2.reservePort(id(2), "tcp", "", 8081, 8081); err == nil {
		t.Fatal("the running container's host port was handed out again")
	}
	if len(cleaned) == 0 {
		t.Fatal("stale was never asked")
	}
}

func TestParseLink(t *testing.T) {
	for in, want := range map[string][2]string{
		"db": {"db", "db"}, "db:sql": {"db", "sql"}, "/db:/web/sql": {"db", "sql"},
	} {
		if n, a := ParseLink(in); n != want[0] || a != want[1] {
			t.Errorf("ParseLink(%q) = %s %s", in, n, a)
		}
	}
}

func TestSettings(t *testing.T) {
	r := newRig(t, Config{})
	r.userNet(t, "app", "10.63.0.0/24")
	req := r.create(t, 0, "web", "app", &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		"app": {Aliases: []string{"w"}}}}, nil)
	cn, err := r.c.Attach(req)
	if err != nil {
		t.Fatal(err)
	}
	nets, _ := r.c.Settings(req.ID, "web", "h1", "app", cn)
	es := nets["app"]
	if es == nil || es.IPAddress.String() != "10.63.0.2" || es.MacAddress.String() != "02:42:0a:3f:00:02" ||
		strings.Join(es.DNSNames, " ") != "web w "+req.ID[:12]+" h1" || strings.Join(es.Aliases, " ") != "w" {
		t.Fatalf("settings %+v", es)
	}
}
