package runtime

import (
	"os"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var capByName = map[string]int{
	"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
	"CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
	"CAP_LINUX_IMMUTABLE": 9, "CAP_NET_BIND_SERVICE": 10, "CAP_NET_BROADCAST": 11,
	"CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_IPC_LOCK": 14, "CAP_IPC_OWNER": 15,
	"CAP_SYS_MODULE": 16, "CAP_SYS_RAWIO": 17, "CAP_SYS_CHROOT": 18, "CAP_SYS_PTRACE": 19,
	"CAP_SYS_PACCT": 20, "CAP_SYS_ADMIN": 21, "CAP_SYS_BOOT": 22, "CAP_SYS_NICE": 23,
	"CAP_SYS_RESOURCE": 24, "CAP_SYS_TIME": 25, "CAP_SYS_TTY_CONFIG": 26, "CAP_MKNOD": 27,
	"CAP_LEASE": 28, "CAP_AUDIT_WRITE": 29, "CAP_AUDIT_CONTROL": 30, "CAP_SETFCAP": 31,
	"CAP_MAC_OVERRIDE": 32, "CAP_MAC_ADMIN": 33, "CAP_SYSLOG": 34, "CAP_WAKE_ALARM": 35,
	"CAP_BLOCK_SUSPEND": 36, "CAP_AUDIT_READ": 37, "CAP_PERFMON": 38, "CAP_BPF": 39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// capSet is a capability bitmask.
type capSet uint64

// newCapSet turns names into a set. Names this kernel does not know are
// left out (like runc, which warns): a spec written for a newer kernel must
// still run.
func newCapSet(names []string, last int) capSet {
	var s capSet
	for _, n := range names {
		n = strings.ToUpper(n)
		if !strings.HasPrefix(n, "CAP_") {
			n = "CAP_" + n
		}
		if c, ok := capByName[n]; ok && c <= last {
			s |= 1 << uint(c)
		}
	}
	return s
}

func (s capSet) has(c int) bool { return s&(1<<uint(c)) != 0 }

// lastCap is the highest capability the running kernel knows (read once:
// the engine asks for every exec).
var lastCap = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			return n
		}
	}
	return unix.CAP_LAST_CAP
})

// caps holds the sets to apply; they are computed before the user switch so
// the sequence below does not read files in between.
type caps struct {
	last                                        int
	bounding, effective, permitted, inheritable capSet
	ambient                                     capSet
}

func newCaps(c *specs.LinuxCapabilities) *caps {
	if c == nil {
		return nil
	}
	last := lastCap()
	// A capability outside our own bounding set cannot be granted (capset
	// refuses the whole call): a privileged container on a host that runs
	// skiff without, say, CAP_SYS_RESOURCE gets all the others, as with
	// runc, rather than not starting.
	have := ownBounding()
	return &caps{
		last:        last,
		bounding:    newCapSet(c.Bounding, last) & have,
		effective:   newCapSet(c.Effective, last) & have,
		permitted:   newCapSet(c.Permitted, last) & have,
		inheritable: newCapSet(c.Inheritable, last) & have,
		ambient:     newCapSet(c.Ambient, last) & have,
	}
}

// ownBounding is this process's bounding set (all capabilities when it
// cannot be read). The engine, monitor and init share it.
var ownBounding = sync.OnceValue(func() capSet {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
				if n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err == nil {
					return capSet(n)
				}
			}
		}
	}
	return ^capSet(0)
})

// dropBounding removes from the bounding set every capability not in it.
// It needs CAP_SETPCAP, so it runs before the user switch and capset.
func (c *caps) dropBounding() error {
	for i := 0; i <= c.last; i++ {
		if c.bounding.has(i) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(i), 0, 0, 0); err != nil && err != unix.EINVAL {
			return err
		}
	}
	return nil
}

// apply sets the effective, permitted and inheritable sets of the calling
// thread, then raises the ambient ones.
func (c *caps) apply() error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	data[0].Effective, data[1].Effective = uint32(c.effective), uint32(c.effective>>32)
	data[0].Permitted, data[1].Permitted = uint32(c.permitted), uint32(c.permitted>>32)
	data[0].Inheritable, data[1].Inheritable = uint32(c.inheritable), uint32(c.inheritable>>32)
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return err
	}
	for i := 0; i <= c.last; i++ {
		// The kernel refuses an ambient capability that is not both
		// permitted and inheritable; like runc, leave it out.
		if c.ambient.has(i) {
			_ = unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(i), 0, 0)
		}
	}
	return nil
}
