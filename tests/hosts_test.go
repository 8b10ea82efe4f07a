package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writePKI writes a CA, a server certificate for 127.0.0.1 and a client
// certificate (PEM) into dir: ca.pem, server.pem, server.key, client.pem,
// client.key.
func writePKI(t *testing.T, dir string) {
	t.Helper()
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := newKey()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "skiff e2e CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	for i, leaf := range []struct {
		name  string
		usage x509.ExtKeyUsage
	}{{"server", x509.ExtKeyUsageServerAuth}, {"client", x509.ExtKeyUsageClientAuth}} {
		k := newKey()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: "skiff e2e " + leaf.name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			ExtKeyUsage: []x509.ExtKeyUsage{leaf.usage}, KeyUsage: x509.KeyUsageDigitalSignature,
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		write(leaf.name+".pem", "CERTIFICATE", der)
		write(leaf.name+".key", "EC PRIVATE KEY", kb)
	}
}

// TestRegistryHostsConfig: Docker API pulls and pushes of names whose
// registry does not exist (example.invalid) go where the daemon's
// certs.d/<host>/hosts.toml sends them, a local docker-registry; an HTTPS
// registry that wants a client certificate is reached with hosts.toml's
// ca/client and with Docker's ca.crt/client.cert/client.key, and not
// without them.
func TestRegistryHostsConfig(t *testing.T) {
	reg := startRegistry(t, "", "")
	pki := t.TempDir()
	writePKI(t, pki)
	p := func(n string) string { return filepath.Join(pki, n) }
	tlsReg := startRegistryTLS(t, "", "", fmt.Sprintf("  tls:\n    certificate: %s\n    key: %s\n    clientcas:\n      - %s\n",
		p("server.pem"), p("server.key"), p("ca.pem")))
	d := startDaemon(t)
	d.importBusybox()

	writeFiles := func(dir string, files map[string]string) {
		t.Helper()
		dir = filepath.Join(d.certsD(), dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range files {
			if strings.HasPrefix(content, "@") {
				b, err := os.ReadFile(p(content[1:]))
				if err != nil {
					t.Fatal(err)
				}
				content = string(b)
			}
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Seed the plain registry, then name it only through hosts.toml: a
	// mirror for example.invalid whose own server (https://example.invalid)
	// is never reached.
	seed := reg.host + "/e2e/x:tag"
	d.must("tag", "busybox", seed)
	d.must("push", seed)
	d.must("rmi", seed)
	writeFiles("example.invalid", map[string]string{"hosts.toml": `
[host."http://` + reg.host + `"]
  capabilities = ["pull", "resolve", "push"]
`})
	ref := "example.invalid/e2e/x:tag"
	out := d.must("pull", ref)
	if !strings.Contains(out, "Pulling from e2e/x") || !strings.Contains(out, "Digest: sha256:") || !strings.HasSuffix(out, "\n"+ref+"\n") {
		t.Fatalf("pull through hosts.toml:\n%s", out)
	}
	if out := d.must("run", "--rm", ref, "echo", "mirrored"); out != "mirrored\n" {
		t.Fatalf("run: %q", out)
	}
	// The real docker CLI's pull goes the same way.
	d.must("rmi", ref)
	if out, errOut, code := d.docker("pull", ref); code != 0 || !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("docker pull: exit %d\n%s\n%s", code, out, errOut)
	}
	// Pushes go to the configured host too.
	d.must("tag", "busybox", "example.invalid/e2e/pushed:v1")
	d.must("push", "example.invalid/e2e/pushed:v1")
	resp, err := http.Get("http://" + reg.host + "/v2/e2e/pushed/tags/list")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `"v1"`) {
		t.Fatalf("the push did not reach the configured host: %s", body)
	}
	// A host that may only pull is not asked to resolve a tag: with it
	// alone (and no reachable server), the pull fails.
	writeFiles("pullonly.invalid", map[string]string{"hosts.toml": `
server = "http://127.0.0.1:1"
[host."http://` + reg.host + `"]
  capabilities = ["pull"]
`})
	if _, errOut, code := d.skiff("pull", "pullonly.invalid/e2e/x:tag"); code == 0 {
		t.Fatalf("a pull-only host resolved a tag: %s", errOut)
	}

	// HTTPS with a client certificate. Without configuration skiff
	// cannot talk to it.
	tlsRef := tlsReg.host + "/e2e/secure:v1"
	d.must("tag", "busybox", tlsRef)
	if _, errOut, code := d.skiff("push", tlsRef); code == 0 || !strings.Contains(errOut, "certificate") {
		t.Fatalf("push to a TLS registry without its CA and a client certificate succeeded: %s", errOut)
	}
	// Docker's layout for the registry's own address (host_port_ form
	// would do too; this is host:port).
	writeFiles(tlsReg.host, map[string]string{"ca.crt": "@ca.pem", "client.cert": "@client.pem", "client.key": "@client.key"})
	d.must("push", tlsRef)
	// hosts.toml's ca and client, with relative paths, for another name.
	writeFiles("secure.invalid", map[string]string{
		"hosts.toml": `server = "https://` + tlsReg.host + `"
ca = "my-ca.pem"
client = [["me.pem", "me.key"]]
`, "my-ca.pem": "@ca.pem", "me.pem": "@client.pem", "me.key": "@client.key"})
	secRef := "secure.invalid/e2e/secure:v1"
	if out := d.must("pull", secRef); !strings.Contains(out, "Digest: sha256:") {
		t.Fatalf("pull over TLS through hosts.toml:\n%s", out)
	}
	// The same without the client certificate fails.
	writeFiles("nocert.invalid", map[string]string{"hosts.toml": `server = "https://` + tlsReg.host + `"
ca = "my-ca.pem"
`, "my-ca.pem": "@ca.pem"})
	// Under TLS 1.3 the server refuses the missing certificate after the
	// client's handshake is done: the client sees the alert ("tls:
	// certificate required") or, when its request is already on the way,
	// a broken pipe or reset.
	_, errOut, code := d.skiff("pull", "nocert.invalid/e2e/secure:v1")
	refused := strings.Contains(errOut, "tls:") || strings.Contains(errOut, "broken pipe") || strings.Contains(errOut, "connection reset")
	if code == 0 || !refused || !strings.Contains(errOut, "https://"+tlsReg.host) {
		t.Fatalf("pull without a client certificate: exit %d, %s", code, errOut)
	}
}
