package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// newBuilderCommand is `skiff builder` (docker's management command for
// the build cache).
func (c *CLI) newBuilderCommand() *cobra.Command {
	cmd := managementCommand("builder", "Manage builds")
	cmd.AddCommand(c.newBuildCommand(), c.newBuilderPruneCommand())
	return cmd
}

// pruneSpec is one of docker's `X prune` commands: a warning to confirm
// (unless -f), one API call, and a report of what went.
type pruneSpec struct {
	short      string
	what       string // "container", for "container prune has been cancelled"
	warning    func(all bool) string
	allHelp    string // the -a flag's help; "" for no -a
	filterHelp string // the --filter flag's help; "" for no --filter
	// run prunes and says what went: a heading, the items, and the space
	// reclaimed (negative: none to report, as network prune).
	run func(ctx context.Context, api client.APIClient, all bool, f client.Filters) (heading string, items []string, space int64, err error)
}

func (c *CLI) newPruneCmd(s pruneSpec) *cobra.Command {
	var force, all bool
	filter := opts.NewFilterOpt()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: s.short,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !force && !c.confirm(s.warning(all)) {
				return errors.New(s.what + " prune has been cancelled")
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			heading, items, space, err := s.run(cmd.Context(), api, all, filter.Value().Clone())
			if err != nil {
				return err
			}
			c.printPruned(heading, items, space)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	if s.allHelp != "" {
		f.BoolVarP(&all, "all", "a", false, s.allHelp)
	}
	if s.filterHelp != "" {
		f.Var(&filter, "filter", s.filterHelp)
	}
	return cmd
}

func (c *CLI) newBuilderPruneCommand() *cobra.Command {
	return c.newPruneCmd(pruneSpec{
		short: "Remove build cache", what: "builder",
		warning: func(all bool) string {
			if all {
				return "WARNING! This will remove all build cache. Are you sure you want to continue?"
			}
			return "WARNING! This will remove all dangling build cache. Are you sure you want to continue?"
		},
		allHelp: "Remove all unused build cache, not just dangling ones",
		run: func(ctx context.Context, api client.APIClient, all bool, _ client.Filters) (string, []string, int64, error) {
			res, err := api.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all})
			return "Deleted build cache objects:", res.Report.CachesDeleted, int64(res.Report.SpaceReclaimed), err
		},
	})
}

// newSystemPruneCommand is `skiff system prune`: stopped containers, unused
// networks, dangling (or with -a unused) images, build cache and, with
// --volumes, unused anonymous volumes, in docker's order and words.
func (c *CLI) newSystemPruneCommand() *cobra.Command {
	var force, all, volumes bool
	filter := opts.NewFilterOpt()
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused data",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			what := []string{"all stopped containers", "all networks not used by at least one container"}
			if volumes {
				what = append(what, "all anonymous volumes not used by at least one container")
			}
			if all {
				what = append(what, "all images without at least one container associated to them", "all build cache")
			} else {
				what = append(what, "all dangling images", "unused build cache")
			}
			if !force && !c.confirm("WARNING! This will remove:\n  - "+strings.Join(what, "\n  - ")+"\n\nAre you sure you want to continue?") {
				return errors.New("system prune has been cancelled")
			}
			return c.systemPrune(cmd.Context(), filter, all, volumes)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	f.BoolVarP(&all, "all", "a", false, "Remove all unused images not just dangling ones")
	f.BoolVar(&volumes, "volumes", false, "Prune anonymous volumes")
	f.Var(&filter, "filter", `Provide filter values (e.g. "label=<key>=<value>")`)
	return cmd
}

func (c *CLI) systemPrune(ctx context.Context, filter opts.FilterOpt, all, volumes bool) error {
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	var space uint64
	section := func(heading string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintln(c.out, heading)
		for _, it := range items {
			fmt.Fprintln(c.out, it)
		}
		fmt.Fprintln(c.out)
	}
	cres, err := api.ContainerPrune(ctx, client.ContainerPruneOptions{Filters: filter.Value()})
	if err != nil {
		return err
	}
	section("Deleted Containers:", cres.Report.ContainersDeleted)
	space += cres.Report.SpaceReclaimed
	nres, err := api.NetworkPrune(ctx, client.NetworkPruneOptions{Filters: filter.Value()})
	if err != nil {
		return err
	}
	section("Deleted Networks:", nres.Report.NetworksDeleted)
	if volumes {
		vres, err := api.VolumePrune(ctx, client.VolumePruneOptions{Filters: filter.Value()})
		if err != nil {
			return err
		}
		section("Deleted Volumes:", vres.Report.VolumesDeleted)
		space += vres.Report.SpaceReclaimed
	}
	imgFilter := filter.Value().Clone()
	if all {
		imgFilter.Add("dangling", "false")
	} else {
		imgFilter.Add("dangling", "true")
	}
	ires, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: imgFilter})
	if err != nil {
		return err
	}
	section("Deleted Images:", deletedImageLines(ires.Report.ImagesDeleted))
	space += ires.Report.SpaceReclaimed
	bres, err := api.BuildCachePrune(ctx, client.BuildCachePruneOptions{All: all})
	if err != nil {
		return err
	}
	section("Deleted build cache objects:", bres.Report.CachesDeleted)
	space += bres.Report.SpaceReclaimed
	fmt.Fprintln(c.out, "Total reclaimed space:", units.HumanSize(float64(space)))
	return nil
}
