package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
	"github.com/skiff-dev/skiff/internal/cli/opts"
)

type imagesOptions struct {
	matchName   string
	quiet       bool
	all         bool
	noTrunc     bool
	showDigests bool
	format      string
	filter      opts.FilterOpt
}

func (c *CLI) newImagesCommand() *cobra.Command {
	o := imagesOptions{filter: opts.NewFilterOpt()}
	cmd := &cobra.Command{
		Use:   "images [OPTIONS] [REPOSITORY[:TAG]]",
		Short: "List images",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				o.matchName = args[0]
			}
			n, err := c.runImages(cmd.Context(), &o)
			if err == nil && n == 0 && o.matchName != "" && cmd.CalledAs() == "images" {
				printAmbiguousHint(c.err, o.matchName)
			}
			return err
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Only show image IDs")
	f.BoolVarP(&o.all, "all", "a", false, "Show all images (default hides intermediate images)")
	f.BoolVar(&o.noTrunc, "no-trunc", false, "Don't truncate output")
	f.BoolVar(&o.showDigests, "digests", false, "Show digests")
	f.StringVar(&o.format, "format", "", "Format output using a custom template")
	f.VarP(&o.filter, "filter", "f", "Filter output based on conditions provided")
	return cmd
}

func (c *CLI) runImages(ctx context.Context, o *imagesOptions) (int, error) {
	filters := o.filter.Value()
	if o.matchName != "" {
		filters.Add("reference", o.matchName)
	}
	api, err := c.Client(ctx)
	if err != nil {
		return 0, err
	}
	res, err := api.ImageList(ctx, client.ImageListOptions{All: o.all, Filters: filters})
	if err != nil {
		return 0, err
	}
	images := res.Items
	if !o.all {
		if d, ok := filters["dangling"]; !ok || d["false"] {
			images = slices.DeleteFunc(images, isDangling)
		}
	}
	err = formatter.ImageWrite(formatter.ImageContext{
		Context: formatter.Context{
			Output: c.out,
			Format: formatter.NewImageFormat(o.format, o.quiet, o.showDigests),
			Trunc:  !o.noTrunc,
			Now:    c.now,
		},
		Digest: o.showDigests,
	}, images)
	return len(images), err
}

// printAmbiguousHint helps someone who typed `skiff images ls`.
func printAmbiguousHint(w io.Writer, name string) {
	switch name {
	case "history", "import", "inspect", "list", "load", "ls", "prune", "pull", "push", "rm", "save", "tag":
		fmt.Fprintf(w, "No images found matching %q: did you mean \"%s image %[1]s\"?\n", name, binName)
	}
}

func (c *CLI) newTagCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]",
		Short: "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE",
		Args:  exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			_, err = api.ImageTag(cmd.Context(), client.ImageTagOptions{Source: args[0], Target: args[1]})
			return err
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (c *CLI) newRmiCommand() *cobra.Command {
	var force, noPrune bool
	cmd := &cobra.Command{
		Use:   "rmi [OPTIONS] IMAGE [IMAGE...]",
		Short: "Remove one or more images",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			fatal := false
			var errs []error
			for _, img := range args {
				res, err := api.ImageRemove(cmd.Context(), img, client.ImageRemoveOptions{Force: force, PruneChildren: !noPrune})
				if err != nil {
					if !cerrdefs.IsNotFound(err) {
						fatal = true
					}
					errs = append(errs, err)
					continue
				}
				for _, d := range res.Items {
					if d.Deleted != "" {
						fmt.Fprintln(c.out, "Deleted:", d.Deleted)
					} else {
						fmt.Fprintln(c.out, "Untagged:", d.Untagged)
					}
				}
			}
			if err := errors.Join(errs...); err != nil {
				// rmi -f of missing images reports them but succeeds.
				if !force || fatal {
					return err
				}
				fmt.Fprintln(c.err, err)
			}
			return nil
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "Force removal of the image")
	f.BoolVar(&noPrune, "no-prune", false, "Do not delete untagged parents")
	return cmd
}

type importOptions struct {
	source    string
	reference string
	changes   opts.ListOpts
	message   string
	platform  string
}

func (c *CLI) newImportCommand() *cobra.Command {
	o := importOptions{changes: opts.NewListOpts(nil)}
	cmd := &cobra.Command{
		Use:   "import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]",
		Short: "Import the contents from a tarball to create a filesystem image",
		Args:  requiresRangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.source = args[0]
			if len(args) > 1 {
				o.reference = args[1]
			}
			return c.runImport(cmd.Context(), &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.VarP(&o.changes, "change", "c", "Apply Dockerfile instruction to the created image")
	f.StringVarP(&o.message, "message", "m", "", "Set commit message for imported image")
	f.StringVar(&o.platform, "platform", os.Getenv("DOCKER_DEFAULT_PLATFORM"), "Set platform if server is multi-platform capable")
	return cmd
}

// runImport sends the tarball in the request body (stdin for "-", a local
// file streamed from disk) or lets the engine fetch a URL.
func (c *CLI) runImport(ctx context.Context, o *importOptions) error {
	var source client.ImageImportSource
	switch {
	case o.source == "-":
		source = client.ImageImportSource{Source: c.in, SourceName: "-"}
	case strings.HasPrefix(o.source, "https://"), strings.HasPrefix(o.source, "http://"):
		source = client.ImageImportSource{SourceName: o.source}
	default:
		f, err := os.Open(o.source)
		if err != nil {
			return err
		}
		defer f.Close()
		source = client.ImageImportSource{Source: f, SourceName: "-"}
	}
	var platform ocispec.Platform
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		platform = p
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	body, err := api.ImageImport(ctx, source, o.reference, client.ImageImportOptions{
		Message:  o.message,
		Changes:  o.changes.GetSlice(),
		Platform: platform,
	})
	if err != nil {
		return err
	}
	defer body.Close()
	return renderJSONMessages(body, c.out, nil)
}

// isDangling is docker's list-side test: an image without a tag.
func isDangling(img image.Summary) bool {
	if len(img.RepoTags) == 0 {
		return true
	}
	return formatter.IsDangling(img)
}
