package apiserver

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	registrytypes "github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// dockerd with swarm mode off reports the whole Swarm object, state
// "inactive" (compose reads an empty state as an active swarm).
func TestInfoSwarmInactive(t *testing.T) {
	sock := serve(t, &fakeBackend{info: func(context.Context) (*system.Info, error) {
		return &system.Info{ID: "x"}, nil
	}})
	resp, body := rawDo(t, sock, "GET", "/v1.41/info", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	want := `{"NodeID":"","NodeAddr":"","LocalNodeState":"inactive","ControlAvailable":false,"Error":"","RemoteManagers":null}`
	if got := string(raw["Swarm"]); got != want {
		t.Errorf("Swarm = %s\nwant    %s", got, want)
	}
	c := newClient(t, sock, "")
	res, err := c.Info(context.Background(), client.InfoOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Info.Swarm.LocalNodeState != "inactive" {
		t.Errorf("client sees %q", res.Info.Swarm.LocalNodeState)
	}
}

// Progress messages go out as dockerd 28 writes them: progressDetail
// always present on layer messages ({} when there is nothing to count),
// the rendered bar in "progress" beside it when there is.
func TestProgressWireFormat(t *testing.T) {
	sock := serve(t, &fakeBackend{imgPull: func(ctx context.Context, ref string, opts engine.PullOptions) error {
		opts.Progress(jsonstream.Message{Status: "Pulling from library/busybox", ID: "latest"})
		opts.Progress(jsonstream.Message{Status: "Pulling fs layer", ID: "abc", Progress: &jsonstream.Progress{}})
		opts.Progress(jsonstream.Message{Status: "Downloading", ID: "abc", Progress: &jsonstream.Progress{Current: 1 << 20, Total: 4 << 20}})
		opts.Progress(jsonstream.Message{Status: "Extracting", ID: "abc", Progress: &jsonstream.Progress{Current: 5000}})
		opts.Progress(jsonstream.Message{Status: "Pull complete", ID: "abc", Progress: &jsonstream.Progress{}})
		opts.Progress(jsonstream.Message{Status: "Digest: sha256:0"})
		return nil
	}})
	resp, body := rawDo(t, sock, "POST", "/v1.50/images/create?fromImage=busybox&tag=latest", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := []string{
		`{"status":"Pulling from library/busybox","id":"latest"}`,
		`{"status":"Pulling fs layer","progressDetail":{},"id":"abc"}`,
		`{"status":"Downloading","progressDetail":{"current":1048576,"total":4194304},"progress":"[============>                                      ]  1.049MB/4.194MB","id":"abc"}`,
		`{"status":"Extracting","progressDetail":{"current":5000},"progress":"     5kB","id":"abc"}`,
		`{"status":"Pull complete","progressDetail":{},"id":"abc"}`,
		`{"status":"Digest: sha256:0"}`,
	}
	got := strings.Split(strings.TrimSpace(string(body)), "\n")
	if len(got) != len(want) {
		t.Fatalf("got %d lines:\n%s", len(got), body)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d:\n got %s\nwant %s", i, got[i], want[i])
		}
	}
}

func TestProgressText(t *testing.T) {
	for _, tc := range []struct {
		p    *jsonstream.Progress
		want string
	}{
		{nil, ""},
		{&jsonstream.Progress{}, ""},
		{&jsonstream.Progress{Current: 10, Total: 10}, "[==================================================>]      10B/10B"},
		{&jsonstream.Progress{Current: 20, Total: 10}, "[==================================================>]      20B"},
		{&jsonstream.Progress{Current: 3, Total: 4, Units: "items"}, "[=====================================>             ] 3/4 items"},
		{&jsonstream.Progress{Current: 3, Total: 4, HideCounts: true}, "[=====================================>             ] "},
		{&jsonstream.Progress{Current: 7, Units: "steps"}, "7 steps"},
	} {
		if got := progressText(tc.p); got != tc.want {
			t.Errorf("progressText(%+v) = %q, want %q", tc.p, got, tc.want)
		}
	}
}

// registryFake adds the registry routes' backend to fakeBackend.
type registryFake struct {
	fakeBackend
	inspect func(ctx context.Context, n reference.Named, auth string) (*registrytypes.DistributionInspect, error)
}

func (f *registryFake) ImagePush(ctx context.Context, name string, opts engine.PushOptions) error {
	return errdefs.NotImplemented("fake")
}

func (f *registryFake) RegistryLogin(ctx context.Context, auth regclient.Auth) (string, error) {
	return "", errdefs.NotImplemented("fake")
}

func (f *registryFake) DistributionInspect(ctx context.Context, n reference.Named, auth string) (*registrytypes.DistributionInspect, error) {
	return f.inspect(ctx, n, auth)
}

func TestDistributionInspect(t *testing.T) {
	var gotRef, gotAuth string
	d := digest.FromString("index")
	fb := &registryFake{inspect: func(ctx context.Context, n reference.Named, auth string) (*registrytypes.DistributionInspect, error) {
		gotRef, gotAuth = n.String(), auth
		if reference.Path(n) == "library/missing" {
			return nil, errdefs.NotFound("manifest for missing:latest not found: manifest unknown: manifest unknown")
		}
		return &registrytypes.DistributionInspect{
			Descriptor: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: d, Size: 123},
			Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}},
		}, nil
	}}
	sock := serve(t, fb)

	resp, body := rawDo(t, sock, "GET", "/v1.50/distribution/busybox/json", nil)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	want := `{"Descriptor":{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"` + d.String() + `","size":123},"Platforms":[{"architecture":"amd64","os":"linux"}]}`
	if strings.TrimSpace(string(body)) != want || gotRef != "docker.io/library/busybox" {
		t.Errorf("got %s for %s", body, gotRef)
	}

	// The official client sends X-Registry-Auth with the reference.
	c := newClient(t, sock, "")
	res, err := c.DistributionInspect(context.Background(), "127.0.0.1:5000/app/web:v2", client.DistributionInspectOptions{EncodedRegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	if gotRef != "127.0.0.1:5000/app/web:v2" || gotAuth != "e30=" || res.Descriptor.Digest != d || len(res.Platforms) != 1 {
		t.Errorf("client: %+v (ref %s auth %q)", res, gotRef, gotAuth)
	}

	for _, tc := range []struct {
		path   string
		status int
		msg    string
	}{
		{"/distribution/Busy_Box/json", 400, "invalid reference format: repository name (library/Busy_Box) must be lowercase"},
		{"/distribution/sha256:" + strings.Repeat("a", 64) + "/json", 500, "no manifest found for full image ID"},
		{"/distribution/missing/json", 404, "manifest for missing:latest not found: manifest unknown: manifest unknown"},
		{"/distribution/busybox", 404, "page not found"},
	} {
		resp, body := rawDo(t, sock, "GET", tc.path, nil)
		if resp.StatusCode != tc.status || errMessage(t, body) != tc.msg {
			t.Errorf("%s: %d %s, want %d %q", tc.path, resp.StatusCode, body, tc.status, tc.msg)
		}
	}
}

// dfFake answers the engine's part of GET /system/df.
type dfFake struct {
	fakeBackend
	types []string
}

func (f *dfFake) SystemDiskUsage(ctx context.Context, types []string) (*engine.DiskUsage, error) {
	f.types = types
	return &engine.DiskUsage{Images: []*image.Summary{}, Containers: []*container.Summary{}, BuildCache: []*build.CacheRecord{},
		Volumes: []*volume.Volume{{Name: "data", Driver: "local", Scope: "local", UsageData: &volume.UsageData{Size: 1000, RefCount: 1}}}}, nil
}

// The build cache comes from the build backend; volumes from the engine.
func TestSystemDFBuildCache(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "api.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	fb := &dfFake{}
	srv := New(fb, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Build: &fakeBuilds{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, l) }()
	defer func() { cancel(); <-done }()

	c := newClient(t, sock, "")
	du, err := c.DiskUsage(context.Background(), client.DiskUsageOptions{Volumes: true, BuildCache: true, Verbose: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(du.BuildCache.Items) != 1 || du.BuildCache.Items[0].Size != 4096 || du.BuildCache.TotalCount != 1 {
		t.Errorf("build cache: %+v", du.BuildCache)
	}
	if du.Volumes.TotalCount != 1 || du.Volumes.TotalSize != 1000 || du.Volumes.ActiveCount != 1 {
		t.Errorf("volumes: %+v", du.Volumes)
	}
	// Only what was asked for.
	resp, body := rawDo(t, sock, "GET", "/v1.50/system/df?type=volume", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"BuildCache":[]`) || len(fb.types) != 1 {
		t.Errorf("type=volume: %d %s (types %v)", resp.StatusCode, body, fb.types)
	}
}
