package engine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiff-dev/skiff/internal/dns"
	"github.com/skiff-dev/skiff/internal/errdefs"
	skinet "github.com/skiff-dev/skiff/internal/network"
	"github.com/skiff-dev/skiff/internal/network/firewall"
)

// The network policy (records, addresses, ports, endpoints, teardown,
// /etc/hosts, DNS answers) is the controller's, in internal/network; the
// engine asks it to attach and detach containers and serves the network
// API around it.

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
	// HostGatewayIP is daemon.json host-gateway-ip.
	HostGatewayIP string
}

// containerNet is a container's network state, part of its record.
type containerNet = skinet.ContainerNet

// engineContainers gives the controller the container names it resolves.
type engineContainers struct{ e *Engine }

func (x engineContainers) Lookup(ref string) (string, bool) {
	c, err := x.e.reg.get(ref)
	if err != nil {
		return "", false
	}
	return c.ID, true
}

func (x engineContainers) Name(id string) string {
	c, err := x.e.reg.get(id)
	if err != nil {
		return ""
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.Name
}

// embeddedDNS starts internal/dns servers for the controller.
type embeddedDNS struct{}

func (embeddedDNS) Serve(nsPath string, lookup func(string) []net.IP, upstream []string) (io.Closer, error) {
	srv, err := dns.Serve(nsPath, lookup, upstream)
	if err != nil {
		return nil, err
	}
	return closer(srv.Close), nil
}

type closer func()

func (f closer) Close() error { f(); return nil }

// initNetworking opens the firewall table and the network controller.
func (e *Engine) initNetworking(ctx context.Context) error {
	cfg := e.cfg.Net
	if cfg.NftTable == "" {
		cfg.NftTable = "skiff"
	}
	fw, err := firewall.New(cfg.NftTable)
	if err != nil {
		return err
	}
	ctl, err := skinet.New(skinet.Config{Bridge: cfg.Bridge, BIP: cfg.BIP, FixedCIDR: cfg.FixedCIDR, MTU: cfg.MTU,
		NoIPForward: cfg.NoIPForward, HostGatewayIP: cfg.HostGatewayIP, NSDir: filepath.Join(e.cfg.ExecRoot, "netns")},
		e.db.Bolt(), fw, skinet.Host{}, embeddedDNS{}, engineContainers{e}, e.log)
	if err != nil {
		return err
	}
	e.net, e.netAtt = ctl, ctl
	return nil
}

// restoreNetworking runs after containers are restored: what containers
// that are not running left goes; running ones get their endpoints,
// ports and DNS back.
func (e *Engine) restoreNetworking() {
	var running []skinet.Restored
	for _, c := range e.reg.all() {
		c.mu.Lock()
		if c.State.Running && c.Net != nil {
			r := skinet.Restored{ID: c.ID, Hostname: c.Config.Hostname, Net: c.Net, Dir: e.containerDir(c.ID)}
			for _, a := range c.HostConfig.DNS {
				r.DNS = append(r.DNS, a.String())
			}
			running = append(running, r)
		}
		c.mu.Unlock()
	}
	// A restart policy may already be starting a container: decide within
	// an operation on it, so a start in progress is never undone.
	stale := func(id string, clean func()) {
		c, err := e.reg.get(id)
		if err != nil {
			clean()
			return
		}
		c.mu.Lock()
		if err := c.beginOpLocked(e.ctx); err != nil {
			c.mu.Unlock()
			return // shutting down: leave it for the next engine
		}
		defer c.endOp()
		r := c.State.Running
		c.mu.Unlock()
		if !r {
			clean()
		}
	}
	e.net.Restore(running, stale)
}

// closeNetworking waits for teardowns, then removes the bridges and the
// firewall table when no container runs any more (running ones keep
// their network: live restore).
func (e *Engine) closeNetworking() {
	if e.net == nil {
		return
	}
	e.net.Close()
	for _, c := range e.reg.all() {
		c.mu.Lock()
		r := c.State.Running
		c.mu.Unlock()
		if r {
			return
		}
	}
	e.net.Destroy()
}

// netMode names the mode of hc: bridge networks by name, or host, none,
// container:X.
func netMode(hc *container.HostConfig) string {
	m := string(hc.NetworkMode)
	if m == "" || m == "default" {
		return "bridge"
	}
	return m
}

// sharesNetNS: host, none and container:X modes have no endpoints of
// their own.
func sharesNetNS(mode string) bool {
	return mode == "host" || mode == "none" || strings.HasPrefix(mode, "container:")
}

// validateNetworking checks the network mode and endpoint settings at create.
func (e *Engine) validateNetworking(hc *container.HostConfig, nc *network.NetworkingConfig) (*containerNet, error) {
	mode := netMode(hc)
	switch {
	case mode == "host" || mode == "none":
		return &containerNet{}, nil
	case strings.HasPrefix(mode, "container:"):
		if _, err := e.reg.get(strings.TrimPrefix(mode, "container:")); err != nil {
			return nil, err
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, errdefs.Invalid("conflicting options: port publishing and the container type network mode")
		}
		return &containerNet{}, nil
	}
	name, cn, err := e.net.Validate(mode, nc)
	if err != nil {
		return nil, err
	}
	hc.NetworkMode = container.NetworkMode(name)
	return cn, nil
}

// netStart has the controller attach the container; the caller has begun
// an operation on c (beginOp).
// On error nothing is left.
func (e *Engine) netStart(ctx context.Context, c *Container) error {
	c.mu.Lock()
	req := skinet.AttachRequest{ID: c.ID, Hostname: c.Config.Hostname, Dir: e.containerDir(c.ID),
		Mode: netMode(c.HostConfig), Net: c.Net, Config: c.Config, Host: c.HostConfig}
	c.mu.Unlock()
	if sharesNetNS(req.Mode) {
		return nil
	}
	t0 := time.Now()
	nc, err := e.netAtt.Attach(req)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.Net = nc
	c.mu.Unlock()
	e.log.Debug("network up", "id", c.ID[:12], "took", time.Since(t0))
	return nil
}

// netStop undoes netStart; safe to call more than once.
func (e *Engine) netStop(c *Container) {
	if e.netAtt == nil {
		return
	}
	e.netAtt.Detach(c.ID)
	c.mu.Lock()
	if c.Net != nil && c.Net.NetNS != "" {
		nc := *c.Net
		nc.NetNS, nc.Endpoints, nc.Ports = "", nil, nil
		c.Net = &nc
	}
	c.mu.Unlock()
}

// netSpec points the spec at the container's network namespace.
func (e *Engine) netSpec(c *Container, spec *specs.Spec) error {
	e.legacyLinkEnv(c, spec) // network_links.go
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

// networkSettings is inspect's NetworkSettings for c; the caller holds c.mu.
func (e *Engine) networkSettings(c *Container) (map[string]*network.EndpointSettings, network.PortMap) {
	mode := netMode(c.HostConfig)
	if e.net == nil || strings.HasPrefix(mode, "container:") {
		return map[string]*network.EndpointSettings{}, network.PortMap{}
	}
	out, ports := e.net.Settings(c.ID, c.Name, c.Config.Hostname, mode, c.Net)
	if c.State.Running && !sharesNetNS(mode) {
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
