package cli

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/docker/go-connections/nat"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// containerOptions are the flags of `create` and `run` that end up in the
// container's Config, HostConfig and NetworkingConfig (docker/cli's
// containerOptions).
type containerOptions struct {
	attach             opts.ListOpts
	volumes            opts.ListOpts
	tmpfs              opts.ListOpts
	mounts             opts.MountOpt
	links              opts.ListOpts
	aliases            opts.ListOpts
	linkLocalIPs       opts.ListOpts
	env                opts.ListOpts
	labels             opts.ListOpts
	deviceCgroupRules  opts.ListOpts
	devices            opts.ListOpts
	ulimits            *opts.UlimitOpt
	sysctls            *opts.MapOpts
	publish            opts.ListOpts
	expose             opts.ListOpts
	dns                opts.ListOpts
	dnsSearch          opts.ListOpts
	dnsOptions         opts.ListOpts
	extraHosts         opts.ListOpts
	volumesFrom        opts.ListOpts
	envFile            opts.ListOpts
	capAdd             opts.ListOpts
	capDrop            opts.ListOpts
	groupAdd           opts.ListOpts
	securityOpt        opts.ListOpts
	storageOpt         opts.ListOpts
	labelsFile         opts.ListOpts
	loggingOpts        opts.ListOpts
	extra              *extraRunOptions // run_extra_opts.go
	privileged         bool
	pidMode            string
	utsMode            string
	usernsMode         string
	cgroupnsMode       string
	publishAll         bool
	stdin              bool
	tty                bool
	oomKillDisable     bool
	oomScoreAdj        int
	containerIDFile    string
	entrypoint         string
	hostname           string
	domainname         string
	memory             opts.MemBytes
	memoryReservation  opts.MemBytes
	memorySwap         opts.MemSwapBytes
	user               string
	workingDir         string
	cpuShares          int64
	cpuPeriod          int64
	cpuRealtimePeriod  int64
	cpuRealtimeRuntime int64
	cpuQuota           int64
	cpus               opts.NanoCPUs
	cpusetCpus         string
	cpusetMems         string
	blkioWeight        uint16
	swappiness         int64
	netMode            opts.NetworkOpt
	macAddress         string
	ipv4Address        net.IP
	ipv6Address        net.IP
	ipcMode            string
	pidsLimit          int64
	restartPolicy      string
	readonlyRootfs     bool
	loggingDriver      string
	cgroupParent       string
	volumeDriver       string
	stopSignal         string
	stopTimeout        int
	shmSize            opts.MemBytes
	noHealthcheck      bool
	healthCmd          string
	healthInterval     time.Duration
	healthTimeout      time.Duration
	healthStartPeriod  time.Duration
	healthStartInterv  time.Duration
	healthRetries      int
	runtime            string
	autoRemove         bool
	init               bool
	annotations        *opts.MapOpts
	deviceOpts         *deviceOptions // device_opts.go

	Image string
	Args  []string
}

// addFlags registers the container flags on flags (docker/cli's addFlags).
func addFlags(flags *pflag.FlagSet) *containerOptions {
	c := &containerOptions{
		aliases:           opts.NewListOpts(nil),
		attach:            opts.NewListOpts(validateAttach),
		capAdd:            opts.NewListOpts(nil),
		capDrop:           opts.NewListOpts(nil),
		dns:               opts.NewListOpts(opts.ValidateIPAddress),
		dnsOptions:        opts.NewListOpts(nil),
		dnsSearch:         opts.NewListOpts(opts.ValidateDNSSearch),
		deviceCgroupRules: opts.NewListOpts(validateDeviceCgroupRule),
		devices:           opts.NewListOpts(nil),
		env:               opts.NewListOpts(opts.ValidateEnv),
		envFile:           opts.NewListOpts(nil),
		expose:            opts.NewListOpts(nil),
		extraHosts:        opts.NewListOpts(opts.ValidateExtraHost),
		groupAdd:          opts.NewListOpts(nil),
		labels:            opts.NewListOpts(opts.ValidateLabel),
		labelsFile:        opts.NewListOpts(nil),
		linkLocalIPs:      opts.NewListOpts(nil),
		links:             opts.NewListOpts(opts.ValidateLink),
		loggingOpts:       opts.NewListOpts(nil),
		publish:           opts.NewListOpts(nil),
		securityOpt:       opts.NewListOpts(nil),
		storageOpt:        opts.NewListOpts(nil),
		sysctls:           opts.NewMapOpts(opts.ValidateSysctl),
		tmpfs:             opts.NewListOpts(nil),
		ulimits:           opts.NewUlimitOpt(),
		volumes:           opts.NewListOpts(nil),
		volumesFrom:       opts.NewListOpts(nil),
		annotations:       opts.NewMapOpts(nil),
	}
	c.extra = addExtraRunFlags(flags)

	// General purpose
	flags.VarP(&c.attach, "attach", "a", "Attach to STDIN, STDOUT or STDERR")
	flags.Var(&c.deviceCgroupRules, "device-cgroup-rule", "Add a rule to the cgroup allowed devices list")
	flags.Var(&c.devices, "device", "Add a host device to the container")
	flags.VarP(&c.env, "env", "e", "Set environment variables")
	flags.Var(&c.envFile, "env-file", "Read in a file of environment variables")
	flags.StringVar(&c.entrypoint, "entrypoint", "", "Overwrite the default ENTRYPOINT of the image")
	flags.Var(&c.groupAdd, "group-add", "Add additional groups to join")
	flags.StringVarP(&c.hostname, "hostname", "h", "", "Container host name")
	flags.StringVar(&c.domainname, "domainname", "", "Container NIS domain name")
	flags.BoolVarP(&c.stdin, "interactive", "i", false, "Keep STDIN open even if not attached")
	flags.VarP(&c.labels, "label", "l", "Set meta data on a container")
	flags.Var(&c.labelsFile, "label-file", "Read in a line delimited file of labels")
	flags.BoolVar(&c.readonlyRootfs, "read-only", false, "Mount the container's root filesystem as read only")
	flags.StringVar(&c.restartPolicy, "restart", string(container.RestartPolicyDisabled), "Restart policy to apply when a container exits")
	flags.StringVar(&c.stopSignal, "stop-signal", "", "Signal to stop the container")
	flags.IntVar(&c.stopTimeout, "stop-timeout", 0, "Timeout (in seconds) to stop a container")
	flags.Var(c.sysctls, "sysctl", "Sysctl options")
	flags.BoolVarP(&c.tty, "tty", "t", false, "Allocate a pseudo-TTY")
	flags.Var(c.ulimits, "ulimit", "Ulimit options")
	flags.StringVarP(&c.user, "user", "u", "", "Username or UID (format: <name|uid>[:<group|gid>])")
	flags.StringVarP(&c.workingDir, "workdir", "w", "", "Working directory inside the container")
	flags.BoolVar(&c.autoRemove, "rm", false, "Automatically remove the container and its associated anonymous volumes when it exits")

	// Security
	flags.Var(&c.capAdd, "cap-add", "Add Linux capabilities")
	flags.Var(&c.capDrop, "cap-drop", "Drop Linux capabilities")
	flags.BoolVar(&c.privileged, "privileged", false, "Give extended privileges to this container")
	flags.Var(&c.securityOpt, "security-opt", "Security Options")
	flags.StringVar(&c.usernsMode, "userns", "", "User namespace to use")
	flags.StringVar(&c.cgroupnsMode, "cgroupns", "", "Cgroup namespace to use (host|private)")

	// Network and ports
	flags.Var(&c.extraHosts, "add-host", "Add a custom host-to-IP mapping (host:ip)")
	flags.Var(&c.dns, "dns", "Set custom DNS servers")
	flags.Var(&c.dnsOptions, "dns-opt", "Set DNS options")
	flags.Var(&c.dnsOptions, "dns-option", "Set DNS options")
	_ = flags.MarkHidden("dns-opt")
	flags.Var(&c.dnsSearch, "dns-search", "Set custom DNS search domains")
	flags.Var(&c.expose, "expose", "Expose a port or a range of ports")
	flags.IPVar(&c.ipv4Address, "ip", nil, "IPv4 address (e.g., 172.30.100.104)")
	flags.IPVar(&c.ipv6Address, "ip6", nil, "IPv6 address (e.g., 2001:db8::33)")
	flags.Var(&c.links, "link", "Add link to another container")
	flags.Var(&c.linkLocalIPs, "link-local-ip", "Container IPv4/IPv6 link-local addresses")
	flags.StringVar(&c.macAddress, "mac-address", "", "Container MAC address (e.g., 92:d0:c6:0a:29:33)")
	flags.VarP(&c.publish, "publish", "p", "Publish a container's port(s) to the host")
	flags.BoolVarP(&c.publishAll, "publish-all", "P", false, "Publish all exposed ports to random ports")
	flags.Var(&c.netMode, "net", "Connect a container to a network")
	flags.Var(&c.netMode, "network", "Connect a container to a network")
	_ = flags.MarkHidden("net")
	flags.Var(&c.aliases, "net-alias", "Add network-scoped alias for the container")
	flags.Var(&c.aliases, "network-alias", "Add network-scoped alias for the container")
	_ = flags.MarkHidden("net-alias")

	// Logging and storage
	flags.StringVar(&c.loggingDriver, "log-driver", "", "Logging driver for the container")
	flags.StringVar(&c.volumeDriver, "volume-driver", "", "Optional volume driver for the container")
	flags.Var(&c.loggingOpts, "log-opt", "Log driver options")
	flags.Var(&c.storageOpt, "storage-opt", "Storage driver options for the container")
	flags.Var(&c.tmpfs, "tmpfs", "Mount a tmpfs directory")
	flags.Var(&c.volumesFrom, "volumes-from", "Mount volumes from the specified container(s)")
	flags.VarP(&c.volumes, "volume", "v", "Bind mount a volume")
	flags.Var(&c.mounts, "mount", "Attach a filesystem mount to the container")

	// Health checks
	flags.StringVar(&c.healthCmd, "health-cmd", "", "Command to run to check health")
	flags.DurationVar(&c.healthInterval, "health-interval", 0, "Time between running the check (ms|s|m|h) (default 0s)")
	flags.IntVar(&c.healthRetries, "health-retries", 0, "Consecutive failures needed to report unhealthy")
	flags.DurationVar(&c.healthTimeout, "health-timeout", 0, "Maximum time to allow one check to run (ms|s|m|h) (default 0s)")
	flags.DurationVar(&c.healthStartPeriod, "health-start-period", 0, "Start period for the container to initialize before starting health-retries countdown (ms|s|m|h) (default 0s)")
	flags.DurationVar(&c.healthStartInterv, "health-start-interval", 0, "Time between running the check during the start period (ms|s|m|h) (default 0s)")
	flags.BoolVar(&c.noHealthcheck, "no-healthcheck", false, "Disable any container-specified HEALTHCHECK")

	// Resources
	flags.Uint16Var(&c.blkioWeight, "blkio-weight", 0, "Block IO (relative weight), between 10 and 1000, or 0 to disable (default 0)")
	flags.StringVar(&c.containerIDFile, "cidfile", "", "Write the container ID to the file")
	flags.StringVar(&c.cpusetCpus, "cpuset-cpus", "", "CPUs in which to allow execution (0-3, 0,1)")
	flags.StringVar(&c.cpusetMems, "cpuset-mems", "", "MEMs in which to allow execution (0-3, 0,1)")
	flags.Int64Var(&c.cpuPeriod, "cpu-period", 0, "Limit CPU CFS (Completely Fair Scheduler) period")
	flags.Int64Var(&c.cpuQuota, "cpu-quota", 0, "Limit CPU CFS (Completely Fair Scheduler) quota")
	flags.Int64Var(&c.cpuRealtimePeriod, "cpu-rt-period", 0, "Limit CPU real-time period in microseconds")
	flags.Int64Var(&c.cpuRealtimeRuntime, "cpu-rt-runtime", 0, "Limit CPU real-time runtime in microseconds")
	flags.Int64VarP(&c.cpuShares, "cpu-shares", "c", 0, "CPU shares (relative weight)")
	flags.Var(&c.cpus, "cpus", "Number of CPUs")
	flags.VarP(&c.memory, "memory", "m", "Memory limit")
	flags.Var(&c.memoryReservation, "memory-reservation", "Memory soft limit")
	flags.Var(&c.memorySwap, "memory-swap", "Swap limit equal to memory plus swap: '-1' to enable unlimited swap")
	flags.Int64Var(&c.swappiness, "memory-swappiness", -1, "Tune container memory swappiness (0 to 100)")
	flags.BoolVar(&c.oomKillDisable, "oom-kill-disable", false, "Disable OOM Killer")
	flags.IntVar(&c.oomScoreAdj, "oom-score-adj", 0, "Tune host's OOM preferences (-1000 to 1000)")
	flags.Int64Var(&c.pidsLimit, "pids-limit", 0, "Tune container pids limit (set -1 for unlimited)")

	// Low-level execution
	flags.StringVar(&c.cgroupParent, "cgroup-parent", "", "Optional parent cgroup for the container")
	flags.StringVar(&c.ipcMode, "ipc", "", "IPC mode to use")
	flags.StringVar(&c.pidMode, "pid", "", "PID namespace to use")
	flags.Var(&c.shmSize, "shm-size", "Size of /dev/shm")
	flags.StringVar(&c.utsMode, "uts", "", "UTS namespace to use")
	flags.StringVar(&c.runtime, "runtime", "", "Runtime to use for this container")
	flags.BoolVar(&c.init, "init", false, "Run an init inside the container that forwards signals and reaps processes")
	flags.Var(c.annotations, "annotation", "Add an annotation to the container (passed through to the OCI runtime)")
	c.deviceOpts = addDeviceFlags(flags)
	return c
}

// containerConfig is what `create` sends.
type containerConfig struct {
	Config           *container.Config
	HostConfig       *container.HostConfig
	NetworkingConfig *network.NetworkingConfig
}

// parse turns the flags into the API's create request, as docker/cli's parse
// does (for a Linux engine).
func parse(flags *pflag.FlagSet, c *containerOptions) (*containerConfig, error) {
	attachStdin := c.attach.Get("stdin")
	attachStdout := c.attach.Get("stdout")
	attachStderr := c.attach.Get("stderr")

	if c.macAddress != "" {
		if _, err := net.ParseMAC(strings.TrimSpace(c.macAddress)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", c.macAddress)
		}
	}
	if c.stdin {
		attachStdin = true
	}
	// Without -a, attach stdout and stderr.
	if c.attach.Len() == 0 {
		attachStdout = true
		attachStderr = true
	}
	if c.swappiness != -1 && (c.swappiness < 0 || c.swappiness > 100) {
		return nil, fmt.Errorf("invalid value: %d. Valid memory swappiness range is 0-100", c.swappiness)
	}

	var binds []string
	volumes := c.volumes.GetMap()
	for bind := range volumes {
		spec, err := opts.ParseVolumeSpec(bind)
		if err != nil {
			return nil, err
		}
		if spec.Source == "" {
			continue // an anonymous volume stays in Config.Volumes
		}
		toBind := bind
		if spec.Type == mount.TypeBind {
			if host, target, ok := strings.Cut(bind, ":"); ok {
				if !filepath.IsAbs(host) && strings.HasPrefix(host, ".") {
					if abs, err := filepath.Abs(host); err == nil {
						host = abs
					}
				}
				toBind = host + ":" + target
			}
		}
		binds = append(binds, toBind)
		delete(volumes, bind)
	}
	slices.Sort(binds) // volumes is a map: keep the request stable

	tmpfs := map[string]string{}
	for _, t := range c.tmpfs.GetSlice() {
		k, v, _ := strings.Cut(t, ":")
		tmpfs[k] = v
	}

	var runCmd, entrypoint []string
	if len(c.Args) > 0 {
		runCmd = c.Args
	}
	if c.entrypoint != "" {
		entrypoint = []string{c.entrypoint}
	} else if flags.Changed("entrypoint") {
		// --entrypoint="" clears the image's entrypoint.
		entrypoint = []string{""}
	}

	exposedPorts, portBindings, err := parsePublish(c.publish.GetSlice())
	if err != nil {
		return nil, err
	}
	for _, e := range c.expose.GetSlice() {
		pr, err := network.ParsePortRange(e)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %w", err)
		}
		for p := range pr.All() {
			exposedPorts[p] = struct{}{}
		}
	}

	var deviceMappings []container.DeviceMapping
	for _, d := range c.devices.GetSlice() {
		validated, err := validateLinuxPath(d, validDeviceMode)
		if err != nil {
			return nil, err
		}
		dm, err := parseLinuxDevice(validated)
		if err != nil {
			return nil, err
		}
		deviceMappings = append(deviceMappings, dm)
	}

	env, err := opts.ReadKVEnvStrings(c.envFile.GetSlice(), c.env.GetSlice())
	if err != nil {
		return nil, fmt.Errorf("--env-file: %w", err)
	}
	labels, err := opts.ReadKVStrings(c.labelsFile.GetSlice(), c.labels.GetSlice())
	if err != nil {
		return nil, fmt.Errorf("--label-file: %w", err)
	}

	pidMode := container.PidMode(c.pidMode)
	if !pidMode.Valid() {
		return nil, errors.New("--pid: invalid PID mode")
	}
	utsMode := container.UTSMode(c.utsMode)
	if !utsMode.Valid() {
		return nil, errors.New("--uts: invalid UTS mode")
	}
	usernsMode := container.UsernsMode(c.usernsMode)
	if !usernsMode.Valid() {
		return nil, errors.New("--userns: invalid USER mode")
	}
	cgroupnsMode := container.CgroupnsMode(c.cgroupnsMode)
	if !cgroupnsMode.Valid() {
		return nil, errors.New("--cgroupns: invalid CGROUP mode")
	}

	restartPolicy, err := opts.ParseRestartPolicy(c.restartPolicy)
	if err != nil {
		return nil, err
	}
	loggingOpts := opts.ConvertKVStringsToMap(c.loggingOpts.GetSlice())
	if c.loggingDriver == "none" && c.loggingOpts.Len() > 0 {
		return nil, fmt.Errorf("invalid logging opts for driver %s", c.loggingDriver)
	}
	securityOpts, err := parseSecurityOpts(c.securityOpt.GetSlice())
	if err != nil {
		return nil, err
	}
	securityOpts, maskedPaths, readonlyPaths := parseSystemPaths(securityOpts)
	storageOpts := map[string]string{}
	for _, o := range c.storageOpt.GetSlice() {
		k, v, ok := strings.Cut(o, "=")
		if !ok {
			return nil, errors.New("invalid storage option")
		}
		storageOpts[k] = v
	}

	healthConfig, err := c.healthConfig()
	if err != nil {
		return nil, err
	}

	resources := container.Resources{
		CgroupParent:       c.cgroupParent,
		Memory:             c.memory.Value(),
		MemoryReservation:  c.memoryReservation.Value(),
		MemorySwap:         c.memorySwap.Value(),
		MemorySwappiness:   &c.swappiness,
		OomKillDisable:     &c.oomKillDisable,
		NanoCPUs:           c.cpus.Value(),
		CPUShares:          c.cpuShares,
		CPUPeriod:          c.cpuPeriod,
		CpusetCpus:         c.cpusetCpus,
		CpusetMems:         c.cpusetMems,
		CPUQuota:           c.cpuQuota,
		CPURealtimePeriod:  c.cpuRealtimePeriod,
		CPURealtimeRuntime: c.cpuRealtimeRuntime,
		PidsLimit:          &c.pidsLimit,
		BlkioWeight:        c.blkioWeight,
		Ulimits:            c.ulimits.GetList(),
		DeviceCgroupRules:  c.deviceCgroupRules.GetSlice(),
		Devices:            deviceMappings,
	}
	c.deviceOpts.apply(&resources)

	config := &container.Config{
		Hostname:     c.hostname,
		Domainname:   c.domainname,
		ExposedPorts: exposedPorts,
		User:         c.user,
		Tty:          c.tty,
		OpenStdin:    c.stdin,
		AttachStdin:  attachStdin,
		AttachStdout: attachStdout,
		AttachStderr: attachStderr,
		Env:          env,
		Cmd:          runCmd,
		Image:        c.Image,
		Volumes:      volumes,
		Entrypoint:   entrypoint,
		WorkingDir:   c.workingDir,
		Labels:       opts.ConvertKVStringsToMap(labels),
		StopSignal:   c.stopSignal,
		Healthcheck:  healthConfig,
	}
	if flags.Changed("stop-timeout") {
		config.StopTimeout = &c.stopTimeout
	}

	dns := make([]netip.Addr, 0, c.dns.Len())
	for _, s := range c.dns.GetSlice() {
		if a, err := netip.ParseAddr(s); err == nil {
			dns = append(dns, a)
		}
	}

	hostConfig := &container.HostConfig{
		Binds:           binds,
		ContainerIDFile: c.containerIDFile,
		OomScoreAdj:     c.oomScoreAdj,
		AutoRemove:      c.autoRemove,
		Privileged:      c.privileged,
		PortBindings:    portBindings,
		Links:           c.links.GetSlice(),
		PublishAllPorts: c.publishAll,
		// docker keeps these non-nil for new containers.
		DNS:            dns,
		DNSSearch:      c.dnsSearch.GetAllOrEmpty(),
		DNSOptions:     c.dnsOptions.GetAllOrEmpty(),
		ExtraHosts:     c.extraHosts.GetSlice(),
		VolumesFrom:    c.volumesFrom.GetSlice(),
		IpcMode:        container.IpcMode(c.ipcMode),
		NetworkMode:    container.NetworkMode(c.netMode.NetworkMode()),
		PidMode:        pidMode,
		UTSMode:        utsMode,
		UsernsMode:     usernsMode,
		CgroupnsMode:   cgroupnsMode,
		CapAdd:         c.capAdd.GetSlice(),
		CapDrop:        c.capDrop.GetSlice(),
		GroupAdd:       c.groupAdd.GetSlice(),
		RestartPolicy:  restartPolicy,
		SecurityOpt:    securityOpts,
		StorageOpt:     storageOpts,
		ReadonlyRootfs: c.readonlyRootfs,
		LogConfig:      container.LogConfig{Type: c.loggingDriver, Config: loggingOpts},
		VolumeDriver:   c.volumeDriver,
		ShmSize:        c.shmSize.Value(),
		Resources:      resources,
		Tmpfs:          tmpfs,
		Sysctls:        c.sysctls.GetAll(),
		Runtime:        c.runtime,
		Mounts:         c.mounts.Value(),
		MaskedPaths:    maskedPaths,
		ReadonlyPaths:  readonlyPaths,
		Annotations:    c.annotations.GetAll(),
	}
	c.extra.apply(hostConfig)
	if c.autoRemove && !hostConfig.RestartPolicy.IsNone() {
		return nil, errors.New("conflicting options: cannot specify both --restart and --rm")
	}
	// Init stays nil unless the flag was given, so the engine's default applies.
	if flags.Changed("init") {
		hostConfig.Init = &c.init
	}
	// With stdin open and attached, close it when the client goes away.
	if config.OpenStdin && config.AttachStdin {
		config.StdinOnce = true
	}

	endpoints, err := c.parseNetworkOpts()
	if err != nil {
		return nil, err
	}
	return &containerConfig{
		Config:           config,
		HostConfig:       hostConfig,
		NetworkingConfig: &network.NetworkingConfig{EndpointsConfig: endpoints},
	}, nil
}

func (c *containerOptions) healthConfig() (*container.HealthConfig, error) {
	have := c.healthCmd != "" || c.healthInterval != 0 || c.healthTimeout != 0 ||
		c.healthStartPeriod != 0 || c.healthRetries != 0 || c.healthStartInterv != 0
	if c.noHealthcheck {
		if have {
			return nil, errors.New("--no-healthcheck conflicts with --health-* options")
		}
		return &container.HealthConfig{Test: []string{"NONE"}}, nil
	}
	if !have {
		return nil, nil
	}
	var probe []string
	if c.healthCmd != "" {
		probe = []string{"CMD-SHELL", c.healthCmd}
	}
	for _, d := range []struct {
		name string
		neg  bool
	}{
		{"--health-interval", c.healthInterval < 0},
		{"--health-timeout", c.healthTimeout < 0},
		{"--health-retries", c.healthRetries < 0},
		{"--health-start-period", c.healthStartPeriod < 0},
		{"--health-start-interval", c.healthStartInterv < 0},
	} {
		if d.neg {
			return nil, fmt.Errorf("%s cannot be negative", d.name)
		}
	}
	return &container.HealthConfig{
		Test:          probe,
		Interval:      c.healthInterval,
		Timeout:       c.healthTimeout,
		StartPeriod:   c.healthStartPeriod,
		StartInterval: c.healthStartInterv,
		Retries:       c.healthRetries,
	}, nil
}

// parseNetworkOpts builds the endpoint settings from --network and the older
// --network-alias, --link, --ip, --ip6 flags, as docker does.
func (c *containerOptions) parseNetworkOpts() (map[string]*network.EndpointSettings, error) {
	endpoints := map[string]*network.EndpointSettings{}
	var hasUserDefined, hasNonUserDefined bool
	nets := c.netMode.Value()
	if len(nets) == 0 {
		n := opts.NetworkAttachmentOpts{Target: "default"}
		if err := c.applyContainerOptions(&n); err != nil {
			return nil, err
		}
		ep, err := parseNetworkAttachmentOpt(n)
		if err != nil {
			return nil, err
		}
		endpoints["default"] = ep
	}
	for i, n := range nets {
		if container.NetworkMode(n.Target).IsUserDefined() {
			hasUserDefined = true
		} else {
			hasNonUserDefined = true
		}
		if i == 0 {
			if err := c.applyContainerOptions(&n); err != nil {
				return nil, err
			}
		}
		ep, err := parseNetworkAttachmentOpt(n)
		if err != nil {
			return nil, err
		}
		if _, ok := endpoints[n.Target]; ok {
			return nil, fmt.Errorf("network %q is specified multiple times", n.Target)
		}
		// A single network without options is left to the engine.
		if i == 0 && len(nets) == 1 && (ep == nil || reflect.ValueOf(*ep).IsZero()) {
			continue
		}
		endpoints[n.Target] = ep
	}
	if hasUserDefined && hasNonUserDefined {
		return nil, errors.New("conflicting options: cannot attach both user-defined and non-user-defined network-modes")
	}
	return endpoints, nil
}

func (c *containerOptions) applyContainerOptions(n *opts.NetworkAttachmentOpts) error {
	switch {
	case len(n.Aliases) > 0 && c.aliases.Len() > 0:
		return errors.New("conflicting options: cannot specify both --network-alias and per-network alias")
	case len(n.Links) > 0 && c.links.Len() > 0:
		return errors.New("conflicting options: cannot specify both --link and per-network links")
	case n.IPv4Address.IsValid() && c.ipv4Address != nil:
		return errors.New("conflicting options: cannot specify both --ip and per-network IPv4 address")
	case n.IPv6Address.IsValid() && c.ipv6Address != nil:
		return errors.New("conflicting options: cannot specify both --ip6 and per-network IPv6 address")
	case n.MacAddress != "" && c.macAddress != "":
		return errors.New("conflicting options: cannot specify both --mac-address and per-network MAC address")
	case len(n.LinkLocalIPs) > 0 && c.linkLocalIPs.Len() > 0:
		return errors.New("conflicting options: cannot specify both --link-local-ip and per-network link-local IP addresses")
	}
	if c.aliases.Len() > 0 {
		n.Aliases = slices.Clone(c.aliases.GetSlice())
	}
	// On a user-defined network --link is an alias; on the default bridge
	// it is a legacy link (HostConfig.Links).
	if container.NetworkMode(n.Target).IsUserDefined() && c.links.Len() > 0 {
		n.Links = slices.Clone(c.links.GetSlice())
	}
	if c.ipv4Address != nil {
		if a, ok := netip.AddrFromSlice(c.ipv4Address.To4()); ok {
			n.IPv4Address = a
		}
	}
	if c.ipv6Address != nil {
		if a, ok := netip.AddrFromSlice(c.ipv6Address.To16()); ok {
			n.IPv6Address = a
		}
	}
	if c.macAddress != "" {
		n.MacAddress = c.macAddress
	}
	for _, s := range c.linkLocalIPs.GetSlice() {
		if a, err := netip.ParseAddr(s); err == nil {
			n.LinkLocalIPs = append(n.LinkLocalIPs, a)
		}
	}
	return nil
}

func parseNetworkAttachmentOpt(ep opts.NetworkAttachmentOpts) (*network.EndpointSettings, error) {
	if strings.TrimSpace(ep.Target) == "" {
		return nil, errors.New("no name set for network")
	}
	if !container.NetworkMode(ep.Target).IsUserDefined() {
		if len(ep.Aliases) > 0 {
			return nil, errors.New("network-scoped aliases are only supported for user-defined networks")
		}
		if len(ep.Links) > 0 {
			return nil, errors.New("links are only supported for user-defined networks")
		}
	}
	s := &network.EndpointSettings{GwPriority: ep.GwPriority}
	s.Aliases = append(s.Aliases, ep.Aliases...)
	if len(ep.DriverOpts) > 0 {
		s.DriverOpts = ep.DriverOpts
	}
	if len(ep.Links) > 0 {
		s.Links = ep.Links
	}
	if ep.IPv4Address.IsValid() || ep.IPv6Address.IsValid() || len(ep.LinkLocalIPs) > 0 {
		s.IPAMConfig = &network.EndpointIPAMConfig{
			IPv4Address:  ep.IPv4Address,
			IPv6Address:  ep.IPv6Address,
			LinkLocalIPs: ep.LinkLocalIPs,
		}
	}
	if ep.MacAddress != "" {
		ma, err := net.ParseMAC(strings.TrimSpace(ep.MacAddress))
		if err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", ep.MacAddress)
		}
		s.MacAddress = network.HardwareAddr(ma)
	}
	return s, nil
}

// parsePublish reads -p values (HOSTIP:HOSTPORT:PORT/PROTO and ranges, or
// the long form published=,target=,protocol=) into the ports to expose and
// their bindings, as docker does.
func parsePublish(specs []string) (network.PortSet, network.PortMap, error) {
	publish, err := convertToStandardNotation(specs)
	if err != nil {
		return nil, nil, err
	}
	ports, natBindings, err := nat.ParsePortSpecs(publish)
	if err != nil {
		return nil, nil, err
	}
	portBindings := network.PortMap{}
	for port, bindings := range natBindings {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		portBindings[p] = []network.PortBinding{}
		for _, b := range bindings {
			var hostIP netip.Addr
			if b.HostIP != "" {
				if hostIP, err = netip.ParseAddr(b.HostIP); err != nil {
					return nil, nil, err
				}
			}
			portBindings[p] = append(portBindings[p], network.PortBinding{HostIP: hostIP, HostPort: b.HostPort})
		}
	}
	exposedPorts := network.PortSet{}
	for port := range ports {
		p, err := network.ParsePort(string(port))
		if err != nil {
			return nil, nil, err
		}
		exposedPorts[p] = struct{}{}
	}
	return exposedPorts, portBindings, nil
}

// convertToStandardNotation turns long -p syntax (published=,target=) into
// [ip:]host:container/proto.
func convertToStandardNotation(ports []string) ([]string, error) {
	var out []string
	for _, p := range ports {
		if !strings.Contains(p, "=") {
			out = append(out, p)
			continue
		}
		params := map[string]string{"protocol": "tcp"}
		for _, param := range strings.Split(p, ",") {
			k, v, ok := strings.Cut(param, "=")
			if !ok || k == "" {
				return out, fmt.Errorf("invalid publish opts format (should be name=value but got '%s')", param)
			}
			params[k] = v
		}
		out = append(out, fmt.Sprintf("%s:%s/%s", params["published"], params["target"], params["protocol"]))
	}
	return out, nil
}

// parseSecurityOpts checks --security-opt values and inlines a seccomp
// profile file, like docker.
func parseSecurityOpts(securityOpts []string) ([]string, error) {
	for i, o := range securityOpts {
		k, v, ok := strings.Cut(o, "=")
		if !ok && k != "no-new-privileges" {
			k, v, ok = strings.Cut(o, ":")
		}
		if (!ok || v == "") && k != "no-new-privileges" {
			return securityOpts, fmt.Errorf("invalid --security-opt: %q", o)
		}
		if k == "seccomp" && v != "builtin" && v != "unconfined" {
			f, err := os.ReadFile(v)
			if err != nil {
				return securityOpts, fmt.Errorf("opening seccomp profile (%s) failed: %w", v, err)
			}
			var b bytes.Buffer
			if err := json.Compact(&b, f); err != nil {
				return securityOpts, fmt.Errorf("compacting json for seccomp profile (%s) failed: %w", v, err)
			}
			securityOpts[i] = "seccomp=" + b.String()
		}
	}
	return securityOpts, nil
}

// parseSystemPaths handles systempaths=unconfined on the client: it empties
// the masked and read-only paths and is not sent as a security option.
func parseSystemPaths(securityOpts []string) (filtered, maskedPaths, readonlyPaths []string) {
	for _, o := range securityOpts {
		if o == "systempaths=unconfined" {
			maskedPaths, readonlyPaths = []string{}, []string{}
			continue
		}
		filtered = append(filtered, o)
	}
	return filtered, maskedPaths, readonlyPaths
}

func parseLinuxDevice(device string) (container.DeviceMapping, error) {
	var src, dst string
	permissions := "rwm"
	arr := strings.SplitN(device, ":", 4)
	switch len(arr) {
	case 3:
		permissions = arr[2]
		fallthrough
	case 2:
		if validDeviceMode(arr[1]) {
			permissions = arr[1]
		} else {
			dst = arr[1]
		}
		fallthrough
	case 1:
		src = arr[0]
	default:
		return container.DeviceMapping{}, fmt.Errorf("invalid device specification: %s", device)
	}
	if dst == "" {
		dst = src
	}
	return container.DeviceMapping{PathOnHost: src, PathInContainer: dst, CgroupPermissions: permissions}, nil
}

var deviceCgroupRuleRegexp = regexp.MustCompile(`^[acb] ([0-9]+|\*):([0-9]+|\*) [rwm]{1,3}$`)

func validateDeviceCgroupRule(val string) (string, error) {
	if deviceCgroupRuleRegexp.MatchString(val) {
		return val, nil
	}
	return val, fmt.Errorf("invalid device cgroup format '%s'", val)
}

func validDeviceMode(mode string) bool {
	if mode == "" {
		return false
	}
	seen := map[rune]bool{}
	for _, c := range mode {
		if (c != 'r' && c != 'w' && c != 'm') || seen[c] {
			return false
		}
		seen[c] = true
	}
	return true
}

// validateLinuxPath checks [host-dir:]container-path[:mode].
func validateLinuxPath(val string, validator func(string) bool) (string, error) {
	if strings.Count(val, ":") > 2 {
		return val, fmt.Errorf("bad format for path: %s", val)
	}
	split := strings.SplitN(val, ":", 3)
	if split[0] == "" {
		return val, fmt.Errorf("bad format for path: %s", val)
	}
	var containerPath string
	switch len(split) {
	case 1:
		containerPath = split[0]
		val = path.Clean(containerPath)
	case 2:
		if validator(split[1]) {
			containerPath = split[0]
			val = fmt.Sprintf("%s:%s", path.Clean(containerPath), split[1])
		} else {
			containerPath = split[1]
			val = fmt.Sprintf("%s:%s", split[0], path.Clean(containerPath))
		}
	case 3:
		containerPath = split[1]
		if !validator(split[2]) {
			return val, fmt.Errorf("bad mode specified: %s", split[2])
		}
		val = fmt.Sprintf("%s:%s:%s", split[0], containerPath, split[2])
	}
	if !path.IsAbs(containerPath) {
		return val, fmt.Errorf("%s is not an absolute path", containerPath)
	}
	return val, nil
}

func validateAttach(val string) (string, error) {
	s := strings.ToLower(val)
	if slices.Contains([]string{"stdin", "stdout", "stderr"}, s) {
		return s, nil
	}
	return val, errors.New("valid streams are STDIN, STDOUT and STDERR")
}
