package network

import (
	"net"
	"path/filepath"
	"sync"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func testIPAM(t *testing.T) *IPAM {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := NewIPAM(db)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func pool(t *testing.T, subnet, rng string) Pool {
	_, sub, _ := net.ParseCIDR(subnet)
	p := Pool{ID: "n1", Subnet: sub, Gateway: u2ip(ip2u(sub.IP) + 1)}
	if rng != "" {
		_, p.Range, _ = net.ParseCIDR(rng)
	}
	return p
}

func TestIPAMNeverDuplicates(t *testing.T) {
	a := testIPAM(t)
	p := pool(t, "10.9.0.0/24", "")
	var mu sync.Mutex
	seen := map[string]string{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := string(rune('A' + i))
			ip, err := a.Allocate(p, owner, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if o, dup := seen[ip.String()]; dup {
				t.Errorf("%s given to %s and %s", ip, o, owner)
			}
			if ip.Equal(p.Gateway) || ip.String() == "10.9.0.0" || ip.String() == "10.9.0.255" {
				t.Errorf("reserved address %s handed out", ip)
			}
			seen[ip.String()] = owner
		}()
	}
	wg.Wait()
	if len(seen) != 50 {
		t.Fatalf("%d addresses", len(seen))
	}
}

func TestIPAMRequestRangeRelease(t *testing.T) {
	a := testIPAM(t)
	p := pool(t, "10.9.0.0/24", "10.9.0.128/30")
	want := net.ParseIP("10.9.0.7")
	if ip, err := a.Allocate(p, "x", want); err != nil || !ip.Equal(want) {
		t.Fatalf("want %s: %v %v", want, ip, err)
	}
	if _, err := a.Allocate(p, "y", want); !errdefs.IsConflict(err) {
		t.Fatalf("taken address: %v", err)
	}
	// The range holds 4 addresses (.128-.131): 4 owners fit, a 5th doesn't.
	for _, o := range []string{"a", "b", "c", "d"} {
		ip, err := a.Allocate(p, o, nil)
		if err != nil || ip[len(ip)-1] < 128 || ip[len(ip)-1] > 131 {
			t.Fatalf("range allocation %v %v", ip, err)
		}
	}
	if _, err := a.Allocate(p, "e", nil); err == nil {
		t.Fatal("allocated beyond the range")
	}
	if err := a.Release(p.ID, "a"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Allocate(p, "e", nil); err != nil {
		t.Fatalf("after release: %v", err)
	}
	leases, _ := a.Leases(p.ID)
	if len(leases) != 5 || leases["10.9.0.7"] != "x" {
		t.Fatalf("leases %v", leases)
	}
}
