package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/client"
	"github.com/spf13/pflag"

	"github.com/skiff-dev/skiff/internal/cli/opts"
)

// extraRunOptions are the flags of `docker run` that skiff's CLI accepts so
// that every docker run line parses, with docker's meaning: each maps to the
// API field docker's CLI sets, and the engine takes it or refuses it as
// dockerd does (GPUs, isolation, kernel memory). The Windows-only ones are
// refused here, as docker's CLI refuses them against a Linux daemon.
type extraRunOptions struct {
	cpuCount       int64
	cpuPercent     int64
	ioMaxBandwidth opts.MemBytes
	ioMaxIOps      uint64
	isolation      string
	kernelMemory   opts.MemBytes
}

func addExtraRunFlags(flags *pflag.FlagSet) *extraRunOptions {
	x := &extraRunOptions{}
	flags.Int64Var(&x.cpuCount, "cpu-count", 0, "CPU count (Windows only)")
	flags.Int64Var(&x.cpuPercent, "cpu-percent", 0, "CPU percent (Windows only)")
	flags.Var(&x.ioMaxBandwidth, "io-maxbandwidth", "Maximum IO bandwidth limit for the system drive (Windows only)")
	flags.Uint64Var(&x.ioMaxIOps, "io-maxiops", 0, "Maximum IOps limit for the system drive (Windows only)")
	flags.StringVar(&x.isolation, "isolation", "", "Container isolation technology")
	flags.Var(&x.kernelMemory, "kernel-memory", "Kernel memory limit")
	return x
}

// windowsOnlyFlags are refused before anything is sent, with docker's words
// (docker checks the flags' ostype against the daemon's; skiff's daemon is
// always a Linux one). Exit status 1, as docker's.
var windowsOnlyFlags = []string{"cpu-count", "cpu-percent", "io-maxbandwidth", "io-maxiops"}

func preflightRunFlags(flags *pflag.FlagSet, stderr io.Writer) error {
	for _, name := range windowsOnlyFlags {
		if flags.Changed(name) {
			return StatusError{
				Status:     fmt.Sprintf("%q is only supported on a Docker daemon running on windows, but the Docker daemon is running on linux", "--"+name),
				StatusCode: 1,
			}
		}
	}
	if v, err := flags.GetBool("disable-content-trust"); err == nil && !v {
		// docker would verify the image's signature with a Notary
		// server; skiff has no Docker Content Trust.
		return StatusError{Status: binName + ": --disable-content-trust=false: skiff does not verify image signatures (Docker Content Trust is not supported)", StatusCode: 125}
	}
	if flags.Changed("kernel-memory") {
		// dockerd's words where the kernel has no kmem limit (every
		// kernel since 5.4 deprecates it; cgroup v2 has none).
		fmt.Fprintln(stderr, "WARNING: Your kernel does not support kernel memory limit capabilities or the cgroup is not mounted. Limitation discarded.")
	}
	return nil
}

// apply sets the API fields of the extra flags. --kernel-memory has none
// since API 1.42 (dockerd drops it): preflightRunFlags warns instead.
func (x *extraRunOptions) apply(hc *container.HostConfig) {
	hc.Isolation = container.Isolation(x.isolation)
	hc.CPUCount = x.cpuCount
	hc.CPUPercent = x.cpuPercent
	hc.IOMaximumBandwidth = uint64(x.ioMaxBandwidth.Value())
	hc.IOMaximumIOps = x.ioMaxIOps
}

// apiSocketConfigPath is where --use-api-socket puts the credentials, as
// docker does (a compose-secret-like path).
const apiSocketConfigPath = "/run/secrets/docker/config.json"

// useAPISocket does what docker's --use-api-socket does: bind the daemon's
// unix socket to /var/run/docker.sock and, unless the container sets
// DOCKER_CONFIG itself, point DOCKER_CONFIG at a config.json holding the
// client's registry credentials (copied in by copyAPISocketConfig after the
// create). It returns those credentials.
func (c *CLI) useAPISocket(cfg *containerConfig) (map[string]registry.AuthConfig, error) {
	host, err := resolveHost(c.hosts.GetSlice(), c.getenv, c.defaultHost)
	if err != nil {
		return nil, err
	}
	socket, ok := strings.CutPrefix(host, "unix://")
	if !ok {
		return nil, fmt.Errorf("flag --use-api-socket can only be used with unix sockets: docker endpoint %s incompatible", host)
	}
	cfg.HostConfig.Mounts = append(cfg.HostConfig.Mounts, mount.Mount{
		Type: mount.TypeBind, Source: socket, Target: "/var/run/docker.sock", BindOptions: &mount.BindOptions{},
	})
	for _, e := range cfg.Config.Env {
		if strings.HasPrefix(e, "DOCKER_CONFIG=") {
			return nil, nil
		}
	}
	creds := allRegistryAuths()
	if len(creds) > 0 {
		cfg.Config.Env = append(cfg.Config.Env, "DOCKER_CONFIG="+path.Dir(apiSocketConfigPath))
	}
	return creds, nil
}

// copyAPISocketConfig writes the credentials' config.json into the created
// container.
func copyAPISocketConfig(ctx context.Context, api client.APIClient, id string, creds map[string]registry.AuthConfig) error {
	auths := map[string]registry.AuthConfig{}
	for k, a := range creds {
		auths[k] = a
	}
	data, err := json.MarshalIndent(map[string]any{"auths": auths}, "", "\t")
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dir := strings.TrimPrefix(path.Dir(apiSocketConfigPath), "/")
	for _, d := range []string{"run/", "run/secrets/", dir + "/"} {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: now}); err != nil {
			return err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: strings.TrimPrefix(apiSocketConfigPath, "/"), Mode: 0o600, Size: int64(len(data)), ModTime: now}); err != nil {
		return err
	}
	tw.Write(data)
	if err := tw.Close(); err != nil {
		return err
	}
	if _, err := api.CopyToContainer(ctx, id, client.CopyToContainerOptions{DestinationPath: "/", Content: &buf}); err != nil {
		return fmt.Errorf("injecting docker config.json into container failed: %w", err)
	}
	return nil
}
