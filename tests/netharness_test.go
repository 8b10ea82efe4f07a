package tests

import (
	"fmt"
	"hash/fnv"
	"net"
	"os/exec"
	"strings"
	"testing"
)

// netNames derives a test daemon's own bridge, subnet and nftables table
// from its (unique) root, so parallel daemons never share them.
func netNames(root string) (bridge, bip, table string) {
	h := fnv.New32a()
	h.Write([]byte(root))
	v := h.Sum32()
	bridge = fmt.Sprintf("skt%08x", v) // 11 bytes
	bip = fmt.Sprintf("10.%d.%d.1/24", 100+v%100, (v>>8)%256)
	table = fmt.Sprintf("skiff_e2e_%08x", v)
	return
}

func netConfigFor(root string) string {
	br, bip, table := netNames(root)
	// ip-forward stays as the host has it: tests only talk over loopback
	// and skiff's own bridges.
	return fmt.Sprintf(`"bridge": %q, "bip": %q, "nft-table": %q, "ip-forward": false`, br, bip, table)
}

// checkNoNetLeaks fails the test if the daemon's bridges or nftables table
// outlive it.
func checkNoNetLeaks(t *testing.T, d *daemon) {
	t.Helper()
	br, _, table := netNames(d.root)
	if _, err := net.InterfaceByName(br); err == nil {
		t.Errorf("leftover bridge %s", br)
	}
	out, _ := exec.Command("nft", "list", "tables").Output()
	if strings.Contains(string(out), table) {
		t.Errorf("leftover nftables table %s", table)
	}
}
