package apiserver

import (
	"net"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestMigrateMAC(t *testing.T) {
	mac := "92:d0:c6:0a:29:33"
	hw, _ := net.ParseMAC("92:d0:c6:0a:29:44")
	other := network.HardwareAddr(hw)
	for _, tc := range []struct {
		name  string
		minor int
		mac   string
		mode  string
		eps   map[string]*network.EndpointSettings
		want  string // the MAC of endpoint "n" or of the mode's endpoint
		err   string
		warn  bool
	}{
		{"old client, no endpoints", 41, mac, "n", nil, mac, "", false},
		{"old client, default mode", 41, mac, "", nil, mac, "", false},
		{"old client, one endpoint", 41, mac, "n", map[string]*network.EndpointSettings{"n": {}}, mac, "", false},
		{"new client, deprecated field", 51, mac, "n", map[string]*network.EndpointSettings{"n": {}}, mac, "", true},
		{"mismatch", 51, mac, "n", map[string]*network.EndpointSettings{"n": {MacAddress: other}}, "", "must match the endpoint-specific MAC address", false},
		{"host mode", 41, mac, "host", nil, "", "conflicting options: mac-address and the network mode", false},
		{"invalid", 41, "zz", "n", nil, "", "invalid MAC address zz", false},
		{"old client drops endpoint MACs", 41, "", "n", map[string]*network.EndpointSettings{"n": {MacAddress: other}}, "", "", false},
	} {
		req := &container.CreateRequest{Config: &container.Config{}, HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)},
			NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: tc.eps}}
		warn, err := migrateMAC(tc.minor, tc.mac, req)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		key := tc.mode
		if key == "" {
			key = "bridge"
		}
		var got string
		if ep := req.NetworkingConfig.EndpointsConfig[key]; ep != nil && len(ep.MacAddress) > 0 {
			got = ep.MacAddress.String()
		}
		if got != tc.want || (warn != "") != tc.warn {
			t.Errorf("%s: MAC %q warning %q", tc.name, got, warn)
		}
	}
}
