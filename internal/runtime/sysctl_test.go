package runtime

import (
	"testing"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestCheckSysctl(t *testing.T) {
	all := SysctlScope{IPC: true, Net: true, UTS: true}
	cases := []struct {
		key  string
		own  SysctlScope
		want string // the error; "" = allowed
	}{
		{"kernel.msgmax", all, ""},
		{"kernel.shm_rmid_forced", all, ""},
		{"fs.mqueue.msg_max", all, ""},
		{"net.ipv4.ip_forward", all, ""},
		{"net/ipv4/conf/eth0.100/forwarding", all, ""},
		{"kernel.domainname", all, ""},
		{"kernel.shmmax", SysctlScope{Net: true, UTS: true}, `sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace`},
		{"fs.mqueue.queues_max", SysctlScope{Net: true}, `sysctl "fs.mqueue.queues_max" is not allowed in the hosts ipc namespace`},
		{"net.core.somaxconn", SysctlScope{IPC: true}, `sysctl "net.core.somaxconn" not allowed in host network namespace`},
		{"kernel.domainname", SysctlScope{IPC: true, Net: true}, `sysctl "kernel.domainname" is not in a separate kernel namespace`},
		{"kernel.hostname", all, `sysctl "kernel.hostname" is not allowed as it conflicts with the OCI "hostname" field`},
		{"vm.swappiness", all, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"vm/swappiness", all, `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{"kernel.pid_max", all, `sysctl "kernel.pid_max" is not in a separate kernel namespace`},
		{"kernel.msgmax2", all, `sysctl "kernel.msgmax2" is not in a separate kernel namespace`},
		{"user.max_user_namespaces", all, "setting ucounts without a user namespace not allowed: user.max_user_namespaces"},
		{"net..ipv4", all, `invalid sysctl "net..ipv4"`},
		{"net.ipv4.conf.all.", all, `invalid sysctl "net.ipv4.conf.all."`},
		{"net/../vm/swappiness", all, `invalid sysctl "net/../vm/swappiness"`},
		{"", all, `invalid sysctl ""`},
	}
	for _, c := range cases {
		err := CheckSysctl(c.key, c.own)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%q: %v", c.key, err)
		case c.want != "" && (err == nil || err.Error() != c.want || !errdefs.IsInvalid(err)):
			t.Errorf("%q: %v, want %q", c.key, err, c.want)
		}
	}
}

func TestSysctlPath(t *testing.T) {
	for key, want := range map[string]string{
		"net.ipv4.ip_forward":               "/proc/sys/net/ipv4/ip_forward",
		"net/ipv4/conf/eth0.100/forwarding": "/proc/sys/net/ipv4/conf/eth0.100/forwarding",
		"kernel.shmmax":                     "/proc/sys/kernel/shmmax",
	} {
		if got, err := sysctlPath(NormalizeSysctl(key)); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", key, got, err, want)
		}
	}
}

func TestAdditionalGroups(t *testing.T) {
	groups := []groupEntry{{name: "staff", gid: 50}, {name: "1000", gid: 7}, {name: "audio", gid: 29}}
	got, err := additionalGroups([]string{"staff", "123", "29", "1000", "staff"}, groups)
	if err != nil || len(got) != 4 || got[0] != 50 || got[1] != 123 || got[2] != 29 || got[3] != 7 {
		t.Errorf("groups %v %v", got, err)
	}
	if _, err := additionalGroups([]string{"staffx"}, groups); err == nil || err.Error() != "Unable to find group staffx: no matching entries in group file" {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := additionalGroups([]string{"4294967295"}, nil); err == nil {
		t.Errorf("gid out of range accepted")
	}
}
