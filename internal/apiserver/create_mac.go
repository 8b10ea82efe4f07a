package apiserver

import (
	"net"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// createBody is a create request with the container-wide MacAddress that
// API < 1.52 clients may send in Config (docker-compose 1.29's
// mac_address; the docker CLI sends it per endpoint since 1.44).
type createBody struct {
	container.CreateRequest
	MacAddress string `json:",omitempty"`
}

// migrateMAC moves the container-wide MAC address to the endpoint of the
// container's network mode, as dockerd does for such clients.
func migrateMAC(minor int, mac string, req *container.CreateRequest) (string, error) {
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	eps := req.NetworkingConfig.EndpointsConfig
	if mac == "" {
		if minor < 44 {
			// The old API had no per-endpoint MAC address: dockerd drops it.
			for _, ep := range eps {
				if ep != nil {
					ep.MacAddress = nil
				}
			}
		}
		return "", nil
	}
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return "", invalidf("invalid MAC address %s", mac)
	}
	mode := req.HostConfig.NetworkMode
	if !mode.IsBridge() && !mode.IsUserDefined() && !mode.IsDefault() {
		return "", invalidf("conflicting options: mac-address and the network mode")
	}
	name := mode.NetworkName()
	if mode == "" || mode.IsDefault() {
		name = "bridge"
	}
	var ep *network.EndpointSettings
	switch {
	case len(eps) == 0:
		ep = &network.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{name: ep}
	case minor < 44:
		for _, e := range eps {
			ep = e
		}
	default:
		if ep = eps[name]; ep == nil {
			return "", invalidf("unable to migrate container-wide MAC address to a specific network: HostConfig.NetworkMode must match the identity of a network in NetworkSettings.Networks")
		}
	}
	if ep == nil {
		ep = &network.EndpointSettings{}
		for k := range eps {
			eps[k] = ep
		}
	}
	if len(ep.MacAddress) > 0 && ep.MacAddress.String() != hw.String() {
		return "", invalidf("the container-wide MAC address must match the endpoint-specific MAC address for the main network, or be left empty")
	}
	ep.MacAddress = network.HardwareAddr(hw)
	if minor >= 44 {
		return "The container-wide MacAddress field is now deprecated. It should be specified in EndpointsConfig instead.", nil
	}
	return "", nil
}
