package registry

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestParseHosts(t *testing.T) {
	yes := true
	for _, tc := range []struct {
		name string
		toml string
		want []Host
		err  string
	}{
		{"empty: the namespace's server", ``, []Host{{Path: "/v2", Caps: capAll}}, ""},
		{"server only", `server = "https://registry.example.com"`,
			[]Host{{Scheme: "https", Host: "registry.example.com", Path: "/v2", Caps: capAll}}, ""},
		{"server without scheme is https", `server = "registry.example.com:5000"`,
			[]Host{{Scheme: "https", Host: "registry.example.com:5000", Path: "/v2", Caps: capAll}}, ""},
		{"hosts in file order, server last", `
server = "https://upstream.example"
[host."https://zz-first.example"]
  capabilities = ["pull", "resolve"]
[host."http://aa-second.example:5000"]
  capabilities = ["pull"]
`, []Host{
			{Scheme: "https", Host: "zz-first.example", Path: "/v2", Caps: CapPull | CapResolve},
			{Scheme: "http", Host: "aa-second.example:5000", Path: "/v2", Caps: CapPull},
			{Scheme: "https", Host: "upstream.example", Path: "/v2", Caps: capAll},
		}, ""},
		{"paths: prefix, /v2 kept, override_path", `
[host."https://m.example/mirror"]
[host."https://n.example/x/v2"]
[host."https://o.example/v2/upstream"]
  override_path = true
[host."https://p.example"]
  override_path = true
`, []Host{
			{Scheme: "https", Host: "m.example", Path: "/mirror/v2", Caps: capAll},
			{Scheme: "https", Host: "n.example", Path: "/x/v2", Caps: capAll},
			{Scheme: "https", Host: "o.example", Path: "/v2/upstream", Caps: capAll},
			{Scheme: "https", Host: "p.example", Path: "", Caps: capAll},
			{Path: "/v2", Caps: capAll},
		}, ""},
		{"tls fields, relative to the directory", `
ca = "root.pem"
skip_verify = true
client = [["/abs/c.cert", "c.key"], ["both.pem", ""]]
[host."https://m.example"]
  ca = ["/etc/a.pem", "b.pem"]
  client = "single.pem"
  dial_timeout = "2s"
  [host."https://m.example".header]
    x-one = "1"
    x-two = ["a", "b"]
`, []Host{
			{Scheme: "https", Host: "m.example", Path: "/v2", Caps: capAll, CA: []string{"/etc/a.pem", "/d/b.pem"},
				Client: [][2]string{{"/d/single.pem", ""}}, DialTimeout: 2 * time.Second,
				Header: http.Header{"X-One": {"1"}, "X-Two": {"a", "b"}}},
			{Path: "/v2", Caps: capAll, CA: []string{"/d/root.pem"}, SkipVerify: &yes,
				Client: [][2]string{{"/abs/c.cert", "/d/c.key"}, {"/d/both.pem", ""}}},
		}, ""},
		{"unknown capability", `[host."https://m.example"]
capabilities = ["pull", "fly"]`, nil, `unknown capability "fly"`},
		{"client pair of three", `client = [["a", "b", "c"]]`, nil, "pair"},
		{"ca of the wrong type", `ca = 3`, nil, "ca:"},
		{"bad dial_timeout", `dial_timeout = "soon"`, nil, "dial_timeout"},
		{"not toml", `server = `, nil, "expected"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseHosts("/d", []byte(tc.toml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("hosts\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestLoadHostsDirectories(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		p := filepath.Join(root, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("reg.example_5000_/hosts.toml", `server = "https://underscore.example"`)
	write("reg.example:5000/hosts.toml", `server = "https://colon.example"`)
	write("other.example:6000/hosts.toml", `server = "https://colon-only.example"`)
	write("_default/hosts.toml", `server = "https://default.example"`)
	// Docker's layout: no hosts.toml, certificate files.
	write("docker.example/ca.crt", "x")
	write("docker.example/client.cert", "x")
	write("docker.example/client.key", "x")
	write("nokey.example/client.cert", "x")

	for _, tc := range []struct{ ns, want string }{
		{"reg.example:5000", "underscore.example"},
		{"other.example:6000", "colon-only.example"},
		{"unlisted.example", "default.example"},
		{"docker.io", "default.example"},
	} {
		hosts, err := LoadHosts(root, tc.ns)
		if err != nil {
			t.Fatal(err)
		}
		if got := hosts[len(hosts)-1].Host; got != tc.want {
			t.Errorf("%s: server %q, want %q", tc.ns, got, tc.want)
		}
	}
	hosts, err := LoadHosts(root, "docker.example")
	if err != nil {
		t.Fatal(err)
	}
	want := []Host{{Path: "/v2", Caps: capAll, CA: []string{filepath.Join(root, "docker.example/ca.crt")},
		Client: [][2]string{{filepath.Join(root, "docker.example/client.cert"), filepath.Join(root, "docker.example/client.key")}}}}
	if !reflect.DeepEqual(hosts, want) {
		t.Fatalf("docker layout\n got %+v\nwant %+v", hosts, want)
	}
	if _, err := LoadHosts(root, "nokey.example"); !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "missing key") {
		t.Fatalf("certificate without key: %v", err)
	}
	write("broken.example/hosts.toml", `[host."https://x"]
capabilities = "pull"`)
	if _, err := LoadHosts(root, "broken.example"); !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "broken.example/hosts.toml") {
		t.Fatalf("broken hosts.toml: %v", err)
	}
	// No root, or no directory at all: the namespace's server alone.
	for _, r := range []string{"", t.TempDir()} {
		hosts, err := LoadHosts(r, "docker.io")
		if err != nil || !reflect.DeepEqual(hosts, []Host{{Path: "/v2", Caps: capAll}}) {
			t.Fatalf("root %q: %+v %v", r, hosts, err)
		}
	}
}

// recorder is an http.Handler in front of a registry that logs the
// requests it gets and can serve the registry under a path prefix.
type recorder struct {
	mu     sync.Mutex
	reqs   []string
	prefix string // stripped before the registry sees the path ("" none)
	next   http.Handler
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	r.reqs = append(r.reqs, req.Method+" "+req.URL.RequestURI())
	r.mu.Unlock()
	if r.prefix != "" {
		if !strings.HasPrefix(req.URL.Path, r.prefix+"/") {
			http.NotFound(w, req)
			return
		}
		req.URL.Path = "/v2" + strings.TrimPrefix(req.URL.Path, r.prefix)
		req.URL.RawPath = ""
	}
	r.next.ServeHTTP(w, req)
}

func (r *recorder) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.reqs, "\n")
}

func newRecorder(t *testing.T, prefix string) (*recorder, string) {
	rec := &recorder{prefix: prefix, next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return rec, strings.TrimPrefix(srv.URL, "http://")
}

func writeHosts(t *testing.T, root, ns, content string) {
	t.Helper()
	dir := filepath.Join(root, ns)
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "hosts.toml"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostsResolve pulls names of registries that do not exist through
// hosts configured for them: order, fallback, capabilities, path prefixes
// and override_path, the ns parameter for mirrors, headers, and pushes.
func TestHostsResolve(t *testing.T) {
	ctx := context.Background()
	p, _ := ParsePlatform("linux/amd64")
	img, _ := testImage(t, "hello", "amd64")

	upstream, upHost := newRecorder(t, "")
	mirror, mirrorHost := newRecorder(t, "/mirror/v2") // served under a prefix
	odd, oddHost := newRecorder(t, "/api")             // override_path
	empty, emptyHost := newRecorder(t, "")             // has nothing: falls through
	pullOnly, pullOnlyHost := newRecorder(t, "")       // never asked to resolve a tag
	pushed := New(Options{})
	d, err := pushed.Push(ctx, upHost+"/lib/app:v1", img, Auth{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for h, root := range map[string]string{mirrorHost: "/mirror/v2", oddHost: "/api", pullOnlyHost: "/v2"} {
		c := New(Options{Transport: &hostTransport{next: http.DefaultTransport, host: h, path: root}})
		if _, err := c.Push(ctx, h+"/lib/app:v1", img, Auth{}, nil); err != nil {
			t.Fatalf("seed %s: %v", h, err)
		}
	}
	mirror.reqs, odd.reqs, pullOnly.reqs, upstream.reqs = nil, nil, nil, nil

	root := t.TempDir()
	writeHosts(t, root, "example.invalid", `
server = "http://`+upHost+`"
[host."http://`+emptyHost+`"]
  capabilities = ["pull", "resolve"]
[host."http://`+pullOnlyHost+`"]
  capabilities = ["pull"]
[host."http://`+mirrorHost+`/mirror"]
  capabilities = ["pull", "resolve"]
  [host."http://`+mirrorHost+`/mirror".header]
    x-skiff-test = "yes"
`)
	writeHosts(t, root, "odd.invalid:8443", `
[host."http://`+oddHost+`/api"]
  override_path = true
`)
	c := New(Options{HostsDir: root})

	r, err := c.Resolve(ctx, "example.invalid/lib/app:v1", p, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Digest != d {
		t.Fatalf("digest %s, want %s", r.Digest, d)
	}
	if !strings.Contains(empty.log(), "/v2/lib/app/manifests/v1?ns=example.invalid") {
		t.Errorf("the first host was not asked first:\n%s", empty.log())
	}
	if strings.Contains(pullOnly.log(), "/manifests/v1") {
		t.Errorf("a pull-only host resolved a tag:\n%s", pullOnly.log())
	}
	if !strings.Contains(mirror.log(), "GET /mirror/v2/lib/app/manifests/v1?ns=example.invalid") {
		t.Errorf("mirror requests:\n%s", mirror.log())
	}
	if upstream.log() != "" {
		t.Errorf("the server was asked though the mirror had the image:\n%s", upstream.log())
	}
	// By digest the pull-only host is good enough, and comes first.
	if _, err := c.Resolve(ctx, "example.invalid/lib/app@"+d.String(), p, Auth{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pullOnly.log(), "/v2/lib/app/manifests/"+d.String()+"?ns=example.invalid") {
		t.Errorf("pull-only host by digest:\n%s", pullOnly.log())
	}
	// override_path: the URL's path is the API root; a port in the name
	// finds the host_port_ or host:port directory.
	if _, err := c.Resolve(ctx, "odd.invalid:8443/lib/app:v1", p, Auth{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(odd.log(), "GET /api/lib/app/manifests/v1?ns=odd.invalid%3A8443") {
		t.Errorf("override_path requests:\n%s", odd.log())
	}
	// Pushes go to the first host that may push: the server here.
	img2, _ := testImage(t, "second", "amd64")
	if _, err := c.Push(ctx, "example.invalid/lib/app:v2", img2, Auth{}, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(upstream.log(), "PUT /v2/lib/app/manifests/v2") {
		t.Errorf("push went elsewhere; server saw:\n%s", upstream.log())
	}
	// Nothing may push: NotFound, naming the configuration.
	writeHosts(t, root, "nopush.invalid", `
server = "http://`+upHost+`"
capabilities = ["pull", "resolve"]
`)
	if _, err := c.Push(ctx, "nopush.invalid/lib/app:v3", img2, Auth{}, nil); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "push") {
		t.Fatalf("push without a push host: %v", err)
	}
	// The header reached the mirror.
	if got := mirrorHeader(t, c, mirrorHost); got != "yes" {
		t.Errorf("mirror header %q", got)
	}
}

func mirrorHeader(t *testing.T, c *Client, host string) string {
	t.Helper()
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("X-Skiff-Test")
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	rt, _ := transportFor(c.opts.Transport, Host{})
	ht := &hostTransport{next: rt, host: strings.TrimPrefix(srv.URL, "http://"), path: "/v2", header: http.Header{"X-Skiff-Test": {"yes"}}}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v2/", nil)
	resp, err := ht.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return got
}

// testCA makes a CA, a server certificate for 127.0.0.1 and a client
// certificate, PEM encoded.
type testPKI struct {
	caPEM                 []byte
	server                tls.Certificate
	clientCert, clientKey []byte
	caPool                *x509.CertPool
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skiff test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(cn string, usage x509.ExtKeyUsage, ip net.IP) ([]byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{usage}, KeyUsage: x509.KeyUsageDigitalSignature}
		if ip != nil {
			tmpl.IPAddresses = []net.IP{ip}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	}
	sc, sk := leaf("127.0.0.1", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	server, err := tls.X509KeyPair(sc, sk)
	if err != nil {
		t.Fatal(err)
	}
	cc, ck := leaf("skiff client", x509.ExtKeyUsageClientAuth, nil)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), server: server,
		clientCert: cc, clientKey: ck, caPool: pool}
}

// TestHostsTLS: a registry on HTTPS that wants a client certificate is
// reached with the CA and the client pair from hosts.toml, and with
// Docker's ca.crt/client.cert/client.key; without them the pull fails.
func TestHostsTLS(t *testing.T) {
	ctx := context.Background()
	p, _ := ParsePlatform("linux/amd64")
	pki := newTestPKI(t)
	srv := httptest.NewUnstartedServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.server}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pki.caPool}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	defer srv.Close()
	host := strings.TrimPrefix(srv.URL, "https://")

	root := t.TempDir()
	files := func(dir string, names map[string][]byte) {
		os.MkdirAll(dir, 0o755)
		for n, b := range names {
			if err := os.WriteFile(filepath.Join(dir, n), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	// hosts.toml: a mirror for tls.invalid with the CA and the client pair.
	files(filepath.Join(root, "tls.invalid"), map[string][]byte{
		"hosts.toml": []byte(`server = "https://` + host + `"
ca = "my-ca.pem"
client = [["me.cert", "me.key"]]
`),
		"my-ca.pem": pki.caPEM, "me.cert": pki.clientCert, "me.key": pki.clientKey,
	})
	// Docker's files for the registry's own address.
	files(filepath.Join(root, strings.Replace(host, ":", "_", 1)+"_"), map[string][]byte{
		"ca.crt": pki.caPEM, "client.cert": pki.clientCert, "client.key": pki.clientKey,
	})
	// The same without the client certificate.
	files(filepath.Join(root, "nocert.invalid"), map[string][]byte{
		"hosts.toml": []byte(`server = "https://` + host + `"
ca = "ca.pem"
`), "ca.pem": pki.caPEM,
	})
	c := New(Options{HostsDir: root})
	img, _ := testImage(t, "tls", "amd64")
	d, err := c.Push(ctx, host+"/t/app:v1", img, Auth{}, nil)
	if err != nil {
		t.Fatalf("push with Docker's certificate files: %v", err)
	}
	r, err := c.Resolve(ctx, "tls.invalid/t/app:v1", p, Auth{})
	if err != nil {
		t.Fatalf("pull through hosts.toml: %v", err)
	}
	if r.Digest != d {
		t.Fatalf("digest %s, want %s", r.Digest, d)
	}
	if _, err := c.Resolve(ctx, "nocert.invalid/t/app:v1", p, Auth{}); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("pull without the client certificate: %v", err)
	}
	if _, err := New(Options{}).Resolve(ctx, host+"/t/app:v1", p, Auth{}); err == nil {
		t.Fatal("pull without any configuration succeeded")
	}
}
