package engine

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestValidateNamespaces(t *testing.T) {
	e := &Engine{reg: newRegistry()}
	donor := &Container{ID: strings.Repeat("ab", 32), Name: "donor", Config: &container.Config{}, HostConfig: &container.HostConfig{}}
	e.reg.add(donor)
	cases := []struct {
		name string
		cfg  container.Config
		hc   container.HostConfig
		want string // substring of the error; "" = valid
		// check looks at the completed host config of a valid one.
		check func(*container.HostConfig) string
	}{
		{name: "defaults", check: func(hc *container.HostConfig) string {
			if hc.IpcMode != "private" || len(hc.MaskedPaths) == 0 || len(hc.ReadonlyPaths) == 0 {
				return "IPC mode or masked paths not filled in"
			}
			return ""
		}},
		{name: "privileged records no masked paths", hc: container.HostConfig{Privileged: true}, check: func(hc *container.HostConfig) string {
			if hc.MaskedPaths != nil || hc.ReadonlyPaths != nil {
				return "masked paths set"
			}
			return ""
		}},
		{name: "unconfined keeps empty lists", hc: container.HostConfig{MaskedPaths: []string{}, ReadonlyPaths: []string{}}, check: func(hc *container.HostConfig) string {
			if hc.MaskedPaths == nil || len(hc.MaskedPaths) != 0 {
				return "empty masked paths replaced"
			}
			return ""
		}},
		{name: "bad ipc", hc: container.HostConfig{IpcMode: "bogus"}, want: "invalid IPC mode: bogus"},
		{name: "bad pid", hc: container.HostConfig{PidMode: "container:"}, want: "invalid PID mode: container:"},
		{name: "bad uts", hc: container.HostConfig{UTSMode: "private"}, want: "invalid UTS mode: private"},
		{name: "bad userns", hc: container.HostConfig{UsernsMode: "private"}, want: "invalid USER mode: private"},
		{name: "userns host", hc: container.HostConfig{UsernsMode: "host"}},
		{name: "uts host and hostname", cfg: container.Config{Hostname: "x"}, hc: container.HostConfig{UTSMode: "host"}, want: "conflicting options: hostname and the UTS mode"},
		{name: "missing pid donor", hc: container.HostConfig{PidMode: "container:nosuch"}, want: "No such container: nosuch"},
		{name: "donor by name", hc: container.HostConfig{PidMode: "container:donor", IpcMode: "container:donor", NetworkMode: "container:donor"}, check: func(hc *container.HostConfig) string {
			id := "container:" + donor.ID
			if string(hc.PidMode) != id || string(hc.IpcMode) != id || string(hc.NetworkMode) != id {
				return "not recorded by ID: " + string(hc.PidMode) + " " + string(hc.IpcMode) + " " + string(hc.NetworkMode)
			}
			return ""
		}},
		{name: "empty ipc container is left to start", hc: container.HostConfig{IpcMode: "container:"}},
		{name: "net container and hostname", cfg: container.Config{Hostname: "x"}, hc: container.HostConfig{NetworkMode: "container:donor"}, want: "conflicting options: hostname and the network mode"},
		{name: "net container and dns", hc: container.HostConfig{NetworkMode: "container:donor", DNS: nil, ExtraHosts: []string{"a:1.2.3.4"}}, want: "custom host-to-IP mapping"},
		{name: "net container and expose", cfg: container.Config{ExposedPorts: network.PortSet{network.MustParsePort("80/tcp"): {}}}, hc: container.HostConfig{NetworkMode: "container:donor"}, want: "port exposing"},
		{name: "host sysctl", hc: container.HostConfig{Sysctls: map[string]string{"vm.swappiness": "7"}}, want: `sysctl "vm.swappiness" is not in a separate kernel namespace`},
		{name: "kernel sysctl", hc: container.HostConfig{Sysctls: map[string]string{"kernel.pid_max": "7"}}, want: "is not in a separate kernel namespace"},
		{name: "namespaced sysctls", hc: container.HostConfig{Sysctls: map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.msg_max": "20", "kernel.domainname": "x"}}},
		{name: "net sysctl with net container", hc: container.HostConfig{NetworkMode: "container:donor", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}},
		{name: "net sysctl with host net", hc: container.HostConfig{NetworkMode: "host", Sysctls: map[string]string{"net.ipv4.ip_forward": "1"}}, want: "not allowed in host network namespace"},
		{name: "mqueue sysctl with host ipc", hc: container.HostConfig{IpcMode: "host", Sysctls: map[string]string{"fs.mqueue.queues_max": "1"}}, want: "is not allowed in the hosts ipc namespace"},
		{name: "ipc sysctl with ipc container", hc: container.HostConfig{IpcMode: "container:donor", Sysctls: map[string]string{"kernel.shmmax": "1"}}},
		{name: "hostname sysctl", hc: container.HostConfig{Sysctls: map[string]string{"kernel.hostname": "x"}}, want: `conflicts with the OCI "hostname" field`},
		{name: "domainname with uts host", cfg: container.Config{Domainname: "ex.org"}, hc: container.HostConfig{UTSMode: "host"}, want: `sysctl "kernel.domainname" is not in a separate kernel namespace`},
		{name: "user sysctl", hc: container.HostConfig{Sysctls: map[string]string{"user.max_user_namespaces": "1"}}, want: "setting ucounts without a user namespace not allowed"},
	}
	for _, c := range cases {
		err := e.validateNamespaces(&c.cfg, &c.hc)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: unexpected error %v", c.name, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: error %v, want %q", c.name, err, c.want)
		case c.want != "" && !errdefs.IsInvalid(err):
			t.Errorf("%s: error kind %v, want invalid", c.name, errdefs.KindOf(err))
		case c.want == "" && c.check != nil:
			if msg := c.check(&c.hc); msg != "" {
				t.Errorf("%s: %s", c.name, msg)
			}
		}
	}
}

func TestDefaultIpcModeFromConfig(t *testing.T) {
	e := &Engine{reg: newRegistry(), cfg: Config{DefaultIpcMode: "shareable"}}
	hc := container.HostConfig{}
	if err := e.validateNamespaces(&container.Config{}, &hc); err != nil || hc.IpcMode != "shareable" {
		t.Fatalf("IPC mode %q, err %v", hc.IpcMode, err)
	}
}
