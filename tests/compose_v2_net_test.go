package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// composeV2 is the docker compose v5 plugin (hack/clients.sh links it into
// ~/.docker/cli-plugins); it also runs standalone.
func composeV2(t *testing.T) string {
	home, _ := os.UserHomeDir()
	p := filepath.Join(home, ".docker", "cli-plugins", "docker-compose")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("docker compose plugin missing at %s (hack/clients.sh builds it)", p)
	}
	return p
}

// `docker compose run -d -p 127.0.0.1:P:80 svc` on a user network: the
// published port answers.
func TestComposeV2RunPublish(t *testing.T) {
	d := startDaemon(t)
	d.importBusybox()
	bin := composeV2(t)
	sub, _ := userSubnet(d, 114)
	port2 := freePort(t)
	dir := t.TempDir()
	yml := fmt.Sprintf(`services:
  www:
    image: busybox
    command: ["sh", "-c", "echo hello-www > /tmp/index.html; exec httpd -f -p 80 -h /tmp"]
    ports: ["127.0.0.1:%d:80"]
    networks:
      appnet:
        aliases: [web]
networks:
  appnet:
    ipam:
      config: [{subnet: %q}]
`, port2, sub)
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := func(args ...string) (string, string, int) {
		return d.run(nil, bin, append([]string{"-f", filepath.Join(dir, "compose.yaml"), "-p", "c2"}, args...)...)
	}
	// The service is up with its own published port, then a one-off
	// container of it publishes another.
	if out, errOut, code := compose("up", "-d"); code != 0 {
		t.Fatalf("up: exit %d:\n%s%s", code, out, errOut)
	}
	defer compose("down", "--remove-orphans")
	port := freePort(t)
	out, errOut, code := compose("run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "www")
	if code != 0 {
		t.Fatalf("run -d -p: exit %d:\n%s%s", code, out, errOut)
	}
	id := strings.TrimSpace(out)
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port)); got != "hello-www\n" {
		t.Errorf("compose run -p: %q\n%s", got, d.must("inspect", id))
	}
	if got := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/index.html", port2)); got != "hello-www\n" {
		t.Errorf("compose up's port: %q", got)
	}
	if out, errOut, code := compose("down", "--remove-orphans"); code != 0 {
		t.Fatalf("down: exit %d:\n%s%s", code, out, errOut)
	}
}

// freePort is a TCP port nothing listens on at 127.0.0.1 now.
