package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

func (c *CLI) newVolumeCommand() *cobra.Command {
	cmd := managementCommand("volume", "Manage volumes")
	cmd.AddCommand(
		c.newVolumeCreateCommand(),
		c.newVolumeLsCommand(),
		c.newVolumeInspectCommand(),
		c.newVolumeRmCommand(),
		c.newVolumePruneCommand(),
	)
	return cmd
}

func (c *CLI) newVolumeCreateCommand() *cobra.Command {
	var driver, name string
	labels := opts.NewMapOpts(nil)
	driverOpts := opts.NewMapOpts(nil)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: driverOpts.GetAll(), Labels: labels.GetAll(),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.Volume.Name)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	f.StringVar(&name, "name", "", "Specify volume name")
	f.MarkHidden("name")
	f.Var(labels, "label", "Set metadata for a volume")
	f.VarP(driverOpts, "opt", "o", "Set driver specific options")
	return cmd
}

func (c *CLI) newVolumeLsCommand() *cobra.Command {
	var quiet bool
	var format string
	filter := opts.NewFilterOpt()
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: filter.Value()})
			if err != nil {
				return err
			}
			return formatter.VolumeWrite(formatter.Context{Output: c.out, Format: formatter.NewVolumeFormat(format, quiet)}, res.Items)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	f.VarP(&filter, "filter", "f", "Provide filter values (e.g. \"dangling=true\")")
	return cmd
}

func (c *CLI) newVolumeInspectCommand() *cobra.Command {
	return c.newObjectInspectCommand("VOLUME", "volumes", func(ctx context.Context, api client.APIClient, ref string) (any, []byte, error) {
		res, err := api.VolumeInspect(ctx, ref, client.VolumeInspectOptions{})
		if err != nil {
			return nil, nil, err
		}
		return res.Volume, res.Raw, nil
	})
}

func (c *CLI) newVolumeRmCommand() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return c.eachName(cmd.Context(), args, func(ctx context.Context, name string) error {
				_, err := api.VolumeRemove(ctx, name, client.VolumeRemoveOptions{Force: force})
				return err
			}, nil)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (c *CLI) newVolumePruneCommand() *cobra.Command {
	return c.newPruneCmd(pruneSpec{
		short: "Remove unused local volumes", what: "volume",
		warning: func(all bool) string {
			if all {
				return "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?"
			}
			return "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?"
		},
		allHelp:    "Remove all unused volumes, not just anonymous ones",
		filterHelp: "Provide filter values (e.g. \"label=<label>\")",
		run: func(ctx context.Context, api client.APIClient, all bool, f client.Filters) (string, []string, int64, error) {
			res, err := api.VolumePrune(ctx, client.VolumePruneOptions{All: all, Filters: f})
			return "Deleted Volumes:", res.Report.VolumesDeleted, int64(res.Report.SpaceReclaimed), err
		},
	})
}
