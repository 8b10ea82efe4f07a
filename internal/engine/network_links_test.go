package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/network"
)

func TestLinkEnv(t *testing.T) {
	var ports []network.Port
	for _, p := range []string{"53/udp", "8001/tcp", "80/tcp", "8000/tcp"} {
		ports = append(ports, network.MustParsePort(p))
	}
	got := strings.Join(linkEnv("my-db", "/web/my-db", "10.0.0.5", ports, []string{"PATH=/bin", "PW=x", "HOME=/"}), "\n")
	want := strings.Join([]string{
		"MY_DB_PORT=tcp://10.0.0.5:80",
		"MY_DB_PORT_80_TCP=tcp://10.0.0.5:80", "MY_DB_PORT_80_TCP_ADDR=10.0.0.5", "MY_DB_PORT_80_TCP_PORT=80", "MY_DB_PORT_80_TCP_PROTO=tcp",
		"MY_DB_PORT_8000_TCP=tcp://10.0.0.5:8000", "MY_DB_PORT_8000_TCP_ADDR=10.0.0.5", "MY_DB_PORT_8000_TCP_PORT=8000", "MY_DB_PORT_8000_TCP_PROTO=tcp",
		"MY_DB_PORT_8001_TCP=tcp://10.0.0.5:8001", "MY_DB_PORT_8001_TCP_ADDR=10.0.0.5", "MY_DB_PORT_8001_TCP_PORT=8001", "MY_DB_PORT_8001_TCP_PROTO=tcp",
		"MY_DB_PORT_53_UDP=udp://10.0.0.5:53", "MY_DB_PORT_53_UDP_ADDR=10.0.0.5", "MY_DB_PORT_53_UDP_PORT=53", "MY_DB_PORT_53_UDP_PROTO=udp",
		"MY_DB_PORT_8000_TCP_START=tcp://10.0.0.5:8000", "MY_DB_PORT_8000_TCP_PORT_START=8000",
		"MY_DB_PORT_8000_TCP_END=tcp://10.0.0.5:8001", "MY_DB_PORT_8000_TCP_PORT_END=8001",
		"MY_DB_NAME=/web/my-db", "MY_DB_ENV_PW=x",
	}, "\n")
	if got != want {
		t.Fatalf("link env:\n%s\nwant:\n%s", got, want)
	}
}
