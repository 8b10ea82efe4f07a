package registry

// Per-registry hosts configuration in containerd's hosts.toml format
// (containerd's docs/hosts.md): a directory per registry host namespace
// under a root (skiff's default /etc/skiff/certs.d), each with a
// hosts.toml listing the hosts to try in order (mirrors, rewrites) and the
// namespace's own server last; without a hosts.toml, Docker's certificate
// files in that directory (*.crt CAs, *.cert/*.key client pairs) apply to
// the namespace's registry. A namespace without a directory of its own
// uses _default. The files are read at every pull and push, so changes
// need no daemon restart (as with containerd).

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Capability is what a host may be used for.
type Capability uint8

const (
	// CapPull: fetch manifests by digest and blobs.
	CapPull Capability = 1 << iota
	// CapResolve: turn a tag into a digest (a trusted operation).
	CapResolve
	// CapPush: upload.
	CapPush

	capAll = CapPull | CapResolve | CapPush
)

// Host is one endpoint of a registry namespace.
type Host struct {
	// Scheme is "https" or "http"; Host is host[:port]. Both are empty
	// for the namespace's own registry when hosts.toml names no server:
	// the client then talks to it as it would without configuration.
	Scheme, Host string
	// Path is the API root, "/v2" unless the URL has a path of its own
	// ("/prefix/v2") or override_path makes the URL's path the root.
	Path string
	Caps Capability
	// CA files, client certificate/key pairs (an empty key: the key is in
	// the certificate's file), skip_verify (nil: not set).
	CA         []string
	Client     [][2]string
	SkipVerify *bool
	Header     http.Header
	// DialTimeout bounds connecting (0: the transport's default).
	DialTimeout time.Duration
}

// hostFile is one table of a hosts.toml: the root (with server) or a
// [host."URL"] entry.
type hostFile struct {
	Capabilities []string       `toml:"capabilities"`
	CA           any            `toml:"ca"`
	Client       any            `toml:"client"`
	SkipVerify   *bool          `toml:"skip_verify"`
	Header       map[string]any `toml:"header"`
	OverridePath bool           `toml:"override_path"`
	DialTimeout  string         `toml:"dial_timeout"`
}

// hostDirs lists the directories tried for namespace ns under root, first
// match wins: "host_port_" (containerd's form for a port), "host:port",
// then "_default".
func hostDirs(root, ns string) []string {
	var dirs []string
	if i := strings.LastIndex(ns, ":"); i > 0 {
		dirs = append(dirs, filepath.Join(root, ns[:i]+"_"+ns[i+1:]+"_"))
	}
	return append(dirs, filepath.Join(root, ns), filepath.Join(root, "_default"))
}

// LoadHosts returns the hosts to use for registry namespace ns (docker.io,
// registry.k8s.io, 127.0.0.1:5000) from the configuration under root, in
// the order to try them; the last is the namespace's server. With no
// configuration the answer is the server alone, with every capability.
func LoadHosts(root, ns string) ([]Host, error) {
	if root == "" {
		return []Host{{Path: "/v2", Caps: capAll}}, nil
	}
	for _, dir := range hostDirs(root, ns) {
		fi, err := os.Stat(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("registry hosts configuration: %w", err)
		}
		if !fi.IsDir() {
			continue
		}
		return loadHostDir(dir)
	}
	return []Host{{Path: "/v2", Caps: capAll}}, nil
}

func loadHostDir(dir string) ([]Host, error) {
	file := filepath.Join(dir, "hosts.toml")
	b, err := os.ReadFile(file)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("registry hosts configuration: %w", err)
	}
	if len(b) == 0 {
		return loadCertFiles(dir)
	}
	hosts, err := ParseHosts(dir, b)
	if err != nil {
		return nil, errdefs.Invalid("registry hosts configuration %s: %v", file, err)
	}
	return hosts, nil
}

// ParseHosts parses a hosts.toml; relative paths in it are relative to dir.
func ParseHosts(dir string, b []byte) ([]Host, error) {
	var c struct {
		hostFile
		Server string              `toml:"server"`
		Hosts  map[string]hostFile `toml:"host"`
	}
	md, err := toml.Decode(string(b), &c)
	if err != nil {
		return nil, err
	}
	// The [host."URL"] tables in the order the file lists them: that is
	// the order they are tried in.
	var order []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "host" && !seen[k[1]] {
			seen[k[1]] = true
			order = append(order, k[1])
		}
	}
	var hosts []Host
	for _, u := range order {
		h, err := parseHost(u, dir, c.Hosts[u])
		if err != nil {
			return nil, fmt.Errorf("host %q: %w", u, err)
		}
		hosts = append(hosts, h)
	}
	h, err := parseHost(c.Server, dir, c.hostFile)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return append(hosts, h), nil
}

func parseHost(server, dir string, f hostFile) (Host, error) {
	h := Host{Path: "/v2", SkipVerify: f.SkipVerify}
	if server != "" {
		if !strings.HasPrefix(server, "http://") && !strings.HasPrefix(server, "https://") {
			server = "https://" + server
		}
		u, err := url.Parse(server)
		if err != nil {
			return Host{}, err
		}
		if u.Host == "" {
			return Host{}, fmt.Errorf("no host in %q", server)
		}
		h.Scheme, h.Host = u.Scheme, u.Host
		p := ""
		if u.Path != "" && u.Path != "/" {
			p = path.Clean(u.Path)
		}
		switch {
		case f.OverridePath:
			h.Path = p
		case strings.HasSuffix(p, "/v2"):
			h.Path = p
		default:
			h.Path = p + "/v2"
		}
	}
	if len(f.Capabilities) == 0 {
		h.Caps = capAll
	}
	for _, c := range f.Capabilities {
		switch strings.ToLower(c) {
		case "pull":
			h.Caps |= CapPull
		case "resolve":
			h.Caps |= CapResolve
		case "push":
			h.Caps |= CapPush
		case "referrers":
			// containerd's referrers API; skiff has no use for it.
		default:
			return Host{}, fmt.Errorf("unknown capability %q", c)
		}
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(dir, p)
	}
	switch ca := f.CA.(type) {
	case nil:
	case string:
		h.CA = []string{abs(ca)}
	case []any:
		for _, v := range ca {
			s, ok := v.(string)
			if !ok {
				return Host{}, fmt.Errorf("ca: %v is not a path", v)
			}
			h.CA = append(h.CA, abs(s))
		}
	default:
		return Host{}, fmt.Errorf("ca: %v is neither a path nor a list of paths", ca)
	}
	switch cl := f.Client.(type) {
	case nil:
	case string:
		h.Client = [][2]string{{abs(cl), ""}}
	case []any:
		for _, v := range cl {
			switch p := v.(type) {
			case string:
				h.Client = append(h.Client, [2]string{abs(p), ""})
			case []any:
				if len(p) != 2 {
					return Host{}, fmt.Errorf("client: %v is not a [certificate, key] pair", p)
				}
				cert, ok1 := p[0].(string)
				key, ok2 := p[1].(string)
				if !ok1 || !ok2 {
					return Host{}, fmt.Errorf("client: %v is not a [certificate, key] pair", p)
				}
				if key != "" {
					key = abs(key)
				}
				h.Client = append(h.Client, [2]string{abs(cert), key})
			default:
				return Host{}, fmt.Errorf("client: %v is neither a path nor a pair", v)
			}
		}
	default:
		return Host{}, fmt.Errorf("client: %v is neither a path nor a list", cl)
	}
	for k, v := range f.Header {
		if h.Header == nil {
			h.Header = http.Header{}
		}
		switch v := v.(type) {
		case string:
			h.Header.Add(k, v)
		case []any:
			for _, s := range v {
				str, ok := s.(string)
				if !ok {
					return Host{}, fmt.Errorf("header %s: %v is not a string", k, s)
				}
				h.Header.Add(k, str)
			}
		default:
			return Host{}, fmt.Errorf("header %s: %v is neither a string nor a list", k, v)
		}
	}
	if f.DialTimeout != "" {
		d, err := time.ParseDuration(f.DialTimeout)
		if err != nil {
			return Host{}, fmt.Errorf("dial_timeout: %v", err)
		}
		h.DialTimeout = d
	}
	return h, nil
}

// loadCertFiles is Docker's certs.d layout: every *.crt is a CA, every
// *.cert a client certificate with its key in the *.key of the same name.
func loadCertFiles(dir string) ([]Host, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("registry hosts configuration: %w", err)
	}
	h := Host{Path: "/v2", Caps: capAll}
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		n := e.Name()
		switch {
		case strings.HasSuffix(n, ".crt"):
			h.CA = append(h.CA, filepath.Join(dir, n))
		case strings.HasSuffix(n, ".cert"):
			key := filepath.Join(dir, strings.TrimSuffix(n, ".cert")+".key")
			if _, err := os.Stat(key); err != nil {
				return nil, errdefs.Invalid("registry hosts configuration: missing key %s for client certificate %s", key, filepath.Join(dir, n))
			}
			h.Client = append(h.Client, [2]string{filepath.Join(dir, n), key})
		case strings.HasSuffix(n, ".key"):
			cert := filepath.Join(dir, strings.TrimSuffix(n, ".key")+".cert")
			if _, err := os.Stat(cert); err != nil {
				return nil, errdefs.Invalid("registry hosts configuration: missing client certificate %s for key %s", cert, filepath.Join(dir, n))
			}
		}
	}
	return []Host{h}, nil
}

// tlsConfigured reports whether h sets anything TLS.
func (h Host) tlsConfigured() bool {
	return len(h.CA) > 0 || len(h.Client) > 0 || h.SkipVerify != nil
}

// transportCache keeps one transport per TLS and dial setting (and the
// files' modification times), so connections are reused across pulls
// while an edited certificate takes effect.
var transportCache sync.Map // string -> *http.Transport

// transportFor returns base with h's TLS and dial settings applied.
func transportFor(base http.RoundTripper, h Host) (http.RoundTripper, error) {
	if !h.tlsConfigured() && h.DialTimeout == 0 {
		return base, nil
	}
	bt, ok := base.(*http.Transport)
	if !ok {
		// A test's own transport: it decides TLS itself.
		return base, nil
	}
	key := fmt.Sprintf("%p|%v|%v|%v|", bt, h.SkipVerify != nil && *h.SkipVerify, h.DialTimeout, h.SkipVerify == nil)
	for _, f := range h.CA {
		key += stamp(f)
	}
	key += "|"
	for _, p := range h.Client {
		key += stamp(p[0]) + stamp(p[1])
	}
	if t, ok := transportCache.Load(key); ok {
		return t.(*http.Transport), nil
	}
	t := bt.Clone()
	if t.TLSClientConfig == nil {
		t.TLSClientConfig = &tls.Config{}
	}
	if h.SkipVerify != nil {
		t.TLSClientConfig.InsecureSkipVerify = *h.SkipVerify
	}
	if len(h.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range h.CA {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, errdefs.Invalid("registry CA certificate: %v", err)
			}
			if !pool.AppendCertsFromPEM(b) {
				return nil, errdefs.Invalid("registry CA certificate %s: no PEM certificate in it", f)
			}
		}
		t.TLSClientConfig.RootCAs = pool
	}
	for _, p := range h.Client {
		certPEM, err := os.ReadFile(p[0])
		if err != nil {
			return nil, errdefs.Invalid("registry client certificate: %v", err)
		}
		keyPEM := certPEM
		if p[1] != "" {
			if keyPEM, err = os.ReadFile(p[1]); err != nil {
				return nil, errdefs.Invalid("registry client key: %v", err)
			}
		}
		cert, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			return nil, errdefs.Invalid("registry client certificate %s: %v", p[0], err)
		}
		t.TLSClientConfig.Certificates = append(t.TLSClientConfig.Certificates, cert)
	}
	if h.DialTimeout > 0 {
		t.DialContext = (&net.Dialer{Timeout: h.DialTimeout, KeepAlive: 30 * time.Second}).DialContext
	}
	actual, _ := transportCache.LoadOrStore(key, t)
	return actual.(*http.Transport), nil
}

func stamp(f string) string {
	if f == "" {
		return ";"
	}
	fi, err := os.Stat(f)
	if err != nil {
		return f + ";"
	}
	return fmt.Sprintf("%s@%d.%d;", f, fi.ModTime().UnixNano(), fi.Size())
}

// hostTransport sends the distribution API's requests for one configured
// host: "/v2/..." is moved under the host's API root (a mirror path or
// override_path), a mirror's GET and HEAD requests carry ?ns=NAMESPACE
// (as containerd sends them, so pull-through caches know the upstream),
// and the host's headers are added.
type hostTransport struct {
	next   http.RoundTripper
	host   string // host[:port] the requests go to
	path   string // API root replacing "/v2"
	ns     string // the namespace, when host is a mirror
	header http.Header
}

func (t *hostTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.host) {
		// A token server or a redirect elsewhere (blob storage).
		return t.next.RoundTrip(req)
	}
	p := req.URL.Path
	rewrite := t.path != "/v2" && (p == "/v2" || strings.HasPrefix(p, "/v2/"))
	addNS := t.ns != "" && (req.Method == http.MethodGet || req.Method == http.MethodHead) && strings.HasPrefix(p, "/v2/") && p != "/v2/"
	if !rewrite && !addNS && len(t.header) == 0 {
		return t.next.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	if rewrite {
		np := t.path + strings.TrimPrefix(p, "/v2")
		if np == "" {
			np = "/"
		}
		r.URL.Path, r.URL.RawPath = np, ""
	}
	if addNS {
		q := r.URL.Query()
		q.Set("ns", t.ns)
		r.URL.RawQuery = q.Encode()
	}
	for k, vs := range t.header {
		if r.Header.Get(k) == "" {
			for _, v := range vs {
				r.Header.Add(k, v)
			}
		}
	}
	return t.next.RoundTrip(r)
}
