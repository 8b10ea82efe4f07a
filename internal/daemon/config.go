// Package daemon assembles the engine and the API server into `skiff daemon`.
package daemon

// Config is the daemon's configuration: flags override the config file
// (/etc/skiff/daemon.json, Docker's key names where they apply).
type Config struct {
	Hosts         []string          `json:"hosts,omitempty"`     // unix:///run/skiff/skiff.sock
	DataRoot      string            `json:"data-root,omitempty"` // /var/lib/skiff
	ExecRoot      string            `json:"exec-root,omitempty"` // /run/skiff
	Debug         bool              `json:"debug,omitempty"`
	LogLevel      string            `json:"log-level,omitempty"`
	ShimPath      string            `json:"-"`                    // skiff-shim; default: next to the executable
	LogDriver     string            `json:"log-driver,omitempty"` // containers' default log driver
	LogOpts       map[string]string `json:"log-opts,omitempty"`   // containers' default log options
	CgroupParent  string            `json:"cgroup-parent,omitempty"`
	NetworkConfig                   // bridge, bip, fixed-cidr, mtu, nft-table, ip-forward

	InsecureRegistries []string `json:"insecure-registries,omitempty"` // host[:port] or CIDR
	RegistryMirrors    []string `json:"registry-mirrors,omitempty"`    // for docker.io names
	// CertsD is the root of the per-registry hosts configuration
	// (containerd's hosts.toml layout: CertsD/<host>/hosts.toml, Docker's
	// ca.crt, client.cert, client.key): --certs-d, default DefaultCertsD.
	CertsD string `json:"certs-d,omitempty"`

	// CgroupFavorDynMods (default true) lets the daemon set the cgroup mount
	// option favordynmods on hosts where containers are moved into cgroup
	// v1 hierarchies: see cgroups.FavorDynMods.
	CgroupFavorDynMods *bool `json:"cgroup-favordynmods,omitempty"`

	// DefaultIpcMode is the IPC mode of containers that ask for none:
	// "private" (Docker 20.10+'s default) or "shareable".
	DefaultIpcMode string `json:"default-ipc-mode,omitempty"`
	// CgroupnsMode is the cgroup namespace of containers that name none
	// ("host" or "private"; empty: private on cgroup v2, host on v1).
	CgroupnsMode string `json:"default-cgroupns-mode,omitempty"`

	// CRISocket is the unix socket of the Kubernetes CRI (package cri):
	// nil means DefaultCRISocket, "" turns the CRI off.
	CRISocket *string `json:"cri-socket,omitempty"`
	// CNIConfDir and CNIBinDir: the CRI's pod network (CNI) configuration
	// and plugins; Docker API containers do not use them.
	CNIConfDir string `json:"cni-conf-dir,omitempty"`
	CNIBinDir  string `json:"cni-bin-dir,omitempty"`
	// CRIStreamAddress is where the CRI streaming server (exec, attach,
	// port-forward URLs) listens, host:port; "" is 127.0.0.1:0 (a free
	// loopback port), as containerd's stream_server_address and port.
	CRIStreamAddress string `json:"cri-stream-address,omitempty"`
}

const (
	DefaultHost       = "unix:///run/skiff/skiff.sock"
	DefaultDataRoot   = "/var/lib/skiff"
	DefaultExecRoot   = "/run/skiff"
	DefaultConfigFile = "/etc/skiff/daemon.json"
	DefaultCRISocket  = "/run/skiff/cri.sock"
	DefaultCertsD     = "/etc/skiff/certs.d"
	DefaultCNIConfDir = "/etc/cni/net.d"
	DefaultCNIBinDir  = "/usr/lib/cni" // Debian's containernetworking-plugins
)
