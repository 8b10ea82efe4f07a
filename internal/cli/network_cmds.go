package cli

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

func (c *CLI) newNetworkCommand() *cobra.Command {
	cmd := managementCommand("network", "Manage networks")
	cmd.AddCommand(c.newNetworkCreateCommand(), c.newNetworkLsCommand(), c.newNetworkInspectCommand(),
		c.newNetworkRmCommand(), c.newNetworkPruneCommand(), c.newNetworkConnectCommand(), c.newNetworkDisconnectCommand())
	return cmd
}

func (c *CLI) newNetworkCreateCommand() *cobra.Command {
	var driver, subnet, gateway, ipRange string
	var internal, ipv4, ipv6 bool
	labels := opts.NewMapOpts(nil)
	driverOpts := opts.NewMapOpts(nil)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] NETWORK",
		Short: "Create a network",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var ipam *network.IPAM
			if subnet != "" || gateway != "" || ipRange != "" {
				if subnet == "" {
					return errors.New("every ip-range or gateway must have a corresponding subnet")
				}
				cfg := network.IPAMConfig{}
				var err error
				if cfg.Subnet, err = netip.ParsePrefix(subnet); err != nil {
					return fmt.Errorf("invalid subnet %s: %w", subnet, err)
				}
				if gateway != "" {
					if cfg.Gateway, err = netip.ParseAddr(gateway); err != nil {
						return fmt.Errorf("invalid gateway %s: %w", gateway, err)
					}
				}
				if ipRange != "" {
					if cfg.IPRange, err = netip.ParsePrefix(ipRange); err != nil {
						return fmt.Errorf("invalid ip-range %s: %w", ipRange, err)
					}
				}
				ipam = &network.IPAM{Driver: "default", Config: []network.IPAMConfig{cfg}}
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			o := client.NetworkCreateOptions{
				Driver: driver, IPAM: ipam, Internal: internal, Options: driverOpts.GetAll(), Labels: labels.GetAll(),
			}
			// As docker's CLI: sent only when given (the daemon decides).
			if cmd.Flags().Changed("ipv4") {
				o.EnableIPv4 = &ipv4
			}
			if cmd.Flags().Changed("ipv6") {
				o.EnableIPv6 = &ipv6
			}
			res, err := api.NetworkCreate(cmd.Context(), args[0], o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "bridge", "Driver to manage the Network")
	f.StringVar(&subnet, "subnet", "", "Subnet in CIDR format that represents a network segment")
	f.StringVar(&gateway, "gateway", "", "IPv4 Gateway for the master subnet")
	f.StringVar(&ipRange, "ip-range", "", "Allocate container ip from a sub-range")
	f.BoolVar(&internal, "internal", false, "Restrict external access to the network")
	f.BoolVar(&ipv4, "ipv4", true, "Enable or disable IPv4 address assignment")
	f.BoolVar(&ipv6, "ipv6", false, "Enable or disable IPv6 address assignment")
	f.Var(labels, "label", "Set metadata on a network")
	f.VarP(driverOpts, "opt", "o", "Set driver specific options")
	return cmd
}

func (c *CLI) newNetworkLsCommand() *cobra.Command {
	var quiet, noTrunc bool
	var format string
	filter := opts.NewFilterOpt()
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List networks",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.NetworkList(cmd.Context(), client.NetworkListOptions{Filters: filter.Value()})
			if err != nil {
				return err
			}
			return formatter.NetworkWrite(formatter.Context{Output: c.out, Format: formatter.NewNetworkFormat(format, quiet)}, res.Items, noTrunc)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display network IDs")
	f.StringVar(&format, "format", "", "Format output using a custom template: 'table', 'table TEMPLATE', 'json', 'TEMPLATE'")
	f.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate the output")
	f.VarP(&filter, "filter", "f", "Provide filter values (e.g. \"driver=bridge\")")
	return cmd
}

func (c *CLI) newNetworkInspectCommand() *cobra.Command {
	return c.newObjectInspectCommand("NETWORK", "networks", func(ctx context.Context, api client.APIClient, ref string) (any, []byte, error) {
		res, err := api.NetworkInspect(ctx, ref, client.NetworkInspectOptions{})
		if err != nil {
			return nil, nil, err
		}
		return res.Network, res.Raw, nil
	})
}

func (c *CLI) newNetworkRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm NETWORK [NETWORK...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more networks",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			ignore := func(err error) bool { return force && cerrdefs.IsNotFound(err) }
			return c.eachName(cmd.Context(), args, func(ctx context.Context, n string) error {
				_, err := api.NetworkRemove(ctx, n, client.NetworkRemoveOptions{})
				return err
			}, ignore)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not error if the network does not exist")
	return cmd
}

func (c *CLI) newNetworkPruneCommand() *cobra.Command {
	return c.newPruneCmd(pruneSpec{
		short: "Remove all unused networks", what: "network",
		warning: func(bool) string {
			return "WARNING! This will remove all custom networks not used by at least one container.\nAre you sure you want to continue?"
		},
		filterHelp: "Provide filter values (e.g. \"label=<label>\")",
		run: func(ctx context.Context, api client.APIClient, _ bool, f client.Filters) (string, []string, int64, error) {
			res, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: f})
			return "Deleted Networks:", res.Report.NetworksDeleted, -1, err
		},
	})
}

func (c *CLI) newNetworkConnectCommand() *cobra.Command {
	var ip string
	var linkLocal []string
	aliases := opts.NewListOpts(nil)
	cmd := &cobra.Command{
		Use:   "connect [OPTIONS] NETWORK CONTAINER",
		Short: "Connect a container to a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			es := &network.EndpointSettings{Aliases: aliases.GetAllOrEmpty()}
			if ip != "" {
				a, err := netip.ParseAddr(ip)
				if err != nil {
					return fmt.Errorf("invalid IPv4 address: %s", ip)
				}
				es.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: a}
			}
			// As docker's CLI: what does not parse is left out.
			for _, s := range linkLocal {
				if a, err := netip.ParseAddr(s); err == nil {
					if es.IPAMConfig == nil {
						es.IPAMConfig = &network.EndpointIPAMConfig{}
					}
					es.IPAMConfig.LinkLocalIPs = append(es.IPAMConfig.LinkLocalIPs, a)
				}
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkConnect(cmd.Context(), args[0], client.NetworkConnectOptions{Container: args[1], EndpointConfig: es})
			return err
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVar(&ip, "ip", "", "IPv4 address (e.g., \"172.30.100.104\")")
	cmd.Flags().Var(&aliases, "alias", "Add network-scoped alias for the container")
	cmd.Flags().StringSliceVar(&linkLocal, "link-local-ip", nil, "Add a link-local address for the container")
	return cmd
}

func (c *CLI) newNetworkDisconnectCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "disconnect [OPTIONS] NETWORK CONTAINER",
		Short: "Disconnect a container from a network",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.NetworkDisconnect(cmd.Context(), args[0], client.NetworkDisconnectOptions{Container: args[1], Force: force})
			return err
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the container to disconnect from a network")
	return cmd
}

// newPortCommand is `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
func (c *CLI) newPortCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "port CONTAINER [PRIVATE_PORT[/PROTO]]",
		Short: "List port mappings or a specific mapping for the container",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerInspect(cmd.Context(), args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			var ports network.PortMap
			if res.Container.NetworkSettings != nil {
				ports = res.Container.NetworkSettings.Ports
			}
			keys := make([]network.Port, 0, len(ports))
			for p := range ports {
				keys = append(keys, p)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i].Num() < keys[j].Num() })
			if len(args) > 1 {
				want := args[1]
				if !strings.Contains(want, "/") {
					want += "/tcp"
				}
				p, err := network.ParsePort(want)
				if err != nil {
					return err
				}
				bs, ok := ports[p]
				if !ok || len(bs) == 0 {
					return fmt.Errorf("no public port '%s' published for %s", want, args[0])
				}
				for _, b := range bs {
					fmt.Fprintln(c.out, hostPortString(b))
				}
				return nil
			}
			for _, p := range keys {
				for _, b := range ports[p] {
					fmt.Fprintf(c.out, "%s -> %s\n", p, hostPortString(b))
				}
			}
			return nil
		},
		DisableFlagsInUseLine: true,
	}
}

func hostPortString(b network.PortBinding) string {
	ip := "0.0.0.0"
	if b.HostIP.IsValid() {
		ip = b.HostIP.String()
	}
	return ip + ":" + b.HostPort
}
