package tests

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
)

var (
	portsMu    sync.Mutex
	portsGiven = map[int]bool{}
)

// freePort returns a loopback port that is free now, for a test to
// publish. It is drawn below the kernel's ephemeral range: a port from
// Listen(":0") comes from that range, which every outgoing connection of
// the parallel tests also uses, so between the Close here and the
// engine's bind another socket could take it (seen in CI: "port is
// already allocated"). No port is given twice in one test process.
func freePort(t *testing.T) int {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		fmt.Sscan(string(b), &lo)
	}
	const first = 10000
	portsMu.Lock()
	defer portsMu.Unlock()
	for range 1000 {
		p := first + rand.IntN(lo-first)
		if portsGiven[p] {
			continue
		}
		l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		l.Close()
		portsGiven[p] = true
		return p
	}
	t.Fatal("no free loopback port below the ephemeral range")
	return 0
}
