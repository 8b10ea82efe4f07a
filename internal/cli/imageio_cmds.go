package cli

import (
	"context"
	"errors"
	"fmt"
	imagetypes "github.com/moby/moby/api/types/image"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// writeToFileOrStdout copies r to the file named out (written next to it
// and renamed into place, like docker) or to stdout, refusing a terminal.
func (c *CLI) writeToFileOrStdout(r io.Reader, out, what string) error {
	if out == "" {
		if c.out.IsTerminal() {
			return fmt.Errorf("cowardly refusing to save to a terminal. Use the -o flag or redirect")
		}
		_, err := io.Copy(c.out, r)
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(out), ".skiff_temp_")
	if err != nil {
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	tmp := f.Name()
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(tmp, out)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("failed to %s: %w", what, err)
	}
	return nil
}

func (c *CLI) newSaveCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "save [OPTIONS] IMAGE [IMAGE...]",
		Short: "Save one or more images to a tar archive (streamed to STDOUT by default)",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && c.out.IsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			body, err := api.ImageSave(cmd.Context(), args)
			if err != nil {
				return err
			}
			defer body.Close()
			return c.writeToFileOrStdout(body, output, "save image")
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func (c *CLI) newLoadCommand() *cobra.Command {
	var input string
	var quiet bool
	cmd := &cobra.Command{
		Use:   "load [OPTIONS]",
		Short: "Load an image from a tar archive or STDIN",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = c.in
			if input != "" {
				f, err := os.Open(input)
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			} else if c.in.IsTerminal() {
				return errors.New("requested load from stdin, but stdin is empty")
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			body, err := api.ImageLoad(cmd.Context(), in, client.ImageLoadWithQuiet(quiet || !c.out.IsTerminal()))
			if err != nil {
				return err
			}
			defer body.Close()
			return renderJSONMessages(body, c.out, nil)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "Read from tar archive file, instead of STDIN")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "Suppress the load output")
	return cmd
}

func (c *CLI) newCommitCommand() *cobra.Command {
	var author, message string
	pause := true
	changes := opts.NewListOpts(nil)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ref := ""
			if len(args) > 1 {
				ref = args[1]
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ContainerCommit(cmd.Context(), args[0], client.ContainerCommitOptions{
				Reference: ref, Comment: message, Author: author,
				Changes: changes.GetSlice(), NoPause: !pause,
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out, res.ID)
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	f.VarP(&changes, "change", "c", "Apply Dockerfile instruction to the created image")
	f.StringVarP(&message, "message", "m", "", "Commit message")
	f.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

func (c *CLI) newExportCommand() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output == "" && c.out.IsTerminal() {
				return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			body, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer body.Close()
			return c.writeToFileOrStdout(body, output, "export container")
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

func (c *CLI) newHistoryCommand() *cobra.Command {
	var human, quiet, noTrunc bool
	var format string
	cmd := &cobra.Command{
		Use:   "history [OPTIONS] IMAGE",
		Short: "Show the history of an image",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			res, err := api.ImageHistory(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return formatter.HistoryWrite(formatter.Context{
				Output: c.out, Format: formatter.NewHistoryFormat(format, quiet, human),
				Trunc: !noTrunc, Now: c.now,
			}, human, res.Items)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&human, "human", "H", true, "Print sizes and dates in human readable format")
	f.BoolVarP(&quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "Don't truncate output")
	f.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

func (c *CLI) newImagePruneCommand() *cobra.Command {
	return c.newPruneCmd(pruneSpec{
		short: "Remove unused images", what: "image",
		warning: func(all bool) string {
			if all {
				return "WARNING! This will remove all images without at least one container associated to them.\nAre you sure you want to continue?"
			}
			return "WARNING! This will remove all dangling images.\nAre you sure you want to continue?"
		},
		allHelp:    "Remove all unused images, not just dangling ones",
		filterHelp: `Provide filter values (e.g. "until=<timestamp>")`,
		run: func(ctx context.Context, api client.APIClient, all bool, f client.Filters) (string, []string, int64, error) {
			res, err := api.ImagePrune(ctx, client.ImagePruneOptions{Filters: f.Add("dangling", strconv.FormatBool(!all))})
			return "Deleted Images:", deletedImageLines(res.Report.ImagesDeleted), int64(res.Report.SpaceReclaimed), err
		},
	})
}

func (c *CLI) newSystemDFCommand() *cobra.Command {
	var format string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "df [OPTIONS]",
		Short: "Show skiff disk usage",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runSystemDF(cmd.Context(), format, verbose)
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVar(&format, "format", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "Show detailed information on space usage")
	return cmd
}

func (c *CLI) runSystemDF(ctx context.Context, format string, verbose bool) error {
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	// Verbose, so that the items come back whatever the API version; the
	// sums are docker 28's, made from them.
	du, err := api.DiskUsage(ctx, client.DiskUsageOptions{Containers: true, Images: true, Volumes: true, BuildCache: true, Verbose: true})
	if err != nil {
		return err
	}
	d := formatter.DiskUsage{
		LayersSize: du.Images.TotalSize, Images: du.Images.Items, Containers: du.Containers.Items,
		Volumes: du.Volumes.Items, BuildCache: du.BuildCache.Items,
	}
	if verbose && (format == "" || format == formatter.TableFormatKey) {
		return formatter.DiskUsageVerboseWrite(c.out, d, time.Now())
	}
	if verbose {
		return formatter.DiskUsageVerboseTemplate(c.out, d, time.Now(), format)
	}
	return formatter.DiskUsageWrite(formatter.Context{Output: c.out, Format: formatter.NewDiskUsageFormat(format)}, formatter.DiskUsageRows(d))
}

// deletedImageLines are docker's lines for an image prune's deletions.
func deletedImageLines(items []imagetypes.DeleteResponse) []string {
	var out []string
	for _, st := range items {
		if st.Untagged != "" {
			out = append(out, "untagged: "+st.Untagged)
		} else {
			out = append(out, "deleted: "+st.Deleted)
		}
	}
	return out
}
