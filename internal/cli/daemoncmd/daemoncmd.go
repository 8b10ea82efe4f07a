// Package daemoncmd is the `skiff daemon` command. It lives apart from
// package cli so that the command line's client side does not link (or wait
// for) the engine.
package daemoncmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/opts"
	"github.com/skiff-dev/skiff/internal/daemon"
)

// Runner is the engine: daemon.Run and daemon.LoadConfigFile.
type Runner struct {
	Run            func(ctx context.Context, cfg daemon.Config) error
	LoadConfigFile func(path string, cfg *daemon.Config) error
}

type options struct {
	hosts      opts.ListOpts
	dataRoot   string
	execRoot   string
	configFile string
	debug      bool
	logLevel   string
	logDriver  string
	logOpts    opts.ListOpts
	criSocket  string
	certsD     string
}

// New returns `skiff daemon`: the engine in the foreground until SIGINT or
// SIGTERM. Flags override the config file, as with dockerd.
func New(r Runner) *cobra.Command {
	o := options{hosts: opts.NewListOpts(nil), logOpts: opts.NewListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "daemon [OPTIONS]",
		Short: "Run the skiff engine (serves the Docker Engine API)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := Config(cmd, &o, r.LoadConfigFile)
			if err != nil {
				return err
			}
			if r.Run == nil {
				return errors.New("this build of skiff has no daemon")
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return r.Run(ctx, cfg)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.VarP(&o.hosts, "host", "H", "Daemon socket(s) to listen on")
	f.StringVar(&o.dataRoot, "data-root", daemon.DefaultDataRoot, "Root directory of persistent state")
	f.StringVar(&o.execRoot, "exec-root", daemon.DefaultExecRoot, "Root directory for execution state files")
	f.StringVar(&o.configFile, "config-file", daemon.DefaultConfigFile, "Daemon configuration file")
	f.BoolVarP(&o.debug, "debug", "D", false, "Enable debug mode")
	f.StringVarP(&o.logLevel, "log-level", "l", "info", `Set the logging level ("debug"|"info"|"warn"|"error"|"fatal")`)
	f.StringVar(&o.logDriver, "log-driver", "json-file", "Default driver for container logs")
	f.Var(&o.logOpts, "log-opt", "Default log driver options for containers")
	f.StringVar(&o.criSocket, "cri-socket", daemon.DefaultCRISocket, `Kubernetes CRI socket to listen on ("" turns the CRI off)`)
	f.String("cri-stream-address", "127.0.0.1:0", "Address (host:port) of the CRI streaming server (exec, attach, port-forward)")
	f.StringVar(&o.certsD, "certs-d", daemon.DefaultCertsD, "Per-registry hosts configuration (DIR/<host>/hosts.toml, ca.crt, client.cert)")
	return cmd
}

// Config reads the config file (a missing default file is fine, a missing
// file named with --config-file is not) and lays the given flags over it.
func Config(cmd *cobra.Command, o *options, load func(string, *daemon.Config) error) (daemon.Config, error) {
	var cfg daemon.Config
	flags := cmd.Flags()
	_, statErr := os.Stat(o.configFile)
	if statErr != nil && flags.Changed("config-file") {
		return cfg, fmt.Errorf("unable to configure the daemon with file %s: %w", o.configFile, statErr)
	}
	if statErr == nil {
		if load == nil {
			return cfg, errors.New("this build of skiff cannot read a daemon config file")
		}
		if err := load(o.configFile, &cfg); err != nil {
			return cfg, err
		}
	}
	if flags.Changed("host") || len(cfg.Hosts) == 0 {
		cfg.Hosts = o.hosts.GetSlice()
		if len(cfg.Hosts) == 0 {
			cfg.Hosts = []string{daemon.DefaultHost}
		}
	}
	if flags.Changed("data-root") || cfg.DataRoot == "" {
		cfg.DataRoot = o.dataRoot
	}
	if flags.Changed("exec-root") || cfg.ExecRoot == "" {
		cfg.ExecRoot = o.execRoot
	}
	// -D given to `skiff -D daemon` lands on the root's flag of that name.
	if flags.Changed("debug") || rootDebug(cmd) {
		cfg.Debug = o.debug || rootDebug(cmd)
	}
	if flags.Changed("log-level") || cfg.LogLevel == "" {
		cfg.LogLevel = o.logLevel
	}
	if flags.Changed("log-driver") {
		cfg.LogDriver = o.logDriver
	}
	if flags.Changed("log-opt") {
		if cfg.LogOpts == nil {
			cfg.LogOpts = map[string]string{}
		}
		for k, v := range opts.ConvertKVStringsToMap(o.logOpts.GetSlice()) {
			cfg.LogOpts[k] = v
		}
	}
	if flags.Changed("cri-stream-address") {
		cfg.CRIStreamAddress, _ = flags.GetString("cri-stream-address")
	}
	if flags.Changed("certs-d") {
		cfg.CertsD = o.certsD
	}
	if flags.Changed("cri-socket") {
		s := o.criSocket
		cfg.CRISocket = &s
	}
	if cfg.Debug && !flags.Changed("log-level") {
		cfg.LogLevel = "debug"
	}
	return cfg, nil
}

func rootDebug(cmd *cobra.Command) bool {
	if !cmd.HasParent() {
		return false
	}
	f := cmd.Root().Flags().Lookup("debug")
	return f != nil && f.Changed && f.Value.String() == "true"
}
