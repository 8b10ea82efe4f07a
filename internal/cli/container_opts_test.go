package cli

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/pflag"
)

// parseRun parses `run` flags and arguments into the create request.
func parseRun(t *testing.T, args ...string) (*containerConfig, error) {
	t.Helper()
	flags := pflag.NewFlagSet("run", pflag.ContinueOnError)
	flags.SetInterspersed(false)
	var o runOptions
	flags.BoolVarP(&o.detach, "detach", "d", false, "")
	addCreateFlags(flags, &o.createOptions)
	copts := addFlags(flags)
	if err := flags.Parse(args); err != nil {
		return nil, err
	}
	rest := flags.Args()
	if len(rest) == 0 {
		t.Fatal("no image")
	}
	copts.Image = rest[0]
	copts.Args = rest[1:]
	return parse(flags, copts)
}

func mustParseRun(t *testing.T, args ...string) *containerConfig {
	t.Helper()
	cfg, err := parseRun(t, args...)
	if err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	return cfg
}

func TestParseRunFlags(t *testing.T) {
	t.Setenv("SKIFF_TEST_FROM_ENV", "from-env")
	i64 := func(v int64) *int64 { return &v }
	for _, tc := range []struct {
		name  string
		args  []string
		check func(t *testing.T, c *containerConfig)
	}{
		{"defaults", []string{"busybox"}, func(t *testing.T, c *containerConfig) {
			if c.Config.Image != "busybox" || c.Config.Cmd != nil || c.Config.Entrypoint != nil {
				t.Errorf("config %+v", c.Config)
			}
			if !c.Config.AttachStdout || !c.Config.AttachStderr || c.Config.AttachStdin || c.Config.OpenStdin {
				t.Errorf("attach %+v", c.Config)
			}
			if c.HostConfig.NetworkMode != "default" || c.HostConfig.Init != nil || c.Config.StopTimeout != nil {
				t.Errorf("host config %+v", c.HostConfig)
			}
			if *c.HostConfig.MemorySwappiness != -1 || *c.HostConfig.PidsLimit != 0 {
				t.Errorf("resources %+v", c.HostConfig.Resources)
			}
		}},
		{"command", []string{"busybox", "sh", "-c", "echo hi", "-x"}, func(t *testing.T, c *containerConfig) {
			if !slices.Equal(c.Config.Cmd, []string{"sh", "-c", "echo hi", "-x"}) {
				t.Errorf("cmd %q", c.Config.Cmd)
			}
		}},
		{"sizes", []string{"-m", "512m", "--memory-swap", "1g", "--memory-reservation", "256M", "--shm-size", "64m", "busybox"}, func(t *testing.T, c *containerConfig) {
			r := c.HostConfig.Resources
			if r.Memory != 512<<20 || r.MemorySwap != 1<<30 || r.MemoryReservation != 256<<20 || c.HostConfig.ShmSize != 64<<20 {
				t.Errorf("memory %d swap %d reservation %d shm %d", r.Memory, r.MemorySwap, r.MemoryReservation, c.HostConfig.ShmSize)
			}
		}},
		{"unlimited swap", []string{"-m", "1g", "--memory-swap", "-1", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.MemorySwap != -1 {
				t.Errorf("swap %d", c.HostConfig.MemorySwap)
			}
		}},
		{"cpus", []string{"--cpus", "1.5", "-c", "512", "--cpu-period", "100000", "--cpu-quota", "50000", "--cpuset-cpus", "0-1", "--cpuset-mems", "0", "busybox"}, func(t *testing.T, c *containerConfig) {
			r := c.HostConfig.Resources
			if r.NanoCPUs != 1_500_000_000 || r.CPUShares != 512 || r.CPUPeriod != 100000 || r.CPUQuota != 50000 || r.CpusetCpus != "0-1" || r.CpusetMems != "0" {
				t.Errorf("cpu %+v", r)
			}
		}},
		{"pids oom", []string{"--pids-limit", "100", "--oom-kill-disable", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !reflect.DeepEqual(c.HostConfig.PidsLimit, i64(100)) || !*c.HostConfig.OomKillDisable {
				t.Errorf("pids %v oom %v", *c.HostConfig.PidsLimit, *c.HostConfig.OomKillDisable)
			}
		}},
		{"env", []string{"-e", "A=1", "--env", "B=", "-e", "SKIFF_TEST_FROM_ENV", "-e", "SKIFF_TEST_UNSET_VAR", "busybox"}, func(t *testing.T, c *containerConfig) {
			want := []string{"A=1", "B=", "SKIFF_TEST_FROM_ENV=from-env", "SKIFF_TEST_UNSET_VAR"}
			if !slices.Equal(c.Config.Env, want) {
				t.Errorf("env %q, want %q", c.Config.Env, want)
			}
		}},
		{"user workdir hostname", []string{"-u", "nobody:nogroup", "-w", "/tmp", "-h", "box", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.Config.User != "nobody:nogroup" || c.Config.WorkingDir != "/tmp" || c.Config.Hostname != "box" {
				t.Errorf("config %+v", c.Config)
			}
		}},
		{"entrypoint", []string{"--entrypoint", "/bin/sh", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !slices.Equal(c.Config.Entrypoint, []string{"/bin/sh"}) {
				t.Errorf("entrypoint %q", c.Config.Entrypoint)
			}
		}},
		{"empty entrypoint clears", []string{"--entrypoint", "", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !slices.Equal(c.Config.Entrypoint, []string{""}) {
				t.Errorf("entrypoint %q", c.Config.Entrypoint)
			}
		}},
		{"labels", []string{"-l", "a=1", "--label", "b", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !reflect.DeepEqual(c.Config.Labels, map[string]string{"a": "1", "b": ""}) {
				t.Errorf("labels %v", c.Config.Labels)
			}
		}},
		{"network modes", []string{"--net", "host", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.NetworkMode != "host" || len(c.NetworkingConfig.EndpointsConfig) != 0 {
				t.Errorf("network %q %v", c.HostConfig.NetworkMode, c.NetworkingConfig.EndpointsConfig)
			}
		}},
		{"network container", []string{"--network", "container:abc", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.NetworkMode != "container:abc" {
				t.Errorf("network %q", c.HostConfig.NetworkMode)
			}
		}},
		{"security", []string{"--cap-add", "NET_ADMIN", "--cap-drop", "ALL", "--privileged", "--read-only", "busybox"}, func(t *testing.T, c *containerConfig) {
			h := c.HostConfig
			if !slices.Equal(h.CapAdd, []string{"NET_ADMIN"}) || !slices.Equal(h.CapDrop, []string{"ALL"}) || !h.Privileged || !h.ReadonlyRootfs {
				t.Errorf("host config %+v", h)
			}
		}},
		{"restart", []string{"--restart", "on-failure:3", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.RestartPolicy != (container.RestartPolicy{Name: "on-failure", MaximumRetryCount: 3}) {
				t.Errorf("restart %+v", c.HostConfig.RestartPolicy)
			}
		}},
		{"stop", []string{"--stop-signal", "SIGUSR1", "--stop-timeout", "0", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.Config.StopSignal != "SIGUSR1" || c.Config.StopTimeout == nil || *c.Config.StopTimeout != 0 {
				t.Errorf("stop %q %v", c.Config.StopSignal, c.Config.StopTimeout)
			}
		}},
		{"logging", []string{"--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "max-file=3", "busybox"}, func(t *testing.T, c *containerConfig) {
			want := container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": "10m", "max-file": "3"}}
			if !reflect.DeepEqual(c.HostConfig.LogConfig, want) {
				t.Errorf("log config %+v", c.HostConfig.LogConfig)
			}
		}},
		{"init rm", []string{"--init", "--rm", "busybox"}, func(t *testing.T, c *containerConfig) {
			if c.HostConfig.Init == nil || !*c.HostConfig.Init || !c.HostConfig.AutoRemove {
				t.Errorf("init %v autoremove %v", c.HostConfig.Init, c.HostConfig.AutoRemove)
			}
		}},
		{"tmpfs ulimit", []string{"--tmpfs", "/run:size=1m", "--tmpfs", "/tmp", "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=10", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !reflect.DeepEqual(c.HostConfig.Tmpfs, map[string]string{"/run": "size=1m", "/tmp": ""}) {
				t.Errorf("tmpfs %v", c.HostConfig.Tmpfs)
			}
			u := c.HostConfig.Ulimits
			if len(u) != 2 || *u[0] != (container.Ulimit{Name: "nofile", Soft: 1024, Hard: 2048}) || *u[1] != (container.Ulimit{Name: "nproc", Soft: 10, Hard: 10}) {
				t.Errorf("ulimits %v", u)
			}
		}},
		{"volumes", []string{"-v", "/host:/ctr:ro", "-v", "/anon", "-v", "named:/data", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !slices.Equal(c.HostConfig.Binds, []string{"/host:/ctr:ro", "named:/data"}) {
				t.Errorf("binds %q", c.HostConfig.Binds)
			}
			if _, ok := c.Config.Volumes["/anon"]; !ok || len(c.Config.Volumes) != 1 {
				t.Errorf("volumes %v", c.Config.Volumes)
			}
		}},
		{"mount", []string{"--mount", "type=bind,source=/src,target=/dst,readonly", "--mount", "type=tmpfs,target=/t,tmpfs-size=1m", "busybox"}, func(t *testing.T, c *containerConfig) {
			m := c.HostConfig.Mounts
			if len(m) != 2 || m[0].Type != mount.TypeBind || m[0].Source != "/src" || m[0].Target != "/dst" || !m[0].ReadOnly ||
				m[1].Type != mount.TypeTmpfs || m[1].TmpfsOptions == nil || m[1].TmpfsOptions.SizeBytes != 1<<20 {
				t.Errorf("mounts %+v", m)
			}
		}},
		{"ports", []string{"-p", "8080:80", "-p", "127.0.0.1:5353:53/udp", "--expose", "9000-9001", "-P", "busybox"}, func(t *testing.T, c *containerConfig) {
			pb := c.HostConfig.PortBindings
			p80 := network.MustParsePort("80/tcp")
			p53 := network.MustParsePort("53/udp")
			if !reflect.DeepEqual(pb[p80], []network.PortBinding{{HostPort: "8080"}}) ||
				!reflect.DeepEqual(pb[p53], []network.PortBinding{{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "5353"}}) {
				t.Errorf("port bindings %v", pb)
			}
			for _, p := range []string{"80/tcp", "53/udp", "9000/tcp", "9001/tcp"} {
				if _, ok := c.Config.ExposedPorts[network.MustParsePort(p)]; !ok {
					t.Errorf("%s not exposed: %v", p, c.Config.ExposedPorts)
				}
			}
			if !c.HostConfig.PublishAllPorts {
				t.Error("-P not set")
			}
		}},
		{"dns hosts", []string{"--dns", "1.1.1.1", "--add-host", "db:10.0.0.2", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !slices.Equal(c.HostConfig.DNS, []netip.Addr{netip.MustParseAddr("1.1.1.1")}) || !slices.Equal(c.HostConfig.ExtraHosts, []string{"db:10.0.0.2"}) {
				t.Errorf("dns %v hosts %v", c.HostConfig.DNS, c.HostConfig.ExtraHosts)
			}
		}},
		{"health", []string{"--health-cmd", "true", "--health-interval", "5s", "--health-retries", "2", "busybox"}, func(t *testing.T, c *containerConfig) {
			h := c.Config.Healthcheck
			if h == nil || !slices.Equal(h.Test, []string{"CMD-SHELL", "true"}) || h.Interval.String() != "5s" || h.Retries != 2 {
				t.Errorf("health %+v", h)
			}
		}},
		{"no healthcheck", []string{"--no-healthcheck", "busybox"}, func(t *testing.T, c *containerConfig) {
			if h := c.Config.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"NONE"}) {
				t.Errorf("health %+v", h)
			}
		}},
		{"attach", []string{"-a", "stdout", "-i", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !c.Config.AttachStdout || c.Config.AttachStderr || !c.Config.AttachStdin || !c.Config.StdinOnce {
				t.Errorf("attach %+v", c.Config)
			}
		}},
		{"tty", []string{"-t", "busybox"}, func(t *testing.T, c *containerConfig) {
			if !c.Config.Tty {
				t.Error("tty not set")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.check(t, mustParseRun(t, tc.args...))
		})
	}
}

func TestParseEnvAndLabelFiles(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	os.WriteFile(envFile, []byte("\ufeff# comment\nA=from-file\n\n  B=two words\nSKIFF_TEST_ENVFILE_KEY\nSKIFF_TEST_ENVFILE_UNSET\n"), 0o644)
	labelFile := filepath.Join(dir, "labels")
	os.WriteFile(labelFile, []byte("x=1\ny=2\n"), 0o644)
	t.Setenv("SKIFF_TEST_ENVFILE_KEY", "v")

	c := mustParseRun(t, "--env-file", envFile, "-e", "A=from-flag", "--label-file", labelFile, "-l", "y=3", "busybox")
	wantEnv := []string{"A=from-file", "B=two words", "SKIFF_TEST_ENVFILE_KEY=v", "A=from-flag"}
	if !slices.Equal(c.Config.Env, wantEnv) {
		t.Errorf("env %q, want %q", c.Config.Env, wantEnv)
	}
	if !reflect.DeepEqual(c.Config.Labels, map[string]string{"x": "1", "y": "3"}) {
		t.Errorf("labels %v", c.Config.Labels)
	}

	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("MY VAR=1\n"), 0o644)
	if _, err := parseRun(t, "--env-file", bad, "busybox"); err == nil || !strings.Contains(err.Error(), "variable 'MY VAR' contains whitespaces") {
		t.Errorf("bad env file: %v", err)
	}
	if _, err := parseRun(t, "--env-file", filepath.Join(dir, "missing"), "busybox"); err == nil || !strings.HasPrefix(err.Error(), "--env-file: open ") {
		t.Errorf("missing env file: %v", err)
	}
}

func TestParseRunErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-m", "12q", "busybox"}, `invalid argument "12q" for "-m, --memory" flag: invalid suffix: 'q'`},
		{[]string{"--cpus", "0.0000000001", "busybox"}, `value is too precise`},
		{[]string{"--ulimit", "nofile", "busybox"}, `invalid argument "nofile" for "--ulimit" flag`},
		{[]string{"-a", "stdweird", "busybox"}, `valid streams are STDIN, STDOUT and STDERR`},
		{[]string{"--restart", ":3", "busybox"}, `invalid restart policy format: no policy provided before colon`},
		{[]string{"--no-healthcheck", "--health-cmd", "x", "busybox"}, `--no-healthcheck conflicts with --health-* options`},
		{[]string{"-p", "99999:80", "busybox"}, `invalid`},
		{[]string{"--mount", "type=bind,bogus=1", "busybox"}, `unknown option 'bogus'`},
		{[]string{"--add-host", "nocolon", "busybox"}, `bad format for add-host`},
		{[]string{"--memory-swappiness", "101", "busybox"}, `invalid value: 101. Valid memory swappiness range is 0-100`},
		{[]string{"-l", " =x", "busybox"}, `invalid label ' =x': empty name`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, err := parseRun(t, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
