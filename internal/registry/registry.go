// Package registry talks to OCI/Docker registries: it resolves a reference
// to one image manifest (picking a platform from a multi-arch index),
// streams blobs, pushes images and checks credentials. It is a thin layer
// over go-containerregistry's remote package that adds what skiff needs:
// Docker's reference normalization, insecure registries and docker.io
// mirrors, the X-Registry-Auth credentials, and errdefs kinds on errors.
//
// It stores nothing: callers verify and keep what they fetch.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Options configure a Client.
type Options struct {
	// Insecure lists registries (host[:port] or CIDR) spoken to over plain
	// HTTP (or HTTPS without certificate checks). Loopback registries
	// always are, as with Docker.
	Insecure []string
	// Mirrors are tried, in order, before docker.io for docker.io names
	// ("https://mirror.example" or "host:port").
	Mirrors []string
	// HostsDir is the root of the per-registry hosts configuration
	// (containerd's hosts.toml layout, hosts.go); "" means none.
	HostsDir string
	// Transport is the HTTP transport; default http.DefaultTransport.
	Transport http.RoundTripper
}

// Client talks to registries. It is safe for concurrent use.
type Client struct {
	opts Options
	nets []*net.IPNet
}

// New returns a Client.
func New(opts Options) *Client {
	c := &Client{opts: opts}
	for _, s := range opts.Insecure {
		if _, n, err := net.ParseCIDR(s); err == nil {
			c.nets = append(c.nets, n)
		}
	}
	if c.opts.Transport == nil {
		c.opts.Transport = http.DefaultTransport
	}
	return c
}

// Auth is what a client sends in X-Registry-Auth (Docker's AuthConfig).
type Auth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64 "user:password"
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DecodeAuth decodes an X-Registry-Auth header (base64url JSON; an empty
// header means anonymous).
func DecodeAuth(header string) (Auth, error) {
	var a Auth
	if header == "" {
		return a, nil
	}
	raw, err := base64.URLEncoding.DecodeString(header)
	if err != nil {
		// Some clients send standard or unpadded base64.
		if raw, err = base64.RawURLEncoding.DecodeString(header); err != nil {
			if raw, err = base64.StdEncoding.DecodeString(header); err != nil {
				return a, errdefs.Invalid("invalid X-Registry-Auth header: %v", err)
			}
		}
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return a, errdefs.Invalid("invalid X-Registry-Auth header: %v", err)
	}
	return a, nil
}

// EncodeAuth is the X-Registry-Auth header for a.
func EncodeAuth(a Auth) string {
	b, _ := json.Marshal(a)
	return base64.URLEncoding.EncodeToString(b)
}

func (a Auth) authenticator() authn.Authenticator {
	if a == (Auth{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{
		Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
	})
}

// insecure reports whether host (host[:port]) is to be spoken to over HTTP.
func (c *Client) insecure(host string) bool {
	for _, s := range c.opts.Insecure {
		if strings.EqualFold(s, host) {
			return true
		}
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if ip := net.ParseIP(h); ip != nil {
		if ip.IsLoopback() {
			return true
		}
		for _, n := range c.nets {
			if n.Contains(ip) {
				return true
			}
		}
	}
	return h == "localhost"
}

// Named is a parsed reference: Docker's normalized form, and the registry
// host and repository path it lives at.
type Named struct {
	reference.Named        // docker.io/library/busybox:latest
	Host            string // docker.io, 127.0.0.1:5000
	Path            string // library/busybox
}

// Parse normalizes ref the way Docker does ("busybox" is
// docker.io/library/busybox:latest).
func Parse(ref string) (Named, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Named{}, errdefs.Invalid("invalid reference format: %s", ref)
	}
	n = reference.TagNameOnly(n)
	return Named{Named: n, Host: reference.Domain(n), Path: reference.Path(n)}, nil
}

// endpoint is one place a repository can be reached: the repository as
// go-containerregistry names it and the transport that gets there.
type endpoint struct {
	repo name.Repository
	rt   http.RoundTripper
}

// endpoints lists where n can be reached for an operation that needs caps,
// in the order to try them: the hosts of n's hosts configuration, then
// for docker.io names the daemon's registry-mirrors, then n's server
// (unless the configuration takes that capability from it).
func (c *Client) endpoints(n Named, caps Capability) ([]endpoint, error) {
	hosts, err := LoadHosts(c.opts.HostsDir, n.Host)
	if err != nil {
		return nil, err
	}
	var out []endpoint
	add := func(h Host) error {
		if h.Caps&caps != caps {
			return nil
		}
		ep, err := c.endpoint(n, h)
		if err != nil {
			return err
		}
		out = append(out, ep)
		return nil
	}
	for _, h := range hosts[:len(hosts)-1] {
		if err := add(h); err != nil {
			return nil, err
		}
	}
	if n.Host == "docker.io" && caps&CapPush == 0 {
		for _, m := range c.opts.Mirrors {
			host := m
			if i := strings.Index(host, "://"); i >= 0 {
				host = host[i+3:]
			}
			host = strings.TrimSuffix(host, "/")
			if r, err := c.repo(host, n.Path); err == nil {
				out = append(out, endpoint{repo: r, rt: c.opts.Transport})
			}
		}
	}
	if err := add(hosts[len(hosts)-1]); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, errdefs.NotFound("no registry host of %s is configured for %s (hosts configuration in %s)", n.Host, capString(caps), c.opts.HostsDir)
	}
	return out, nil
}

func capString(caps Capability) string {
	switch {
	case caps&CapPush != 0:
		return "push"
	case caps&CapResolve != 0:
		return "resolve"
	}
	return "pull"
}

// endpoint is n's repository at host h.
func (c *Client) endpoint(n Named, h Host) (endpoint, error) {
	rt, err := transportFor(c.opts.Transport, h)
	if err != nil {
		return endpoint{}, err
	}
	host := h.Host
	if host == "" {
		// The namespace's own registry, as skiff talks to it without
		// configuration (loopback and insecure-registries over HTTP).
		host = n.Host
		r, err := c.repo(host, n.Path)
		if err != nil {
			return endpoint{}, err
		}
		if h.Path != "/v2" || len(h.Header) > 0 {
			rt = &hostTransport{next: rt, host: r.RegistryStr(), path: h.Path, header: h.Header}
		}
		return endpoint{repo: r, rt: rt}, nil
	}
	var opts []name.Option
	if h.Scheme == "http" {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(host+"/"+n.Path, opts...)
	if err != nil {
		return endpoint{}, errdefs.Invalid("invalid reference format: %s/%s: %v", host, n.Path, err)
	}
	ns := ""
	if !strings.EqualFold(host, n.Host) {
		ns = n.Host
	}
	if h.Path != "/v2" || ns != "" || len(h.Header) > 0 {
		rt = &hostTransport{next: rt, host: r.RegistryStr(), path: h.Path, ns: ns, header: h.Header}
	}
	return endpoint{repo: r, rt: rt}, nil
}

func (c *Client) repo(host, path string) (name.Repository, error) {
	var opts []name.Option
	if c.insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.NewRepository(host+"/"+path, opts...)
	if err != nil {
		return name.Repository{}, errdefs.Invalid("invalid reference format: %s/%s: %v", host, path, err)
	}
	return r, nil
}

func (c *Client) remoteOpts(ctx context.Context, auth Auth, rt http.RoundTripper) []remote.Option {
	return []remote.Option{
		remote.WithContext(ctx),
		remote.WithAuth(auth.authenticator()),
		remote.WithTransport(rt),
		remote.WithUserAgent("skiff"),
	}
}

// Login checks the credentials against server's registry (as `docker
// login` does: GET /v2/ with the basic or token flow the registry asks
// for) and returns the identity token the registry handed out, if any.
func (c *Client) Login(ctx context.Context, server string, auth Auth) (string, error) {
	host := server
	if i := strings.Index(host, "://"); i >= 0 {
		host = host[i+3:]
	}
	host, _, _ = strings.Cut(host, "/")
	if host == "" || host == "index.docker.io" {
		host = "docker.io"
	}
	if _, err := name.NewRegistry(host); err != nil {
		return "", errdefs.Invalid("invalid registry address %q: %v", server, err)
	}
	// The host that pushes go to (hosts configuration), with its TLS.
	eps, err := c.endpoints(Named{Host: host, Path: "login"}, CapPush)
	if err != nil {
		return "", err
	}
	reg, rt := eps[0].repo.Registry, eps[0].rt
	if auth.Username == "" && auth.Auth == "" && auth.IdentityToken == "" {
		return "", errdefs.Invalid("login: username and password are required")
	}
	// Ask for a scope-less token (bearer registries) or send basic
	// credentials, then check that /v2/ accepts them.
	t, err := transport.NewWithContext(ctx, reg, auth.authenticator(), rt, nil)
	if err != nil {
		return "", wrapErr(err, "login to "+host)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s://%s/v2/", reg.Scheme(), reg.RegistryStr()), nil)
	if err != nil {
		return "", err
	}
	resp, err := (&http.Client{Transport: t}).Do(req)
	if err != nil {
		return "", wrapErr(err, "login to "+host)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return "", errdefs.Forbidden("login to %s: unauthorized: incorrect username or password", host)
	}
	if resp.StatusCode >= 300 {
		return "", errdefs.System("login to %s: unexpected status %s", host, resp.Status)
	}
	return "", nil
}

// wrapErr gives registry errors an errdefs kind: unknown names and
// manifests are NotFound, refused credentials Forbidden, unreachable
// registries Unavailable.
func wrapErr(err error, what string) error {
	if err == nil {
		return nil
	}
	if errdefs.KindOf(err) != errdefs.KindUnknown {
		return err
	}
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusNotFound:
			return errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("%s: %w", what, err))
		case http.StatusUnauthorized, http.StatusForbidden:
			return errdefs.Wrap(errdefs.KindForbidden, fmt.Errorf("%s: %w", what, err))
		}
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode, transport.BlobUnknownErrorCode:
				return errdefs.Wrap(errdefs.KindNotFound, fmt.Errorf("%s: %w", what, err))
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return errdefs.Wrap(errdefs.KindForbidden, fmt.Errorf("%s: %w", what, err))
			}
		}
		return errdefs.Wrap(errdefs.KindSystem, fmt.Errorf("%s: %w", what, err))
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return errdefs.Wrap(errdefs.KindUnavailable, fmt.Errorf("%s: %w", what, err))
	}
	return fmt.Errorf("%s: %w", what, err)
}
