package daemoncmd

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/skiff-dev/skiff/internal/daemon"
)

func TestDaemonConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "daemon.json")
	os.WriteFile(file, []byte(`{"data-root": "/from/file", "hosts": ["unix:///file.sock"], "log-level": "warn"}`), 0o644)
	missing := filepath.Join(dir, "missing.json")
	criOff := filepath.Join(dir, "cri-off.json")
	os.WriteFile(criOff, []byte(`{"cri-socket": ""}`), 0o644)
	certsD := filepath.Join(dir, "certs-d.json")
	os.WriteFile(certsD, []byte(`{"certs-d": "/from/file/certs.d"}`), 0o644)
	str := func(s string) *string { return &s }

	for _, tc := range []struct {
		name string
		args []string
		want daemon.Config
		err  string
	}{
		{"no default file", []string{}, daemon.Config{Hosts: []string{daemon.DefaultHost}, DataRoot: daemon.DefaultDataRoot, ExecRoot: daemon.DefaultExecRoot, LogLevel: "info"}, ""},
		{"file", []string{"--config-file", file}, daemon.Config{Hosts: []string{"unix:///file.sock"}, DataRoot: "/from/file", ExecRoot: daemon.DefaultExecRoot, LogLevel: "warn"}, ""},
		{"flags win", []string{"--config-file", file, "-H", "unix:///a.sock", "--host", "tcp://127.0.0.1:2375", "--data-root", "/d", "--exec-root", "/e", "-D"},
			daemon.Config{Hosts: []string{"unix:///a.sock", "tcp://127.0.0.1:2375"}, DataRoot: "/d", ExecRoot: "/e", Debug: true, LogLevel: "debug"}, ""},
		// nil CRISocket is the default socket; "" from the file turns it off.
		{"cri off in file", []string{"--config-file", criOff}, daemon.Config{Hosts: []string{daemon.DefaultHost}, DataRoot: daemon.DefaultDataRoot, ExecRoot: daemon.DefaultExecRoot, LogLevel: "info", CRISocket: str("")}, ""},
		{"cri flag wins", []string{"--config-file", criOff, "--cri-socket", "/k/cri.sock"}, daemon.Config{Hosts: []string{daemon.DefaultHost}, DataRoot: daemon.DefaultDataRoot, ExecRoot: daemon.DefaultExecRoot, LogLevel: "info", CRISocket: str("/k/cri.sock")}, ""},
		// certs-d: the file's, unless the flag says otherwise (empty:
		// the daemon's default, /etc/skiff/certs.d).
		{"certs-d in file", []string{"--config-file", certsD}, daemon.Config{Hosts: []string{daemon.DefaultHost}, DataRoot: daemon.DefaultDataRoot, ExecRoot: daemon.DefaultExecRoot, LogLevel: "info", CertsD: "/from/file/certs.d"}, ""},
		{"certs-d flag wins", []string{"--config-file", certsD, "--certs-d", "/flag/certs.d"}, daemon.Config{Hosts: []string{daemon.DefaultHost}, DataRoot: daemon.DefaultDataRoot, ExecRoot: daemon.DefaultExecRoot, LogLevel: "info", CertsD: "/flag/certs.d"}, ""},
		{"missing explicit file", []string{"--config-file", missing}, daemon.Config{}, "unable to configure the daemon with file " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got daemon.Config
			ran := false
			cmd := New(Runner{
				Run:            func(ctx context.Context, cfg daemon.Config) error { got, ran = cfg, true; return nil },
				LoadConfigFile: daemon.LoadConfigFile,
			})
			// The default config file lives in /etc; point it at the temp dir.
			cmd.Flags().Lookup("config-file").DefValue = missing
			cmd.Flags().Set("config-file", missing)
			cmd.Flags().Lookup("config-file").Changed = false
			cmd.SetArgs(tc.args)
			err := cmd.Execute()
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || !ran {
				t.Fatalf("error %v ran %v", err, ran)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("config\n got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}
