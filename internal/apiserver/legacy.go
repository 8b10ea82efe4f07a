package apiserver

import (
	"github.com/moby/moby/api/types/container"
)

// legacyNetworkSettings carries the top-level NetworkSettings fields that API
// versions before 1.52 return (Docker dropped them in 1.52; skiff speaks 1.51,
// and scripts template on {{.NetworkSettings.IPAddress}}). As in Docker, they
// describe the endpoint on the default "bridge" network and are empty
// otherwise.
type legacyNetworkSettings struct {
	*container.NetworkSettings
	Bridge                 string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	HairpinMode            bool
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	MacAddress             string
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
}

// inspectResponse is the container inspect document with the legacy fields;
// its NetworkSettings shadows the embedded one when encoded.
type inspectResponse struct {
	*container.InspectResponse
	NetworkSettings *legacyNetworkSettings
}

func withLegacyNetworkSettings(c *container.InspectResponse) any {
	if c == nil || c.NetworkSettings == nil {
		return c
	}
	ns := &legacyNetworkSettings{NetworkSettings: c.NetworkSettings}
	if ep := c.NetworkSettings.Networks["bridge"]; ep != nil {
		ns.EndpointID, ns.IPPrefixLen, ns.GlobalIPv6PrefixLen = ep.EndpointID, ep.IPPrefixLen, ep.GlobalIPv6PrefixLen
		if ep.IPAddress.IsValid() {
			ns.IPAddress = ep.IPAddress.String()
		}
		if ep.Gateway.IsValid() {
			ns.Gateway = ep.Gateway.String()
		}
		if ep.IPv6Gateway.IsValid() {
			ns.IPv6Gateway = ep.IPv6Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			ns.GlobalIPv6Address = ep.GlobalIPv6Address.String()
		}
		if len(ep.MacAddress) > 0 {
			ns.MacAddress = ep.MacAddress.String()
		}
	}
	return &inspectResponse{InspectResponse: c, NetworkSettings: ns}
}
