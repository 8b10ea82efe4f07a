package daemon

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"

	"github.com/skiff-dev/skiff/internal/apiserver"
	"github.com/skiff-dev/skiff/internal/cgroups"
	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger/logopts"
)

// LoadConfigFile reads Docker-style daemon.json keys into cfg. A missing file
// is not an error; an unknown key is, as with dockerd.
func LoadConfigFile(path string, cfg *Config) error {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read config file %s: %w", path, err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return errdefs.Invalid("unable to configure the daemon with file %s: %v", path, err)
	}
	known := map[string]bool{
		"hosts": true, "data-root": true, "exec-root": true, "debug": true, "log-level": true,
		"log-opts": true, "log-driver": true, "cgroup-parent": true, "cgroup-favordynmods": true, "live-restore": true, "default-cgroupns-mode": true,
		"bip": true, "mtu": true, "fixed-cidr": true, "insecure-registries": true, "registry-mirrors": true,
		"default-ulimits": true, "dns": true, "dns-search": true, "dns-opts": true, "storage-driver": true,
		"default-ipc-mode": true, "cri-socket": true, "cni-conf-dir": true, "cni-bin-dir": true,
		"certs-d": true,
	}
	known["cri-stream-address"] = true
	for _, k := range networkKeys {
		known[k] = true
	}
	for k := range raw {
		if !known[k] {
			return errdefs.Invalid("unable to configure the daemon with file %s: the following directives don't match any configuration option: %s", path, k)
		}
	}
	fileCfg := Config{}
	if err := json.Unmarshal(b, &fileCfg); err != nil {
		return errdefs.Invalid("unable to configure the daemon with file %s: %v", path, err)
	}
	// Flags (already in cfg) win over the file.
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = fileCfg.Hosts
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = fileCfg.DataRoot
	}
	if cfg.ExecRoot == "" {
		cfg.ExecRoot = fileCfg.ExecRoot
	}
	if !cfg.Debug {
		cfg.Debug = fileCfg.Debug
	}
	if cfg.LogLevel == "" {
		cfg.LogLevel = fileCfg.LogLevel
	}
	if cfg.LogOpts == nil {
		cfg.LogOpts = fileCfg.LogOpts
	}
	if cfg.LogDriver == "" {
		cfg.LogDriver = fileCfg.LogDriver
	}

	if cfg.CgroupParent == "" {
		cfg.CgroupParent = fileCfg.CgroupParent
	}
	if cfg.CgroupFavorDynMods == nil {
		cfg.CgroupFavorDynMods = fileCfg.CgroupFavorDynMods
	}
	if err := engine.ValidateCgroupnsMode(fileCfg.CgroupnsMode); err != nil {
		return err
	}
	if cfg.CgroupnsMode == "" {
		cfg.CgroupnsMode = fileCfg.CgroupnsMode
	}
	cfg.mergeNetwork(fileCfg.NetworkConfig)
	if cfg.DefaultIpcMode == "" {
		cfg.DefaultIpcMode = fileCfg.DefaultIpcMode
	}
	if cfg.CRISocket == nil {
		cfg.CRISocket = fileCfg.CRISocket
	}
	cfg.CNIConfDir = cmp.Or(cfg.CNIConfDir, fileCfg.CNIConfDir)
	cfg.CRIStreamAddress = cmp.Or(cfg.CRIStreamAddress, fileCfg.CRIStreamAddress)
	cfg.CNIBinDir = cmp.Or(cfg.CNIBinDir, fileCfg.CNIBinDir)
	cfg.CertsD = cmp.Or(cfg.CertsD, fileCfg.CertsD)
	return verifyDefaultIpcMode(cfg.DefaultIpcMode)
}

// verifyDefaultIpcMode accepts what dockerd accepts as default-ipc-mode.
func verifyDefaultIpcMode(mode string) error {
	const hint = `use "shareable" or "private"`
	m := container.IpcMode(mode)
	if !m.Valid() {
		return errdefs.Invalid("default IPC mode setting (%v) is invalid; "+hint, m)
	}
	if m != "" && !m.IsPrivate() && !m.IsShareable() {
		return errdefs.Invalid(`IPC mode "%v" is not supported as default value; `+hint, m)
	}
	return nil
}

func (cfg *Config) setDefaults() error {
	if cfg.LogDriver != "" || len(cfg.LogOpts) > 0 {
		// As dockerd: defaults that no container could use (from the file
		// or the --log-driver/--log-opt flags) stop the daemon.
		if err := logopts.Validate(cfg.LogDriver, cfg.LogOpts); err != nil {
			return errdefs.Invalid("failed to set log opts: %v", err)
		}
	}
	if len(cfg.Hosts) == 0 {
		cfg.Hosts = []string{DefaultHost}
	}
	if cfg.DataRoot == "" {
		cfg.DataRoot = DefaultDataRoot
	}
	if cfg.ExecRoot == "" {
		cfg.ExecRoot = DefaultExecRoot
	}
	if cfg.CRISocket == nil {
		s := DefaultCRISocket
		cfg.CRISocket = &s
	}
	if cfg.ShimPath == "" {
		cfg.ShimPath = os.Getenv("SKIFF_SHIM")
	}
	if cfg.ShimPath == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find own executable: %w", err)
		}
		cfg.ShimPath = filepath.Join(filepath.Dir(exe), "skiff-shim")
	}
	return nil
}

// Run serves the API until ctx ends or SIGINT/SIGTERM arrives. Containers keep
// running when it returns.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.setDefaults(); err != nil {
		return err
	}
	level := slog.LevelInfo
	if cfg.Debug || cfg.LogLevel == "debug" {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A daemon writing to a closed terminal must not die of SIGPIPE.
	signal.Ignore(syscall.SIGPIPE, syscall.SIGHUP)

	if cfg.CgroupFavorDynMods == nil || *cfg.CgroupFavorDynMods {
		// A host tuning, not state of ours: it stays when the daemon stops.
		if target, err := cgroups.FavorDynMods(); err != nil {
			logger.Warn("cgroup moves stay slow (an RCU grace period per container start and exec); set cgroup-favordynmods to false to skip this", "err", err)
		} else if target != "" {
			logger.Info("set the cgroup mount option favordynmods: moving processes between cgroups no longer waits for an RCU grace period", "mount", target)
		}
	}
	// systemd in a container needs the name=systemd hierarchy on v1.
	if dir, err := cgroups.SystemdHierarchy(cgroups.DefaultRoot); err != nil {
		logger.Warn("no name=systemd cgroup hierarchy: systemd cannot run as a container's PID 1", "err", err)
	} else if dir != "" {
		logger.Info("mounted the name=systemd cgroup hierarchy, which systemd in containers needs", "mount", dir)
	}
	eng, err := engine.New(ctx, engine.Config{
		DataRoot: cfg.DataRoot, ExecRoot: cfg.ExecRoot, ShimPath: cfg.ShimPath,
		CgroupParent: cfg.CgroupParent, LogDriver: cfg.LogDriver, LogOpts: cfg.LogOpts, Logger: logger,
		DefaultIpcMode: cfg.DefaultIpcMode, DefaultCgroupnsMode: cfg.CgroupnsMode,
		Net: cfg.engineNet(),

		// registry client settings
		InsecureRegistries: cfg.InsecureRegistries, RegistryMirrors: cfg.RegistryMirrors,
		RegistryHostsDir: cmp.Or(cfg.CertsD, DefaultCertsD),
	})
	if err != nil {
		return err
	}
	defer eng.Close()

	builds, err := newBuildService(eng, cfg.DataRoot) // build.go
	if err != nil {
		return err
	}
	srv := apiserver.New(eng, apiserver.Options{Debug: cfg.Debug, Logger: logger, Build: builds})
	criSrv, criListener, err := listenCRI(eng, cfg, logger) // cri.go
	if err != nil {
		return err
	}
	var listeners []net.Listener
	for _, h := range cfg.Hosts {
		l, err := listen(h)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			if criListener != nil {
				criListener.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	serveCtx, cancelServe := context.WithCancel(ctx)
	errc := make(chan error, len(listeners)+1)
	for _, l := range listeners {
		go func() { errc <- srv.Serve(serveCtx, l) }()
	}
	serving := len(listeners)
	if criListener != nil {
		go func() { errc <- criSrv.Serve(serveCtx, criListener) }()
		serving++
	}
	logger.Info("skiff daemon ready", "hosts", cfg.Hosts, "cri-socket", *cfg.CRISocket, "data-root", cfg.DataRoot, "version", engine.Version)
	received := 0
	select {
	case <-ctx.Done():
	case err = <-errc:
		received++
	}
	// Serve returns once its context ends: open streams (waits, follows,
	// attaches) are ended, and the listeners closed.
	cancelServe()
	for ; received < serving; received++ {
		<-errc
	}
	return err
}

// listen opens a unix socket (unix:///path) or tcp (tcp://host:port) listener.
func listen(host string) (net.Listener, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok {
		proto, addr = "unix", host
	}
	switch proto {
	case "unix":
		if err := os.MkdirAll(filepath.Dir(addr), 0o755); err != nil {
			return nil, fmt.Errorf("create socket dir: %w", err)
		}
		// A stale socket from a killed daemon is removed; a live one means
		// another daemon serves here.
		if c, err := net.DialTimeout("unix", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return nil, errdefs.Conflict("another daemon is already listening on %s", addr)
		}
		os.Remove(addr)
		l, err := net.Listen("unix", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		os.Chmod(addr, 0o660)
		return l, nil
	case "tcp":
		l, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", addr, err)
		}
		return l, nil
	}
	return nil, errdefs.Invalid("unsupported host %q (use unix:// or tcp://)", host)
}
