package image

import (
	"bytes"
	"context"
	"reflect"
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestApplyChanges(t *testing.T) {
	cfg := func(f func(c *dockerspec.DockerOCIImageConfig)) dockerspec.DockerOCIImageConfig {
		c := dockerspec.DockerOCIImageConfig{}
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		base    dockerspec.DockerOCIImageConfig
		changes []string
		want    dockerspec.DockerOCIImageConfig
	}{
		{"cmd json", dockerspec.DockerOCIImageConfig{}, []string{`CMD ["/bin/sh", "-c", "echo hi"]`},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Cmd = []string{"/bin/sh", "-c", "echo hi"} })},
		{"cmd shell", dockerspec.DockerOCIImageConfig{}, []string{`CMD echo "hi there"`},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Cmd = []string{"/bin/sh", "-c", `echo "hi there"`} })},
		{"entrypoint drops the inherited cmd", cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Cmd = []string{"old"} }), []string{`ENTRYPOINT ["/bin/app"]`},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Entrypoint = []string{"/bin/app"} })},
		{"entrypoint keeps a cmd given with it", dockerspec.DockerOCIImageConfig{}, []string{`CMD ["x"]`, `ENTRYPOINT /bin/app -v`},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Cmd = []string{"x"}
				c.Entrypoint = []string{"/bin/sh", "-c", "/bin/app -v"}
			})},
		{"env both forms, replace and expand", cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Env = []string{"PATH=/bin", "A=1"} }),
			[]string{"ENV A 2", `ENV B=$A C="with space" PATH=/usr/bin:$PATH`},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Env = []string{"PATH=/usr/bin:/bin", "A=2", "B=2", "C=with space"}
			})},
		{"workdir relative and expanded", cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Env = []string{"D=data"} }), []string{"WORKDIR /srv", "WORKDIR $D/../app"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Env = []string{"D=data"}
				c.WorkingDir = "/srv/app"
			})},
		{"user", dockerspec.DockerOCIImageConfig{}, []string{"USER nobody:nogroup"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.User = "nobody:nogroup" })},
		{"expose", dockerspec.DockerOCIImageConfig{}, []string{"EXPOSE 80 443/tcp 53/udp 8000-8001"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.ExposedPorts = map[string]struct{}{"80/tcp": {}, "443/tcp": {}, "53/udp": {}, "8000/tcp": {}, "8001/tcp": {}}
			})},
		{"label", dockerspec.DockerOCIImageConfig{}, []string{`LABEL a=b "c d"="e f"`, "LABEL old style"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Labels = map[string]string{"a": "b", "c d": "e f", "old": "style"}
			})},
		{"volume", dockerspec.DockerOCIImageConfig{}, []string{`VOLUME ["/data", "/logs"]`, "VOLUME /cache"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Volumes = map[string]struct{}{"/data": {}, "/logs": {}, "/cache": {}}
			})},
		{"stopsignal", dockerspec.DockerOCIImageConfig{}, []string{"STOPSIGNAL SIGUSR1"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.StopSignal = "SIGUSR1" })},
		{"onbuild", dockerspec.DockerOCIImageConfig{}, []string{"ONBUILD RUN echo hi"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.OnBuild = []string{"RUN echo hi"} })},
		{"healthcheck", dockerspec.DockerOCIImageConfig{}, []string{"HEALTHCHECK --interval=5s --retries=2 CMD true"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) {
				c.Healthcheck = &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "true"}, Interval: 5 * time.Second, Retries: 2}
			})},
		{"lower case", dockerspec.DockerOCIImageConfig{}, []string{"cmd echo"},
			cfg(func(c *dockerspec.DockerOCIImageConfig) { c.Cmd = []string{"/bin/sh", "-c", "echo"} })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.base
			if err := ApplyChanges(&got, tc.changes); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestApplyChangesErrors(t *testing.T) {
	tests := []struct{ change, msg string }{
		{"FROM busybox", "FROM is not a valid change command"},
		{"RUN echo", "RUN is not a valid change command"},
		{"COPY a b", "COPY is not a valid change command"},
		{"BOGUS x", "is not a valid change command"},
		{"ENV", "dockerfile parse error"},
		{"EXPOSE notaport", "dockerfile parse error"},
		{"STOPSIGNAL SIGNOPE", "Invalid signal"},
		{"STOPSIGNAL SIGRTMIN+16", "Invalid signal"},
		{"STOPSIGNAL RTMAX-15", "Invalid signal"},
		{"WORKDIR", "dockerfile parse error"},
		{"ONBUILD FROM x", "dockerfile parse error"},
	}
	for _, tc := range tests {
		t.Run(tc.change, func(t *testing.T) {
			cfg := dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{User: "keep"}}
			err := ApplyChanges(&cfg, []string{"CMD ok", tc.change})
			if !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("ApplyChanges(%q): %v, want Invalid %q", tc.change, err, tc.msg)
			}
			if cfg.User != "keep" || cfg.Cmd != nil {
				t.Fatalf("a failed change altered the config: %+v", cfg)
			}
		})
	}
}

func TestImportWithChanges(t *testing.T) {
	f := newFixture(t)
	img, err := f.s.Import(context.Background(), bytes.NewReader(busyboxTar(t)), ImportOptions{
		Ref:      "withcfg",
		Changes:  []string{`CMD ["/bin/sh"]`, "ENV PATH=/bin", "WORKDIR /tmp", "EXPOSE 8080"},
		Platform: "linux/arm64/v8",
	})
	if err != nil {
		t.Fatal(err)
	}
	c := img.Config
	if !reflect.DeepEqual(c.Config.Cmd, []string{"/bin/sh"}) || c.Config.WorkingDir != "/tmp" || c.Config.Env[0] != "PATH=/bin" || c.Architecture != "arm64" || c.Variant != "v8" {
		t.Fatalf("config %+v", c)
	}
	// And it survives a reopen (read back from the content store).
	f.db.Close()
	f.open(t)
	again, err := f.s.Get(context.Background(), "withcfg")
	if err != nil || !reflect.DeepEqual(again.Config.Config, c.Config) || again.ID != img.ID {
		t.Fatalf("after reopen: %+v %v", again, err)
	}
}
