package cri

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/filters"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// fakeImages is an image store keyed by id, each with its familiar names.
type fakeImages struct {
	ContainerBackend // nil: the image tests call none of it

	mu      sync.Mutex
	images  map[string]*image.InspectResponse
	pulled  []string
	auth    []string
	removed []string
}

func (f *fakeImages) find(ref string) *image.InspectResponse {
	for _, img := range f.images {
		if img.ID == ref {
			return img
		}
		for _, t := range img.RepoTags {
			if t == ref || "docker.io/library/"+t == ref {
				return img
			}
		}
	}
	return nil
}

func (f *fakeImages) ImagePull(ctx context.Context, ref string, opts engine.PullOptions) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if ref == "nosuch:latest" {
		return errdefs.NotFound("pull access denied for nosuch")
	}
	f.pulled, f.auth = append(f.pulled, ref), append(f.auth, opts.RegistryAuth)
	opts.Progress(jsonMessage())
	f.images["sha256:p"] = &image.InspectResponse{ID: "sha256:p", RepoTags: []string{ref}, Config: userCfg("")}
	return nil
}

func (f *fakeImages) SubscribeEvents(since, until time.Time, fl filters.Args) ([]events.Message, <-chan events.Message, func()) {
	return nil, nil, func() {}
}

func (f *fakeImages) ImageImport(ctx context.Context, src io.Reader, opts engine.ImportOptions) (string, error) {
	return "", errdefs.NotImplemented("fake")
}

func (f *fakeImages) ImageList(ctx context.Context, opts engine.ImageListOptions) ([]image.Summary, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []image.Summary
	for _, img := range f.images {
		out = append(out, image.Summary{ID: img.ID})
	}
	return out, nil
}

func (f *fakeImages) ImageInspect(ctx context.Context, ref string) (*image.InspectResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if img := f.find(ref); img != nil {
		return img, nil
	}
	return nil, errdefs.NotFound("No such image: %s", ref)
}

func (f *fakeImages) ImageRemove(ctx context.Context, ref string, force, noPrune bool) ([]image.DeleteResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !force {
		return nil, errdefs.Invalid("want force")
	}
	f.removed = append(f.removed, ref)
	delete(f.images, ref)
	return nil, nil
}

// serve starts s on a socket in a temp dir and returns clients for it.
func serve(t *testing.T, b Backend) (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "cri.sock")
	l, err := listenUnix(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- New(b, Options{ImageFsDirs: []string{t.TempDir()}}).Serve(ctx, l) }()
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

func TestRuntimeInfo(t *testing.T) {
	rt, _ := serve(t, &fakeImages{})
	ctx := context.Background()
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "skiff" || v.RuntimeApiVersion != "v1" || v.RuntimeVersion != engine.Version {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	conds := map[string]bool{}
	for _, c := range st.Status.Conditions {
		conds[c.Type] = c.Status
	}
	if ready, ok := conds[runtimeapi.RuntimeReady]; !ok || !ready {
		t.Errorf("RuntimeReady: %v", st.Status.Conditions)
	}
	if _, ok := conds[runtimeapi.NetworkReady]; !ok {
		t.Errorf("no NetworkReady condition: %v", st.Status.Conditions)
	}
	rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{})
	if err != nil || rc.GetLinux().GetCgroupDriver() != runtimeapi.CgroupDriver_CGROUPFS {
		t.Errorf("RuntimeConfig = %v, %v", rc, err)
	}
	// What is not implemented says so: a kubelet must not get a fake pod.
	_, err = rt.CheckpointContainer(ctx, &runtimeapi.CheckpointContainerRequest{})
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("CheckpointContainer: %v, want Unimplemented", err)
	}
}

func TestImages(t *testing.T) {
	dgst := "sha256:" + strings.Repeat("d", 64)
	f := &fakeImages{images: map[string]*image.InspectResponse{
		"sha256:a": {ID: "sha256:a", RepoTags: []string{"busybox:latest"}, RepoDigests: []string{"busybox@" + dgst}, Size: 42, Config: userCfg("1000:1000")},
		"sha256:b": {ID: "sha256:b", RepoTags: []string{"example.com/x/y:1"}, Config: userCfg("nobody")},
		"sha256:c": {ID: "sha256:c", Config: userCfg("")},
	}}
	_, img := serve(t, f)
	ctx := context.Background()

	list, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 3 {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	byID := map[string]*runtimeapi.Image{}
	for _, i := range list.Images {
		byID[i.Id] = i
	}
	a := byID["sha256:a"]
	if a.RepoTags[0] != "docker.io/library/busybox:latest" || a.RepoDigests[0] != "docker.io/library/busybox@"+dgst || a.Size != 42 || a.Uid.GetValue() != 1000 || a.Username != "" {
		t.Errorf("image a: %v", a)
	}
	if b := byID["sha256:b"]; b.Uid != nil || b.Username != "nobody" || b.RepoTags[0] != "example.com/x/y:1" {
		t.Errorf("image b: %v", b)
	}
	if c := byID["sha256:c"]; c.Uid != nil || c.Username != "" {
		t.Errorf("image c: %v", c)
	}

	filtered, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{Filter: &runtimeapi.ImageFilter{Image: &runtimeapi.ImageSpec{Image: "busybox:latest"}}})
	if err != nil || len(filtered.Images) != 1 || filtered.Images[0].Id != "sha256:a" {
		t.Errorf("filtered ListImages = %v, %v", filtered, err)
	}

	st, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: "missing:1"}})
	if err != nil || st.Image != nil {
		t.Errorf("ImageStatus of a missing image = %v, %v; want no image, no error", st, err)
	}

	auth := &runtimeapi.AuthConfig{Username: "u", Password: "p", ServerAddress: "example.com"}
	pull, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "example.com/new:1"}, Auth: auth})
	if err != nil || pull.ImageRef != "sha256:p" {
		t.Fatalf("PullImage = %v, %v", pull, err)
	}
	got, err := regclient.DecodeAuth(f.auth[0])
	if err != nil || got.Username != "u" || got.Password != "p" || got.ServerAddress != "example.com" {
		t.Errorf("pull auth = %+v, %v", got, err)
	}
	if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: &runtimeapi.ImageSpec{Image: "nosuch:latest"}}); status.Code(err) != codes.NotFound {
		t.Errorf("PullImage of a missing image: %v, want NotFound", err)
	}

	for range 2 { // the second time the image is gone: still success
		if _, err := img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: &runtimeapi.ImageSpec{Image: "busybox:latest"}}); err != nil {
			t.Fatalf("RemoveImage: %v", err)
		}
	}
	if len(f.removed) != 1 || f.removed[0] != "sha256:a" {
		t.Errorf("removed %v, want [sha256:a] (by id, once)", f.removed)
	}

	fs, err := img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].FsId.Mountpoint == "" || fs.ImageFilesystems[0].InodesUsed.GetValue() < 1 {
		t.Errorf("ImageFsInfo = %v, %v", fs, err)
	}
}

func jsonMessage() jsonstream.Message { return jsonstream.Message{Status: "pulling"} }

func listenUnix(path string) (net.Listener, error) { return net.Listen("unix", path) }

func userCfg(user string) *dockerspec.DockerOCIImageConfig {
	return &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{User: user}}
}

func TestPortMappingsNeedPortmap(t *testing.T) {
	dir := t.TempDir()
	conf := `{"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "loopback"}]}`
	if err := os.WriteFile(filepath.Join(dir, "10-n.conflist"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	s := New(&fakeImages{}, Options{CNIConfDir: dir, StateDir: t.TempDir(), NetNSDir: t.TempDir()})
	_, err := s.setupPodNetwork(context.Background(), "id", 1, &runtimeapi.PodSandboxMetadata{},
		[]*runtimeapi.PortMapping{{HostPort: 8080, ContainerPort: 80}})
	if !errdefs.IsInvalid(err) || !strings.Contains(err.Error(), "portMappings capability") {
		t.Fatalf("port mappings without portmap: %v, want Invalid", err)
	}
	if st := s.networkCondition(); !st.Status {
		t.Errorf("NetworkReady with a conflist: %v", st)
	}
	if st := New(&fakeImages{}, Options{CNIConfDir: t.TempDir()}).networkCondition(); st.Status || st.Reason == "" {
		t.Errorf("NetworkReady without a conflist: %v", st)
	}
}
