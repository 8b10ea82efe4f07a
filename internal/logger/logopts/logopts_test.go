package logopts

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/logger"
)

func TestMerge(t *testing.T) {
	def := map[string]string{"max-size": "1m", "cache-max-file": "2", "mode": "non-blocking"}
	cases := []struct {
		driver     string
		opts       map[string]string
		defDriver  string
		wantDriver string
		want       map[string]string
	}{
		{"", nil, "", "json-file", map[string]string{"max-size": "1m", "cache-max-file": "2", "mode": "non-blocking"}},
		{"", map[string]string{"max-size": "5m"}, "", "json-file", map[string]string{"max-size": "5m", "cache-max-file": "2", "mode": "non-blocking"}},
		{"syslog", nil, "json-file", "syslog", map[string]string{"cache-max-file": "2"}},
		{"", nil, "local", "local", map[string]string{"max-size": "1m", "cache-max-file": "2", "mode": "non-blocking"}},
	}
	for _, c := range cases {
		d, o := Merge(c.driver, c.opts, c.defDriver, def)
		if d != c.wantDriver || !maps.Equal(o, c.want) {
			t.Errorf("Merge(%q, %v, %q) = %q %v, want %q %v", c.driver, c.opts, c.defDriver, d, o, c.wantDriver, c.want)
		}
	}
}

func TestValidate(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "log.sock")
	os.WriteFile(sock, nil, 0o600)
	cases := []struct {
		driver string
		opts   map[string]string
		want   string // "" = valid
	}{
		{"json-file", map[string]string{"max-size": "10m", "max-file": "3", "compress": "true", "labels": "a", "labels-regex": "^a", "env": "E", "env-regex": "^E", "tag": "{{.Name}}"}, ""},
		{"none", map[string]string{"anything": "goes"}, ""},
		{"local", nil, ""},
		{"local", map[string]string{"compress": "false", "max-file": "1"}, ""},
		{"syslog", map[string]string{"syslog-address": "udp://1.2.3.4", "syslog-facility": "local7", "syslog-format": "rfc5424micro"}, ""},
		{"syslog", map[string]string{"syslog-address": "unixgram://" + sock, "cache-max-size": "1m", "cache-max-file": "3", "cache-compress": "false"}, ""},
		{"journald", map[string]string{"tag": "x", "labels": "a", "mode": "non-blocking", "max-buffer-size": "4m"}, ""},
		{"gelf", nil, "logger: no log driver named 'gelf' is registered"},
		{"json-file", map[string]string{"syslog-address": "udp://x"}, "unknown log opt 'syslog-address' for json-file log driver"},
		{"local", map[string]string{"b": "1", "a": "1"}, "unknown log opt 'a' for log driver local"},
		{"journald", map[string]string{"max-size": "1m"}, "unknown log opt 'max-size' for journald log driver"},
		{"syslog", map[string]string{"syslog-address": "ftp://x"}, "unsupported scheme: 'ftp'"},
		{"syslog", map[string]string{"syslog-facility": "24"}, "invalid syslog facility"},
		{"syslog", map[string]string{"syslog-format": "json"}, "Invalid syslog format"},
		{"syslog", map[string]string{"cache-max-file": "x"}, `invalid value for cache-max-file: x: strconv.Atoi: parsing "x": invalid syntax`},
		{"json-file", map[string]string{"mode": "later"}, "logger: logging mode not supported: later"},
		{"json-file", map[string]string{"max-buffer-size": "1m"}, "logger: max-buffer-size option is only supported with 'mode=non-blocking'"},
		{"json-file", map[string]string{"mode": "non-blocking", "max-buffer-size": "lots"}, "error parsing option max-buffer-size"},
		{"json-file", map[string]string{"max-size": "0"}, "max-size must be a positive number"},
		{"json-file", map[string]string{"compress": "yes"}, `strconv.ParseBool: parsing "yes": invalid syntax`},
		{"json-file", map[string]string{"max-size": "1m", "compress": "true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{"local", map[string]string{"max-size": "-1"}, "invalid value for max-size: -1: invalid size: '-1'"},
		{"local", map[string]string{"max-file": "-1"}, "max-file must not be negative"},
		{"json-file", map[string]string{"env-regex": "["}, "error parsing regexp"},
		{"json-file", map[string]string{"tag": "{{"}, "template: log-tag:1"},
	}
	for _, c := range cases {
		err := Validate(c.driver, c.opts)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %v: %v", c.driver, c.opts, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %v: %v, want %q", c.driver, c.opts, err, c.want)
		case c.want != "" && !errdefs.IsInvalid(err):
			t.Errorf("%s %v: kind %v", c.driver, c.opts, errdefs.KindOf(err))
		}
	}
}

func testInfo(opts map[string]string) *Info {
	return &Info{
		Config: opts, ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		ContainerName: "/web", ContainerEntrypoint: "sh", ContainerArgs: []string{"-c", "true"},
		ContainerImageID: "sha256:fedcba9876543210fedcba", ContainerImageName: "busybox:latest",
		ContainerEnv:    []string{"STAGE=prod", "APP_A=1", "OTHER=x"},
		ContainerLabels: map[string]string{"com.example.team": "blue", "tier": "web"},
	}
}

func TestTag(t *testing.T) {
	cases := map[string]string{
		"":                                     "0123456789ab",
		"{{.FullID}}":                          "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"{{.Name}}":                            "web",
		"{{.ImageName}}/{{.ImageID}}":          "busybox:latest/fedcba987654",
		"{{.Command}}":                         "sh -c true",
		"{{.DaemonName}}|{{upper .Name}}":      "docker|WEB",
		"{{truncate .ID 4}}-{{pad .Name 1 1}}": "0123- web ",
		"fixed":                                "fixed",
	}
	for tmpl, want := range cases {
		i := testInfo(map[string]string{"tag": tmpl})
		i.DaemonName = "docker"
		if got, err := i.Tag("{{.ID}}"); err != nil || got != want {
			t.Errorf("tag %q = %q, %v; want %q", tmpl, got, err, want)
		}
	}
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	opts := map[string]string{"labels": "com.example.team", "env-regex": "^APP_", "tag": "{{.Name}}", "max-size": "1k", "max-file": "3", "compress": "true"}
	cfg, err := Resolve(testInfo(opts), "json-file", dir)
	if err != nil {
		t.Fatal(err)
	}
	want := &logger.Config{Driver: "json-file",
		File:  &logger.FileConfig{Path: filepath.Join(dir, testInfo(nil).ContainerID+"-json.log"), MaxSize: 1000, MaxFiles: 3, Compress: true},
		Attrs: []logger.Attr{{Key: "APP_A", Value: "1"}, {Key: "com.example.team", Value: "blue"}, {Key: "tag", Value: "web"}}}
	if !reflect.DeepEqual(cfg, want) {
		t.Errorf("json-file:\n got %+v %+v\nwant %+v %+v", cfg, cfg.File, want, want.File)
	}

	cfg, err = Resolve(testInfo(map[string]string{"syslog-address": "tcp://127.0.0.1", "syslog-facility": "local1", "labels": "tier"}), "syslog", dir)
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg.Syslog; s.Network != "tcp" || s.Address != "127.0.0.1:514" || s.Facility != 17<<3 || s.Tag != "0123456789ab" {
		t.Errorf("syslog %+v", s)
	}
	if c := cfg.Cache; c == nil || c.Path != filepath.Join(dir, "container-cached.log") || c.MaxSize != 20<<20 || c.MaxFiles != 5 || !c.Compress {
		t.Errorf("cache %+v", c)
	}

	cfg, err = Resolve(testInfo(map[string]string{"labels": "com.example.team", "env": "STAGE", "cache-disabled": "true"}), "journald", dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, f := range cfg.Journald.Fields {
		got[f.Key] = f.Value
	}
	wantF := map[string]string{"CONTAINER_ID": "0123456789ab", "CONTAINER_ID_FULL": testInfo(nil).ContainerID, "CONTAINER_NAME": "web",
		"CONTAINER_TAG": "0123456789ab", "SYSLOG_IDENTIFIER": "0123456789ab", "IMAGE_NAME": "busybox:latest",
		"COM_EXAMPLE_TEAM": "blue", "STAGE": "prod"}
	if !maps.Equal(got, wantF) || cfg.Cache != nil {
		t.Errorf("journald fields %v cache %v", got, cfg.Cache)
	}
	if journalKey("_a.b-c9") != "A_B_C9" {
		t.Errorf("journalKey %q", journalKey("_a.b-c9"))
	}
	if Readable("journald", map[string]string{"cache-disabled": "true"}) || !Readable("syslog", nil) || Readable("none", nil) {
		t.Error("Readable")
	}
}
