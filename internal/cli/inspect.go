package cli

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"

	"github.com/skiff-dev/skiff/internal/cli/formatter"
)

type inspectOptions struct {
	format     string
	objectType string
	size       bool
}

// The object types `inspect --type` accepts; this engine has containers and
// images.
var inspectTypes = []string{"container", "image"}

func (c *CLI) newInspectCommand() *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] NAME|ID [NAME|ID...]",
		Short: "Return low-level information on Docker objects",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch o.objectType {
			case "":
				if cmd.Flags().Changed("type") {
					return fmt.Errorf(`type is empty: must be one of "%s"`, strings.Join(inspectTypes, `", "`))
				}
			case "container", "image":
			default:
				return fmt.Errorf(`unknown type: %q: must be one of "%s"`, o.objectType, strings.Join(inspectTypes, `", "`))
			}
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return formatter.Inspect(c.out, args, o.format, c.inspectAny(cmd.Context(), api, o))
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&o.format, "format", "f", "", "Format output using a custom template")
	f.StringVar(&o.objectType, "type", "", "Only inspect objects of the given type")
	f.BoolVarP(&o.size, "size", "s", false, "Display total file sizes if the type is container")
	return cmd
}

// inspectAny looks a reference up as a container, then as an image.
func (c *CLI) inspectAny(ctx context.Context, api client.APIClient, o inspectOptions) formatter.GetRefFunc {
	return func(ref string) (any, []byte, error) {
		if o.objectType == "" || o.objectType == "container" {
			v, raw, err := inspectContainer(ctx, api, ref, o.size)
			if err == nil || o.objectType != "" || !skippable(err) {
				return v, raw, err
			}
		}
		v, raw, err := inspectImage(ctx, api, ref)
		if err == nil && o.size {
			fmt.Fprintln(c.err, "WARNING: --size ignored for image")
		}
		if err != nil && o.objectType == "" && skippable(err) {
			return nil, nil, fmt.Errorf("Error: No such object: %s", ref)
		}
		return v, raw, err
	}
}

func skippable(err error) bool {
	return cerrdefs.IsNotFound(err) || strings.Contains(err.Error(), "invalid reference format")
}

func inspectContainer(ctx context.Context, api client.APIClient, ref string, size bool) (any, []byte, error) {
	res, err := api.ContainerInspect(ctx, ref, client.ContainerInspectOptions{Size: size})
	if err != nil {
		return nil, nil, err
	}
	return &res.Container, res.Raw, nil
}

func inspectImage(ctx context.Context, api client.APIClient, ref string) (any, []byte, error) {
	var buf bytes.Buffer
	res, err := api.ImageInspect(ctx, ref, client.ImageInspectWithRawResponse(&buf))
	if err != nil {
		return nil, nil, err
	}
	return &res.InspectResponse, buf.Bytes(), nil
}

func (c *CLI) newContainerInspectCommand() *cobra.Command {
	var o inspectOptions
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Display detailed information on one or more containers",
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return formatter.Inspect(c.out, args, o.format, func(ref string) (any, []byte, error) {
				return inspectContainer(cmd.Context(), api, ref, o.size)
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&o.format, "format", "f", "", "Format output using a custom template")
	cmd.Flags().BoolVarP(&o.size, "size", "s", false, "Display total file sizes")
	return cmd
}

func (c *CLI) newImageInspectCommand() *cobra.Command {
	return c.newObjectInspectCommand("IMAGE", "images", inspectImage)
}

// newObjectInspectCommand is `KIND inspect [-f FORMAT] NAME...` for objects
// whose inspect takes no other option; fetch returns the typed object and
// its raw JSON.
func (c *CLI) newObjectInspectCommand(arg, plural string, fetch func(ctx context.Context, api client.APIClient, ref string) (any, []byte, error)) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "inspect [OPTIONS] " + arg + " [" + arg + "...]",
		Short: "Display detailed information on one or more " + plural,
		Args:  requiresMinArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, err := c.Client(cmd.Context())
			if err != nil {
				return err
			}
			return formatter.Inspect(c.out, args, format, func(ref string) (any, []byte, error) {
				return fetch(cmd.Context(), api, ref)
			})
		},
		DisableFlagsInUseLine: true,
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template")
	return cmd
}
