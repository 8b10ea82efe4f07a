package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// install-plugin links skiff-compose into DOCKER_CONFIG's cli-plugins, says
// so when it is already there, and replaces another plugin only with --force.
func TestInstallComposePlugin(t *testing.T) {
	bin := filepath.Join(t.TempDir(), composeBinary)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := t.TempDir()
	var out bytes.Buffer
	c := New(WithStreams(strings.NewReader(""), &out, &out), WithEnv(func(k string) string {
		if k == "DOCKER_CONFIG" {
			return cfg
		}
		return ""
	}))
	link := filepath.Join(cfg, "cli-plugins", "docker-compose")
	if err := c.installComposePlugin(bin, nil); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(link); got != bin {
		t.Fatalf("link points to %q, want %q", got, bin)
	}
	out.Reset()
	if err := c.installComposePlugin(bin, nil); err != nil || !strings.Contains(out.String(), "already points") {
		t.Fatalf("second install: %v %q", err, out.String())
	}
	os.Remove(link)
	os.WriteFile(link, []byte("other"), 0o755)
	if err := c.installComposePlugin(bin, nil); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("over another plugin: %v", err)
	}
	if err := c.installComposePlugin(bin, []string{"--force"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(link); got != bin {
		t.Fatalf("after --force, link points to %q", got)
	}
	if err := c.installComposePlugin(bin, []string{"--bogus"}); exitCodeFor(err) != 1 {
		t.Fatalf("unknown flag: %v exit %d", err, exitCodeFor(err))
	}
}

// compose gets the engine this CLI would use, as DOCKER_HOST.
func TestComposeEnvHost(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix:///from/env.sock")
	c := New(WithEnv(os.Getenv), WithDefaultHost("unix:///default.sock", nil))
	if err := c.hosts.Set("unix:///from/flag.sock"); err != nil {
		t.Fatal(err)
	}
	env, err := c.composeEnv(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var hosts []string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "DOCKER_HOST="); ok {
			hosts = append(hosts, v)
		}
	}
	if len(hosts) != 1 || hosts[0] != "unix:///from/flag.sock" {
		t.Fatalf("DOCKER_HOST: %q", hosts)
	}
}
