package network

import (
	"encoding/binary"
	"fmt"
	"net"

	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

var bucketIPAM = []byte("network.ipam.v1")

// nextKey holds the last address handed out in a pool, so addresses are
// reused as late as possible (as Docker does). Lease keys are 4 bytes.
var nextKey = []byte("_next")

// IPAM hands out IPv4 addresses from per-network pools. Leases live in bbolt
// (one sub-bucket per pool, address → owner), so they survive restarts and
// every allocation is one serialized transaction: never a duplicate.
type IPAM struct{ db *bolt.DB }

// NewIPAM opens the IPAM buckets in db.
func NewIPAM(db *bolt.DB) (*IPAM, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketIPAM)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("init ipam bucket: %w", err)
	}
	return &IPAM{db: db}, nil
}

// Pool describes where addresses of one network come from.
type Pool struct {
	ID      string
	Subnet  *net.IPNet
	Range   *net.IPNet // nil: the whole subnet
	Gateway net.IP
}

func ip2u(ip net.IP) uint32 { return binary.BigEndian.Uint32(ip.To4()) }
func u2ip(u uint32) net.IP {
	ip := make(net.IP, 4)
	binary.BigEndian.PutUint32(ip, u)
	return ip
}

func ipRange(n *net.IPNet) (first, last uint32) {
	base := ip2u(n.IP.Mask(n.Mask))
	ones, bits := n.Mask.Size()
	size := uint32(1) << uint(bits-ones)
	return base, base + size - 1
}

// Allocate leases an address of p to owner: want when given (Conflict if
// taken), else the next free one. An owner that already holds a lease gets
// it back.
func (a *IPAM) Allocate(p Pool, owner string, want net.IP) (net.IP, error) {
	var out net.IP
	err := a.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketIPAM).CreateBucketIfNotExists([]byte(p.ID))
		if err != nil {
			return err
		}
		var held net.IP
		b.ForEach(func(k, v []byte) error {
			if len(k) == 4 && string(v) == owner {
				held = net.IP(append([]byte{}, k...))
			}
			return nil
		})
		if held != nil && (want == nil || held.Equal(want)) {
			out = held
			return nil
		}
		sFirst, sLast := ipRange(p.Subnet)
		// Network and broadcast addresses are never handed out.
		sFirst, sLast = sFirst+1, sLast-1
		first, last := sFirst, sLast
		if p.Range != nil {
			first, last = ipRange(p.Range)
			first, last = max(first, sFirst), min(last, sLast)
		}
		gw := uint32(0)
		if p.Gateway != nil {
			gw = ip2u(p.Gateway)
		}
		if want != nil {
			w := ip2u(want)
			if w < sFirst || w > sLast || w == gw {
				return errdefs.Invalid("invalid address %s: it does not belong to the network's usable addresses", want)
			}
			if b.Get(want.To4()) != nil {
				return errdefs.Conflict("Address already in use")
			}
			out = want.To4()
			return b.Put(out, []byte(owner))
		}
		start := first
		if v := b.Get(nextKey); len(v) == 4 {
			if n := binary.BigEndian.Uint32(v) + 1; n >= first && n <= last {
				start = n
			}
		}
		n := uint64(last-first) + 1
		for i := uint64(0); i < n; i++ {
			c := first + uint32((uint64(start-first)+i)%n)
			if c == gw {
				continue
			}
			k := u2ip(c)
			if b.Get(k) == nil {
				out = k
				if err := b.Put(k, []byte(owner)); err != nil {
					return err
				}
				return b.Put(nextKey, k)
			}
		}
		return errdefs.Unavailable("no available IPv4 addresses on this network's address pools: %s", p.Subnet)
	})
	return out, err
}

// Release drops every lease owner holds in pool id.
func (a *IPAM) Release(id, owner string) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIPAM).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		var del [][]byte
		b.ForEach(func(k, v []byte) error {
			if len(k) == 4 && string(v) == owner {
				del = append(del, append([]byte{}, k...))
			}
			return nil
		})
		for _, k := range del {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// DropPool forgets a pool and all its leases.
func (a *IPAM) DropPool(id string) error {
	return a.db.Update(func(tx *bolt.Tx) error {
		err := tx.Bucket(bucketIPAM).DeleteBucket([]byte(id))
		if err == bolt.ErrBucketNotFound {
			return nil
		}
		return err
	})
}

// Leases returns address → owner for pool id.
func (a *IPAM) Leases(id string) (map[string]string, error) {
	out := map[string]string{}
	err := a.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIPAM).Bucket([]byte(id))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			if len(k) == 4 {
				out[net.IP(k).String()] = string(v)
			}
			return nil
		})
	})
	return out, err
}
