package tests

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// criClients dials the daemon's CRI socket as the kubelet does.
func (d *daemon) criClients() (runtimeapi.RuntimeServiceClient, runtimeapi.ImageServiceClient) {
	d.t.Helper()
	conn, err := grpc.NewClient("unix://"+d.criSock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		d.t.Fatal(err)
	}
	d.t.Cleanup(func() { conn.Close() })
	return runtimeapi.NewRuntimeServiceClient(conn), runtimeapi.NewImageServiceClient(conn)
}

// The CRI socket answers Version, Status and RuntimeConfig, refuses what it
// does not implement, and serves images from the engine's own store: a pull
// with the request's credentials shows up in `skiff images`, and RemoveImage
// is idempotent.
func TestCRIEndpointAndImages(t *testing.T) {
	reg := startRegistry(t, "criuser", "cri-pass")
	d := startDaemon(t)
	rt, img := d.criClients()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	if st, err := os.Stat(d.criSock); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CRI socket: %v, mode %v; want 0600 (the CRI has no authentication)", err, st.Mode())
	}
	v, err := rt.Version(ctx, &runtimeapi.VersionRequest{})
	if err != nil || v.RuntimeName != "skiff" || v.RuntimeApiVersion != "v1" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	st, err := rt.Status(ctx, &runtimeapi.StatusRequest{})
	if err != nil || len(st.Status.Conditions) != 2 || !st.Status.Conditions[0].Status {
		t.Fatalf("Status = %v, %v", st, err)
	}
	if rc, err := rt.RuntimeConfig(ctx, &runtimeapi.RuntimeConfigRequest{}); err != nil || rc.Linux.CgroupDriver != runtimeapi.CgroupDriver_CGROUPFS {
		t.Fatalf("RuntimeConfig = %v, %v", rc, err)
	}
	if _, err := rt.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{}); status.Code(err) != codes.Unimplemented {
		t.Fatalf("RunPodSandbox: %v, want Unimplemented", err)
	}

	// A private image whose USER is a uid, pushed with the CLI's login.
	ref := reg.host + "/cri/busybox:v1"
	d.must("import", "--change", "USER 1000:1000", busyboxTar, ref)
	if out, errOut, code := d.skiffIn(strings.NewReader("cri-pass\n"), "login", "-u", "criuser", "--password-stdin", reg.host); code != 0 {
		t.Fatalf("login: exit %d\n%s\n%s", code, out, errOut)
	}
	d.must("push", ref)
	d.must("logout", reg.host)
	d.must("rmi", ref)

	spec := &runtimeapi.ImageSpec{Image: ref}
	if _, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec}); err == nil {
		t.Fatal("PullImage without credentials succeeded")
	}
	pull, err := img.PullImage(ctx, &runtimeapi.PullImageRequest{Image: spec,
		Auth: &runtimeapi.AuthConfig{Username: "criuser", Password: "cri-pass", ServerAddress: reg.host}})
	if err != nil || !strings.HasPrefix(pull.ImageRef, "sha256:") {
		t.Fatalf("PullImage with credentials = %v, %v", pull, err)
	}
	is, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec})
	if err != nil || is.Image == nil {
		t.Fatalf("ImageStatus = %v, %v", is, err)
	}
	if i := is.Image; i.Id != pull.ImageRef || len(i.RepoTags) != 1 || i.RepoTags[0] != ref || len(i.RepoDigests) != 1 ||
		!strings.HasPrefix(i.RepoDigests[0], reg.host+"/cri/busybox@sha256:") || i.Size == 0 || i.Uid.GetValue() != 1000 {
		t.Fatalf("ImageStatus image = %v", i)
	}
	// The Docker side sees the same image.
	if out := d.must("images", "-q", "--no-trunc"); !strings.Contains(out, pull.ImageRef) {
		t.Fatalf("skiff images lacks the CRI-pulled image:\n%s", out)
	}
	list, err := img.ListImages(ctx, &runtimeapi.ListImagesRequest{})
	if err != nil || len(list.Images) != 1 || list.Images[0].Id != pull.ImageRef {
		t.Fatalf("ListImages = %v, %v", list, err)
	}
	fs, err := img.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil || len(fs.ImageFilesystems) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() < uint64(is.Image.Size)/2 {
		t.Fatalf("ImageFsInfo = %v, %v (image size %d)", fs, err, is.Image.Size)
	}

	for range 2 { // the second time it is gone: still success
		if _, err := img.RemoveImage(ctx, &runtimeapi.RemoveImageRequest{Image: spec}); err != nil {
			t.Fatalf("RemoveImage: %v", err)
		}
	}
	if is, err := img.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: spec}); err != nil || is.Image != nil {
		t.Fatalf("ImageStatus after RemoveImage = %v, %v", is, err)
	}
	if out := d.must("images", "-q", "--no-trunc"); strings.Contains(out, pull.ImageRef) {
		t.Fatalf("image left after RemoveImage:\n%s", out)
	}
}
