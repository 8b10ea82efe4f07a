package cri

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/containernetworking/cni/libcni"
	current "github.com/containernetworking/cni/pkg/types/100"
	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Pod networking through CNI, as containerd and CRI-O do it: libcni runs
// the plugins of the first *.conflist (by name) in CNIConfDir from
// CNIBinDir on the pause process's network namespace, pinned by a bind
// mount under the exec root so that the teardown (CNI DEL) still finds it
// after the pause process is gone. Docker API containers keep skiff's own
// bridge; without a CNI configuration a pod gets loopback only and Status
// says the network is not ready.

// podNet is what a sandbox's network setup left, kept in the state dir
// (a file per sandbox) so that teardown works after an engine restart and
// with the configuration it was set up with.
type podNet struct {
	NetNS string `json:"netns"`
	IP    string `json:"ip,omitempty"`
	Conf  []byte `json:"conf"` // the conflist's bytes
	// Ports are the pod's port mappings: portmap's DEL removes its rules
	// only when it is given them again.
	Ports []*runtimeapi.PortMapping `json:"ports,omitempty"`
}

// cniConfList loads the network configuration: nil without one.
func (s *Server) cniConfList() (*libcni.NetworkConfigList, error) {
	if s.opts.CNIConfDir == "" {
		return nil, nil
	}
	files, err := libcni.ConfFiles(s.opts.CNIConfDir, []string{".conflist"})
	if err != nil || len(files) == 0 {
		return nil, err
	}
	slices.Sort(files)
	b, err := os.ReadFile(files[0])
	if err != nil {
		return nil, err
	}
	list, err := libcni.NetworkConfFromBytes(b)
	if err != nil {
		return nil, fmt.Errorf("CNI config %s: %w", files[0], err)
	}
	return list, nil
}

func (s *Server) cni() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{s.opts.CNIBinDir}, filepath.Join(s.opts.StateDir, "cni-cache"), nil)
}

func (s *Server) podNetPath(id string) string {
	return filepath.Join(s.opts.StateDir, "podnet", id+".json")
}

func (s *Server) netnsPath(id string) string { return filepath.Join(s.opts.NetNSDir, id) }

// runtimeConf is the CNI call for sandbox id.
func runtimeConf(id, netns string, md *runtimeapi.PodSandboxMetadata, ports []*runtimeapi.PortMapping) *libcni.RuntimeConf {
	rt := &libcni.RuntimeConf{
		ContainerID: id, NetNS: netns, IfName: "eth0",
		Args: [][2]string{{"IgnoreUnknown", "1"}, {"K8S_POD_NAMESPACE", md.GetNamespace()},
			{"K8S_POD_NAME", md.GetName()}, {"K8S_POD_INFRA_CONTAINER_ID", id}, {"K8S_POD_UID", md.GetUid()}},
	}
	if len(ports) > 0 {
		var pm []map[string]any
		for _, p := range ports {
			if p.HostPort <= 0 {
				continue
			}
			proto := "tcp"
			switch p.Protocol {
			case runtimeapi.Protocol_UDP:
				proto = "udp"
			case runtimeapi.Protocol_SCTP:
				proto = "sctp"
			}
			pm = append(pm, map[string]any{"hostPort": p.HostPort, "containerPort": p.ContainerPort, "protocol": proto, "hostIP": p.HostIp})
		}
		if len(pm) > 0 {
			rt.CapabilityArgs = map[string]any{"portMappings": pm}
		}
	}
	return rt
}

// setupPodNetwork pins the network namespace of the pause process (pid)
// and runs CNI ADD on it; on failure it leaves nothing (CNI DEL, unpin).
// Without a CNI configuration the pod has loopback only: ("", nil).
func (s *Server) setupPodNetwork(ctx context.Context, id string, pid int, md *runtimeapi.PodSandboxMetadata, ports []*runtimeapi.PortMapping) (string, error) {
	list, err := s.cniConfList()
	if err != nil {
		return "", errdefs.System("pod network: %v", err)
	}
	if list == nil {
		if hostPorts(ports) > 0 {
			return "", errdefs.Invalid("pod network: port mappings need a CNI network configuration in %s", s.opts.CNIConfDir)
		}
		return "", nil
	}
	rt := runtimeConf(id, "", md, ports)
	if rt.CapabilityArgs != nil && !hasCapability(list, "portMappings") {
		// libcni would drop them silently.
		return "", errdefs.Invalid("pod network: port mappings need a plugin with the portMappings capability (portmap) in CNI network %s", list.Name)
	}
	nsPath := s.netnsPath(id)
	rt.NetNS = nsPath
	if err := pinNetNS(pid, nsPath); err != nil {
		return "", err
	}
	res, err := s.cni().AddNetworkList(ctx, list, rt)
	if err != nil {
		s.undoAdd(context.WithoutCancel(ctx), list, rt)
		unpinNetNS(nsPath)
		return "", errdefs.System("pod network: CNI ADD of %s: %v", list.Name, err)
	}
	ip := ""
	if r, err := current.NewResultFromResult(res); err == nil && len(r.IPs) > 0 {
		ip = r.IPs[0].Address.IP.String()
	}
	if err := writePodNet(s.podNetPath(id), podNet{NetNS: nsPath, IP: ip, Conf: list.Bytes, Ports: ports}); err != nil {
		s.undoAdd(context.WithoutCancel(ctx), list, rt)
		unpinNetNS(nsPath)
		return "", err
	}
	return ip, nil
}

// undoAdd releases what a failed ADD left: CNI DEL of the list, and when
// that fails (libcni stops at the first plugin whose DEL fails, e.g. the
// one that failed ADD, before it reaches the bridge and IPAM that
// succeeded), DEL of each plugin alone, the last first, errors ignored.
func (s *Server) undoAdd(ctx context.Context, list *libcni.NetworkConfigList, rt *libcni.RuntimeConf) {
	err := s.cni().DelNetworkList(ctx, list, rt)
	if err == nil {
		return
	}
	s.log.Debug("pod network: CNI DEL after a failed ADD", "network", list.Name, "err", err)
	for i := len(list.Plugins) - 1; i >= 0; i-- {
		one := *list
		one.Plugins = list.Plugins[i : i+1]
		if err := s.cni().DelNetworkList(ctx, &one, rt); err != nil {
			s.log.Debug("pod network: CNI DEL of one plugin", "network", list.Name, "plugin", list.Plugins[i].Network.Type, "err", err)
		}
	}
}

// teardownPodNetwork runs CNI DEL with the configuration of the setup and
// unpins the namespace. A sandbox without network state is done.
func (s *Server) teardownPodNetwork(ctx context.Context, id string, md *runtimeapi.PodSandboxMetadata) error {
	pn, err := readPodNet(s.podNetPath(id))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	list, err := libcni.NetworkConfFromBytes(pn.Conf)
	if err != nil {
		return errdefs.System("pod network: stored CNI config: %v", err)
	}
	netns := pn.NetNS
	if _, err := os.Stat(netns); err != nil {
		netns = "" // the plugins still release what they hold on the host
	}
	if err := s.cni().DelNetworkList(ctx, list, runtimeConf(id, netns, md, pn.Ports)); err != nil {
		return errdefs.System("pod network: CNI DEL of %s: %v", list.Name, err)
	}
	if err := unpinNetNS(pn.NetNS); err != nil {
		return err
	}
	return os.Remove(s.podNetPath(id))
}

var gcMu sync.Mutex

// gcPodNetworks tears down the network of sandboxes that are gone without
// a teardown (removed through the Docker API, say, or lost in a crash
// between the engine's remove and the state file's): their IP allocations,
// veths, portmap rules and pins would otherwise stay for good.
func (s *Server) gcPodNetworks(ctx context.Context) {
	if !gcMu.TryLock() {
		return // another call is at it
	}
	defer gcMu.Unlock()
	ents, err := os.ReadDir(filepath.Dir(s.podNetPath("x")))
	if err != nil {
		return
	}
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if _, err := s.b.ContainerInspect(ctx, id, false); !errdefs.IsNotFound(err) {
			continue
		}
		if err := s.teardownPodNetwork(ctx, id, &runtimeapi.PodSandboxMetadata{}); err != nil {
			s.log.Warn("pod network of a removed sandbox", "sandbox", id, "err", err)
			continue
		}
		s.log.Info("tore down the network of a removed sandbox", "sandbox", id)
	}
}

// podIP is the sandbox's IP from its network state ("" without one).
func (s *Server) podIP(id string) string {
	pn, err := readPodNet(s.podNetPath(id))
	if err != nil {
		return ""
	}
	return pn.IP
}

func writePodNet(path string, pn podNet) error {
	b, _ := json.Marshal(pn)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pod network state: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("pod network state: %w", err)
	}
	return os.Rename(tmp, path)
}

func readPodNet(path string) (podNet, error) {
	var pn podNet
	b, err := os.ReadFile(path)
	if err != nil {
		return pn, err
	}
	return pn, json.Unmarshal(b, &pn)
}

// pinNetNS bind-mounts the network namespace of pid at path.
func pinNetNS(pid int, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("pin network namespace: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o400)
	if err != nil {
		return fmt.Errorf("pin network namespace: %w", err)
	}
	f.Close()
	if err := unix.Mount("/proc/"+strconv.Itoa(pid)+"/ns/net", path, "", unix.MS_BIND, ""); err != nil {
		os.Remove(path)
		return fmt.Errorf("pin network namespace of %d: %w", pid, err)
	}
	return nil
}

// unpinNetNS undoes pinNetNS; a missing pin is done.
func unpinNetNS(path string) error {
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unpin network namespace %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("unpin network namespace: %w", err)
	}
	return nil
}

// hasCapability: a plugin of list declares capability cap.
func hasCapability(list *libcni.NetworkConfigList, cap string) bool {
	for _, p := range list.Plugins {
		if p.Network != nil && p.Network.Capabilities[cap] {
			return true
		}
	}
	return false
}

// hostPorts counts the mappings that publish a port on the host (the
// kubelet also sends a pod's container ports without one).
func hostPorts(ports []*runtimeapi.PortMapping) int {
	n := 0
	for _, p := range ports {
		if p.HostPort > 0 {
			n++
		}
	}
	return n
}
