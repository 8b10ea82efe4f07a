package cli

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

// indexServer is the key docker uses for Docker Hub in config.json.
const indexServer = "https://index.docker.io/v1/"

// registryKey is the config.json key for a registry host.
func registryKey(host string) string {
	if host == "" || host == "docker.io" || host == "index.docker.io" || host == "registry-1.docker.io" {
		return indexServer
	}
	return host
}

// encodedAuthFor reads ~/.docker/config.json (or $DOCKER_CONFIG) for the
// credentials of ref's registry and encodes them for X-Registry-Auth.
func encodedAuthFor(ref string) string {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return ""
	}
	cf, err := config.Load(config.Dir())
	if err != nil {
		return ""
	}
	key := registryKey(reference.Domain(n))
	ac, err := cf.GetAuthConfig(key)
	if err != nil || (ac.Username == "" && ac.IdentityToken == "" && ac.Auth == "") {
		return ""
	}
	return encodeAuth(registry.AuthConfig{
		Username: ac.Username, Password: ac.Password, Auth: ac.Auth, ServerAddress: key,
		IdentityToken: ac.IdentityToken, RegistryToken: ac.RegistryToken,
	})
}

// encodeAuth is the X-Registry-Auth header: base64url JSON, as the daemon's
// registry.DecodeAuth reads it. (The CLI does not link the registry client.)
func encodeAuth(a registry.AuthConfig) string {
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

// allRegistryAuths is every credential in ~/.docker/config.json (or
// $DOCKER_CONFIG), credential helpers included, for X-Registry-Config.
func allRegistryAuths() map[string]registry.AuthConfig {
	cf, err := config.Load(config.Dir())
	if err != nil {
		return nil
	}
	all, err := cf.GetAllCredentials()
	if err != nil || len(all) == 0 {
		return nil
	}
	out := make(map[string]registry.AuthConfig, len(all))
	for k, a := range all {
		out[k] = registry.AuthConfig{
			Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: a.ServerAddress,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		}
	}
	return out
}

// showProgress renders the daemon's JSON progress stream: bars on a
// terminal, plain lines otherwise.
func (c *CLI) showProgress(in io.Reader, quiet bool) error {
	if quiet {
		return displayJSONMessages(in, io.Discard)
	}
	return renderJSONMessages(in, c.out, nil)
}

type pullOptions struct {
	quiet    bool
	all      bool
	platform string
}

func (c *CLI) newPullCommand() *cobra.Command {
	var o pullOptions
	cmd := &cobra.Command{
		Use:   "pull [OPTIONS] NAME[:TAG|@DIGEST]",
		Short: "Download an image from a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runPull(cmd.Context(), args[0], &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	f.BoolVarP(&o.all, "all-tags", "a", false, "Download all tagged images in the repository")
	f.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	return cmd
}

func (c *CLI) runPull(ctx context.Context, ref string, o *pullOptions) error {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("invalid reference format: %s", ref)
	}
	if o.all {
		if _, ok := n.(reference.NamedTagged); ok {
			return errors.New("tag can't be used with --all-tags/-a")
		}
		if _, ok := n.(reference.Digested); ok {
			return errors.New("digest can't be used with --all-tags/-a")
		}
	} else {
		n = reference.TagNameOnly(n)
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	opts := client.ImagePullOptions{All: o.all, RegistryAuth: encodedAuthFor(n.String())}
	if o.platform != "" {
		p, err := parsePlatform(o.platform)
		if err != nil {
			return err
		}
		opts.Platforms = []ocispec.Platform{p}
	}
	resp, err := api.ImagePull(ctx, reference.FamiliarString(n), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := c.showProgress(resp, o.quiet); err != nil {
		return err
	}
	fmt.Fprintln(c.out, n.String())
	return nil
}

type pushOptions struct {
	quiet bool
	all   bool
}

func (c *CLI) newPushCommand() *cobra.Command {
	var o pushOptions
	cmd := &cobra.Command{
		Use:   "push [OPTIONS] NAME[:TAG]",
		Short: "Upload an image to a registry",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return c.runPush(cmd.Context(), args[0], &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress verbose output")
	f.BoolVarP(&o.all, "all-tags", "a", false, "Push all tags of an image to the repository")
	return cmd
}

func (c *CLI) runPush(ctx context.Context, ref string, o *pushOptions) error {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("invalid reference format: %s", ref)
	}
	if _, tagged := n.(reference.Tagged); !tagged && !o.all {
		n = reference.TagNameOnly(n)
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	resp, err := api.ImagePush(ctx, reference.FamiliarString(n), client.ImagePushOptions{
		All: o.all, RegistryAuth: encodedAuthFor(n.String()),
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	if err := c.showProgress(resp, o.quiet); err != nil {
		return err
	}
	if o.quiet {
		fmt.Fprintln(c.out, reference.FamiliarString(n))
	}
	return nil
}

type loginOptions struct {
	user, password string
	passwordStdin  bool
}

func (c *CLI) newLoginCommand() *cobra.Command {
	var o loginOptions
	cmd := &cobra.Command{
		Use:   "login [OPTIONS] [SERVER]",
		Short: "Authenticate to a registry",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			return c.runLogin(cmd.Context(), server, &o)
		},
		DisableFlagsInUseLine: true,
	}
	f := cmd.Flags()
	f.StringVarP(&o.user, "username", "u", "", "Username")
	f.StringVarP(&o.password, "password", "p", "", "Password or Personal Access Token (PAT)")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "Take the Password or Personal Access Token (PAT) from stdin")
	return cmd
}

func serverKey(server string) string {
	s := strings.TrimSuffix(server, "/")
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
	}
	s, _, _ = strings.Cut(s, "/")
	return registryKey(s)
}

func (c *CLI) runLogin(ctx context.Context, server string, o *loginOptions) error {
	if o.password != "" && o.passwordStdin {
		return errors.New("--password and --password-stdin are mutually exclusive")
	}
	if o.passwordStdin {
		if o.user == "" {
			return errors.New("must provide --username with --password-stdin")
		}
		b, err := io.ReadAll(bufio.NewReader(c.in))
		if err != nil {
			return err
		}
		o.password = strings.TrimRight(string(b), "\r\n")
	}
	key := serverKey(server)
	cf, err := config.Load(config.Dir())
	if err != nil {
		return err
	}
	if o.user == "" || o.password == "" {
		// Reuse what is stored, as docker does without flags.
		ac, _ := cf.GetAuthConfig(key)
		if o.user == "" {
			o.user = ac.Username
		}
		if o.password == "" {
			o.password = ac.Password
		}
	}
	if o.user == "" || o.password == "" {
		return errors.New("Error: Cannot perform an interactive login from a non TTY device; use --username and --password or --password-stdin")
	}
	if !o.passwordStdin && o.password != "" {
		fmt.Fprintln(c.err, "WARNING! Using --password via the CLI is insecure. Use --password-stdin.")
	}
	api, err := c.Client(ctx)
	if err != nil {
		return err
	}
	res, err := api.RegistryLogin(ctx, client.RegistryLoginOptions{Username: o.user, Password: o.password, ServerAddress: key})
	if err != nil {
		return err
	}
	ac := types.AuthConfig{Username: o.user, Password: o.password, ServerAddress: key}
	if res.Auth.IdentityToken != "" {
		ac.Password, ac.IdentityToken = "", res.Auth.IdentityToken
	}
	if err := storeCredentials(cf, ac); err != nil {
		return fmt.Errorf("error saving credentials: %w", err)
	}
	fmt.Fprintln(c.out, "Login Succeeded")
	return nil
}

func storeCredentials(cf *configfile.ConfigFile, ac types.AuthConfig) error {
	if err := cf.GetCredentialsStore(ac.ServerAddress).Store(ac); err != nil {
		return err
	}
	return cf.Save()
}

func (c *CLI) newLogoutCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "logout [SERVER]",
		Short: "Log out from a registry",
		Args:  requiresMaxArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			server := ""
			if len(args) > 0 {
				server = args[0]
			}
			key := serverKey(server)
			cf, err := config.Load(config.Dir())
			if err != nil {
				return err
			}
			if _, ok := cf.AuthConfigs[key]; !ok {
				fmt.Fprintf(c.out, "Not logged in to %s\n", key)
				return nil
			}
			fmt.Fprintf(c.out, "Removing login credentials for %s\n", key)
			if err := cf.GetCredentialsStore(key).Erase(key); err != nil {
				return fmt.Errorf("could not erase credentials: %w", err)
			}
			return cf.Save()
		},
		DisableFlagsInUseLine: true,
	}
}
