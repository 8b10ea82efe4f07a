package engine

import (
	"context"
	"net/netip"
	"strings"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
	skinet "github.com/skiff-dev/skiff/internal/network"
)

// NetworkCreate creates a user-defined bridge network.
func (e *Engine) NetworkCreate(ctx context.Context, req network.CreateRequest) (network.CreateResponse, error) {
	n, err := e.net.CreateNetwork(req, validName.MatchString)
	if err != nil {
		return network.CreateResponse{}, err
	}
	e.events.publish(events.NetworkEventType, events.ActionCreate, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return network.CreateResponse{ID: n.ID}, nil
}

// usersOf lists the containers configured on network n.
func (e *Engine) usersOf(n *skinet.Network) []*Container {
	var out []*Container
	for _, c := range e.reg.all() {
		c.mu.Lock()
		use := false
		if c.Net != nil && c.Net.Config != nil {
			_, use = c.Net.Config[n.Name]
		} else {
			use = netMode(c.HostConfig) == n.Name
		}
		if c.Net != nil && c.Net.Endpoints[n.Name] != nil {
			use = true
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
	n, err := e.net.Network(ref)
	if err != nil {
		return err
	}
	if n.Predefined() {
		return errdefs.Forbidden("%s is a pre-defined network and cannot be removed", n.Name)
	}
	if users := e.usersOf(n); len(users) > 0 {
		return errdefs.Conflict("error while removing network: network %s has active endpoints (name:%q id:%q)", n.Name, users[0].Name, users[0].ID[:12])
	}
	if err := e.net.RemoveNetwork(n); err != nil {
		return err
	}
	e.events.publish(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": "bridge"})
	return nil
}

func (e *Engine) networkDoc(n *skinet.Network, withContainers bool) network.Inspect {
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
	if p := n.Prefix(); p.IsValid() {
		c := network.IPAMConfig{Subnet: p}
		c.Gateway = parseAddr(n.Gateway)
		if n.IPRange != "" {
			c.IPRange = parsePrefix(n.IPRange)
		}
		doc.IPAM.Config = append(doc.IPAM.Config, c)
	}
	if withContainers {
		doc.Containers = e.net.NetworkEndpoints(n)
	}
	return doc
}

// NetworkInspect returns Docker's network document with its containers.
func (e *Engine) NetworkInspect(ctx context.Context, ref string) (network.Inspect, error) {
	n, err := e.net.Network(ref)
	if err != nil {
		return network.Inspect{}, err
	}
	return e.networkDoc(n, true), nil
}

func (e *Engine) netMatches(n *skinet.Network, f filters.Args) bool {
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
		if n.Predefined() {
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
	out := []network.Summary{}
	for _, n := range e.net.Networks() {
		if e.netMatches(n, f) {
			out = append(out, network.Summary{Network: e.networkDoc(n, false).Network})
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
	for _, n := range e.net.Networks() {
		if n.Predefined() || !f.MatchLabels("label", n.Labels) {
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

// NetworkConnect adds a network to a container: a created one gets it at
// its start (docker-compose v1 creates on one network, then connects the
// others, aliases and links included, then starts), a running one at once.
func (e *Engine) NetworkConnect(ctx context.Context, ref, ctr string, es *network.EndpointSettings) error {
	n, err := e.net.Network(ref)
	if err != nil {
		return err
	}
	c, err := e.reg.get(ctr)
	if err != nil {
		return err
	}
	if es == nil {
		es = &network.EndpointSettings{}
	}
	if err := e.net.CheckConnect(n, es); err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.beginOpLocked(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	defer c.endOp()
	mode := netMode(c.HostConfig)
	if sharesNetNS(mode) {
		c.mu.Unlock()
		return errdefs.Invalid("container sharing network namespace with another container or host cannot be connected to any other network")
	}
	cfgs := configuredNets(c)
	running := c.State.Running && e.net.Attached(c.ID)
	if _, ok := cfgs[n.Name]; ok {
		c.mu.Unlock()
		if running {
			return errdefs.Forbidden("endpoint with name %s already exists in network %s", c.Name, n.Name)
		}
		return nil // dockerd keeps the first configuration
	}
	c.mu.Unlock()
	if running {
		ep, err := e.net.ConnectRunning(c.ID, n, es)
		if err != nil {
			return err
		}
		c.mu.Lock()
		nc := *c.Net
		nc.Endpoints = map[string]*skinet.Attachment{}
		for k, v := range c.Net.Endpoints {
			nc.Endpoints[k] = v
		}
		nc.Endpoints[n.Name] = ep
		c.Net = &nc
		c.mu.Unlock()
		if err := e.net.StartDNS(c.ID, e.containerDir(c.ID)); err != nil {
			e.log.Warn("embedded DNS", "container", c.ID, "err", err)
		}
	}
	c.mu.Lock()
	cfgs = configuredNets(c)
	cfgs[n.Name] = es
	c.Net.Config = cfgs
	err = e.persist(c)
	c.mu.Unlock()
	e.events.publish(events.NetworkEventType, events.ActionConnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}

// configuredNets is a copy of c's requested endpoints (nil in a record
// means its network mode's alone); the caller holds c.mu.
func configuredNets(c *Container) map[string]*network.EndpointSettings {
	if c.Net == nil {
		c.Net = &containerNet{}
	}
	out := map[string]*network.EndpointSettings{}
	if c.Net.Config == nil {
		out[netMode(c.HostConfig)] = &network.EndpointSettings{}
	}
	for k, v := range c.Net.Config {
		out[k] = v
	}
	return out
}

// NetworkDisconnect removes a network from a container. The network mode
// stays what it was, as with dockerd: a container left without networks
// starts with its loopback alone.
func (e *Engine) NetworkDisconnect(ctx context.Context, ref, ctr string, force bool) error {
	n, err := e.net.Network(ref)
	if err != nil {
		return err
	}
	c, err := e.reg.get(ctr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	if err := c.beginOpLocked(ctx); err != nil {
		c.mu.Unlock()
		return err
	}
	defer c.endOp()
	mode := netMode(c.HostConfig)
	if sharesNetNS(mode) {
		c.mu.Unlock()
		if mode == "host" && n.Name == "host" {
			return errdefs.Invalid("cannot disconnect container from host network - container was created in host network mode")
		}
		return errdefs.Forbidden("container %s is not connected to network %s", c.ID, n.Name)
	}
	cfgs := configuredNets(c)
	if _, ok := cfgs[n.Name]; !ok {
		c.mu.Unlock()
		return errdefs.Forbidden("container %s is not connected to the network %s", c.ID, n.Name)
	}
	delete(cfgs, n.Name)
	c.Net.Config = cfgs
	if c.Net.Endpoints[n.Name] != nil {
		nc := *c.Net
		nc.Endpoints = map[string]*skinet.Attachment{}
		for k, v := range c.Net.Endpoints {
			if k != n.Name {
				nc.Endpoints[k] = v
			}
		}
		c.Net = &nc
	}
	err = e.persist(c)
	c.mu.Unlock()
	e.net.DisconnectRunning(c.ID, n)
	e.events.publish(events.NetworkEventType, events.ActionDisconnect, n.ID, map[string]string{"name": n.Name, "type": "bridge", "container": c.ID})
	return err
}

func parseAddr(s string) netip.Addr {
	a, _ := netip.ParseAddr(s)
	return a
}

func parsePrefix(s string) netip.Prefix {
	p, _ := netip.ParsePrefix(s)
	return p
}
