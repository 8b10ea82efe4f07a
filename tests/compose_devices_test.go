package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Compose's devices and device_cgroup_rules keys, under both compose
// clients (the docker compose plugin and Debian's docker-compose 1.29);
// without a network, which is not what this test is about.
func TestComposeDevices(t *testing.T) {
	t.Parallel()
	d := startDaemon(t)
	d.importBusybox()
	dir := t.TempDir()
	yml := `services:
  dev:
    image: busybox
    network_mode: none
    devices:
      - "/dev/loop0:/dev/xloop:r"
    device_cgroup_rules:
      - "b 7:5 r"
    command: ["sh", "-c", "exec 3</dev/xloop && mknod /tmp/l b 7 5 && exec 4</tmp/l && echo ok; (exec 5>/dev/xloop) 2>/dev/null || echo no-w"]
`
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(yml), 0o644); err != nil {
		t.Fatal(err)
	}
	useComposeClients(t, d)
	for _, client := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		name := strings.Join(client, " ")
		args := func(a ...string) []string {
			return append(append(append([]string{}, client[1:]...), "-f", filepath.Join(dir, "compose.yaml"), "-p", "devs"), a...)
		}
		if _, errOut, code := d.run(nil, client[0], args("up", "--no-color")...); code != 0 {
			t.Errorf("%s up: exit %d %s", name, code, errOut)
			continue
		}
		out, errOut, code := d.run(nil, client[0], args("logs", "--no-color", "dev")...)
		if code != 0 || !strings.Contains(out, "ok") || !strings.Contains(out, "no-w") {
			t.Errorf("%s logs: exit %d %q %s", name, code, out, errOut)
		}
		d.run(nil, client[0], args("down")...)
	}
}
