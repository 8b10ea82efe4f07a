package daemon

import "github.com/skiff-dev/skiff/internal/engine"

// NetworkConfig holds the daemon.json keys of bridge networking (Docker's
// names; nft-table is skiff's own: the one nftables table skiff owns).
type NetworkConfig struct {
	Bridge    string `json:"bridge,omitempty"`     // default bridge name, skiff0
	BIP       string `json:"bip,omitempty"`        // e.g. 172.17.0.1/16
	FixedCIDR string `json:"fixed-cidr,omitempty"` // container addresses on the default bridge
	MTU       int    `json:"mtu,omitempty"`
	NftTable  string `json:"nft-table,omitempty"`  // default "skiff"
	IPForward *bool  `json:"ip-forward,omitempty"` // default true, as dockerd
	// HostGatewayIP is what --add-host NAME:host-gateway resolves to;
	// default the default bridge's gateway.
	HostGatewayIP string `json:"host-gateway-ip,omitempty"`
}

// networkKeys are the daemon.json keys NetworkConfig reads.
var networkKeys = []string{"bridge", "bip", "fixed-cidr", "mtu", "nft-table", "ip-forward", "host-gateway-ip"}

// mergeNetwork takes from file what flags left unset.
func (cfg *Config) mergeNetwork(file NetworkConfig) {
	n := &cfg.NetworkConfig
	if n.Bridge == "" {
		n.Bridge = file.Bridge
	}
	if n.BIP == "" {
		n.BIP = file.BIP
	}
	if n.FixedCIDR == "" {
		n.FixedCIDR = file.FixedCIDR
	}
	if n.MTU == 0 {
		n.MTU = file.MTU
	}
	if n.NftTable == "" {
		n.NftTable = file.NftTable
	}
	if n.IPForward == nil {
		n.IPForward = file.IPForward
	}
	if n.HostGatewayIP == "" {
		n.HostGatewayIP = file.HostGatewayIP
	}
}

func (cfg *Config) engineNet() engine.NetConfig {
	n := cfg.NetworkConfig
	return engine.NetConfig{Bridge: n.Bridge, BIP: n.BIP, FixedCIDR: n.FixedCIDR, MTU: n.MTU,
		NftTable: n.NftTable, NoIPForward: n.IPForward != nil && !*n.IPForward, HostGatewayIP: n.HostGatewayIP}
}
