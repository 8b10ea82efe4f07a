package engine

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
)

func TestParsePsFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		f    filters.Args
		want string
	}{
		{filters.Args{"colour": {"red"}}, "invalid filter 'colour'"},
		{filters.Args{"exited": {"x"}}, `invalid filter 'exited=x': strconv.Atoi: parsing "x": invalid syntax`},
		{filters.Args{"status": {"up"}}, "invalid filter 'status=up': invalid value for state (up): must be one of created, running, paused, restarting, removing, exited, dead"},
		{filters.Args{"health": {"ok"}}, "invalid filter 'health=ok': invalid value for health (ok): must be one of none, starting, healthy, unhealthy"},
		{filters.Args{"is-task": {"maybe"}}, "invalid filter 'is-task=[maybe]'"},
		{filters.Args{"is-task": {"true", "false"}}, "invalid filter 'is-task=[true false]'"},
		{filters.Args{"publish": {"127.0.0.1:80"}}, "filter for 'publish' should not contain ':': 127.0.0.1:80"},
		{filters.Args{"expose": {"80-70"}}, "error while looking up for expose 80-70: invalid port range: 80-70"},
		{filters.Args{"publish": {"http"}}, "error while looking up for publish http: invalid start port 'http': invalid syntax"},
	} {
		_, err := parsePsFilter(tc.f, false)
		if err == nil || err.Error() != tc.want || !errdefs.IsInvalid(err) {
			t.Errorf("%v: %v, want Invalid %q", tc.f, err, tc.want)
		}
	}
	for _, ok := range []filters.Args{
		{"isolation": {"default"}}, {"is-task": {"false"}}, {"publish": {"8000-8080/tcp"}}, {"expose": {"53/udp"}},
		{"health": {"none", "healthy"}}, {"status": {"exited", "dead"}}, {"exited": {"0", "137"}},
	} {
		if _, err := parsePsFilter(ok, false); err != nil {
			t.Errorf("%v: %v", ok, err)
		}
	}
}

func TestPsFilterMatch(t *testing.T) {
	web := psRow{
		ID: "aaa111", Name: "web", Running: true, Started: true, State: container.StateRunning, Health: "healthy",
		Labels: map[string]string{"tier": "front", "x": ""}, ImageID: "sha256:img1",
		Mounts: []container.MountPoint{
			{Type: "volume", Name: "data", Source: "/var/lib/skiff/volumes/data/_data", Destination: "/data"},
			{Type: "bind", Source: "/srv/conf", Destination: "/etc/conf"},
		},
		Networks: map[string]*network.EndpointSettings{"appnet": {NetworkID: "0123456789abcdef"}},
		Ports: []container.PortSummary{
			{IP: netip.IPv4Unspecified(), PrivatePort: 80, PublicPort: 8080, Type: "tcp"},
			{PrivatePort: 53, Type: "udp"},
		},
	}
	dead := psRow{
		ID: "bbb222", Name: "job", Started: true, ExitCode: 3, State: container.StateExited, Health: "none",
		ImageID:  "sha256:img2",
		Networks: map[string]*network.EndpointSettings{"bridge": {NetworkID: "feedface"}},
	}
	fresh := psRow{ID: "ccc333", Name: "new", State: container.StateCreated, Health: "none",
		Networks: map[string]*network.EndpointSettings{"bridge": {NetworkID: "feedface"}}}
	rows := []psRow{web, dead, fresh}

	for _, tc := range []struct {
		name string
		f    filters.Args
		all  bool
		want []string // ids
	}{
		{"running only", filters.Args{}, false, []string{"aaa111"}},
		{"all", filters.Args{}, true, []string{"aaa111", "bbb222", "ccc333"}},
		{"status implies all", filters.Args{"status": {"exited", "created"}}, false, []string{"bbb222", "ccc333"}},
		{"exited needs all", filters.Args{"exited": {"3"}}, false, nil},
		{"exited", filters.Args{"exited": {"3"}}, true, []string{"bbb222"}},
		{"exited never started", filters.Args{"exited": {"0"}}, true, nil},
		{"name substring", filters.Args{"name": {"we"}}, true, []string{"aaa111"}},
		{"name regexp", filters.Args{"name": {"^/(job|new)$"}}, true, []string{"bbb222", "ccc333"}},
		{"name anchored without slash", filters.Args{"name": {"^web$"}}, true, []string{"aaa111"}},
		{"label key", filters.Args{"label": {"x"}}, true, []string{"aaa111"}},
		{"label pair and key", filters.Args{"label": {"tier=front", "x"}}, true, []string{"aaa111"}},
		{"label wrong value", filters.Args{"label": {"tier=back"}}, true, nil},
		{"health", filters.Args{"health": {"none"}}, true, []string{"bbb222", "ccc333"}},
		{"is-task true", filters.Args{"is-task": {"true"}}, true, nil},
		{"is-task false", filters.Args{"is-task": {"0"}}, true, []string{"aaa111", "bbb222", "ccc333"}},
		{"isolation", filters.Args{"isolation": {"hyperv"}}, true, []string{"aaa111", "bbb222", "ccc333"}},
		{"volume by name", filters.Args{"volume": {"data"}}, true, []string{"aaa111"}},
		{"volume by destination", filters.Args{"volume": {"/etc/conf"}}, true, []string{"aaa111"}},
		{"bind by source", filters.Args{"volume": {"/srv/conf"}}, true, []string{"aaa111"}},
		{"volume missing", filters.Args{"volume": {"other"}}, true, nil},
		{"network by name", filters.Args{"network": {"bridge"}}, true, []string{"bbb222", "ccc333"}},
		{"network by id prefix", filters.Args{"network": {"0123"}}, true, []string{"aaa111"}},
		{"network by full id", filters.Args{"network": {"0123456789abcdef"}}, true, []string{"aaa111"}},
		{"network unknown", filters.Args{"network": {"nope"}}, true, nil},
		{"publish", filters.Args{"publish": {"8080"}}, true, []string{"aaa111"}},
		{"publish range", filters.Args{"publish": {"8000-8100/tcp"}}, true, []string{"aaa111"}},
		{"publish wrong proto", filters.Args{"publish": {"8080/udp"}}, true, nil},
		{"publish container port", filters.Args{"publish": {"80"}}, true, nil},
		{"expose", filters.Args{"expose": {"80/tcp"}}, true, []string{"aaa111"}},
		{"expose unpublished", filters.Args{"expose": {"53/udp"}}, true, []string{"aaa111"}},
		{"expose range miss", filters.Args{"expose": {"81-90"}}, true, nil},
	} {
		pf, err := parsePsFilter(tc.f, tc.all)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		var got []string
		for i := range rows {
			if pf.match(&rows[i]) {
				got = append(got, rows[i].ID)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: got %v, want %v", tc.name, got, tc.want)
				break
			}
		}
	}

	// The engine resolves ids and ancestors into sets.
	pf, _ := parsePsFilter(filters.Args{"id": {"bbb"}}, true)
	pf.ids = map[string]bool{"bbb222": true}
	if pf.match(&web) || !pf.match(&dead) {
		t.Errorf("id set not applied")
	}
	pf, _ = parsePsFilter(filters.Args{"ancestor": {"busybox"}}, true)
	pf.ancestorSet, pf.ancestors = true, map[string]bool{}
	if pf.match(&web) {
		t.Errorf("an ancestor filter naming no image matched")
	}
	pf.ancestors["sha256:img1"] = true
	if !pf.match(&web) || pf.match(&dead) {
		t.Errorf("ancestor set not applied")
	}
}

func TestCommandString(t *testing.T) {
	for _, tc := range []struct {
		path string
		args []string
		want string
	}{
		{"sh", nil, "sh"},
		{"sh", []string{"-c", "sleep 100"}, "sh -c 'sleep 100'"},
		{"/docker-entrypoint.sh", []string{"nginx", "-g", "daemon off;"}, "/docker-entrypoint.sh nginx -g 'daemon off;'"},
		{"echo", []string{"it's", "a b"}, "echo it's 'a b'"},
		{"echo", []string{""}, "echo "},
	} {
		if got := commandString(tc.path, tc.args); got != tc.want {
			t.Errorf("commandString(%q, %q) = %q, want %q", tc.path, tc.args, got, tc.want)
		}
	}
}
