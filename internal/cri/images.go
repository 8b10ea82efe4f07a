package cri

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/jsonstream"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/skiff-dev/skiff/internal/engine"
	"github.com/skiff-dev/skiff/internal/errdefs"
	regclient "github.com/skiff-dev/skiff/internal/registry"
)

// PullImage pulls through the engine's registry client with the request's
// credentials and answers the image's id, which the kubelet then passes
// back as the container's image.
func (s *Server) PullImage(ctx context.Context, req *runtimeapi.PullImageRequest) (*runtimeapi.PullImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalid("PullImage: no image given")
	}
	opts := engine.PullOptions{Progress: func(jsonstream.Message) {}}
	if a := req.GetAuth(); a != nil {
		opts.RegistryAuth = regclient.EncodeAuth(regclient.Auth{
			Username: a.Username, Password: a.Password, Auth: a.Auth, ServerAddress: a.ServerAddress,
			IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken,
		})
	}
	if err := s.b.ImagePull(ctx, ref, opts); err != nil {
		return nil, err
	}
	img, err := s.b.ImageInspect(ctx, ref)
	if err != nil {
		return nil, err
	}
	return &runtimeapi.PullImageResponse{ImageRef: img.ID}, nil
}

// ListImages lists every image, or the one the filter names.
func (s *Server) ListImages(ctx context.Context, req *runtimeapi.ListImagesRequest) (*runtimeapi.ListImagesResponse, error) {
	if want := req.GetFilter().GetImage().GetImage(); want != "" {
		img, err := s.b.ImageInspect(ctx, want)
		if errdefs.IsNotFound(err) {
			return &runtimeapi.ListImagesResponse{}, nil
		}
		if err != nil {
			return nil, err
		}
		return &runtimeapi.ListImagesResponse{Images: []*runtimeapi.Image{criImage(img)}}, nil
	}
	sums, err := s.b.ImageList(ctx, engine.ImageListOptions{})
	if err != nil {
		return nil, err
	}
	out := make([]*runtimeapi.Image, 0, len(sums))
	for _, sum := range sums {
		// The summary lacks the config's user: inspect each (a bbolt read).
		img, err := s.b.ImageInspect(ctx, sum.ID)
		if errdefs.IsNotFound(err) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, criImage(img))
	}
	return &runtimeapi.ListImagesResponse{Images: out}, nil
}

// ImageStatus answers a nil image, not an error, when there is none: the
// kubelet then pulls it.
func (s *Server) ImageStatus(ctx context.Context, req *runtimeapi.ImageStatusRequest) (*runtimeapi.ImageStatusResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalid("ImageStatus: no image given")
	}
	img, err := s.b.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.ImageStatusResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	resp := &runtimeapi.ImageStatusResponse{Image: criImage(img)}
	if req.GetVerbose() {
		resp.Info = map[string]string{"os": img.Os, "architecture": img.Architecture, "created": img.Created}
	}
	return resp, nil
}

// RemoveImage removes the image with all its tags. As the CRI asks, a
// missing image is success.
func (s *Server) RemoveImage(ctx context.Context, req *runtimeapi.RemoveImageRequest) (*runtimeapi.RemoveImageResponse, error) {
	ref := req.GetImage().GetImage()
	if ref == "" {
		return nil, errdefs.Invalid("RemoveImage: no image given")
	}
	img, err := s.b.ImageInspect(ctx, ref)
	if errdefs.IsNotFound(err) {
		return &runtimeapi.RemoveImageResponse{}, nil
	}
	if err != nil {
		return nil, err
	}
	// By id and forced: every tag goes, as the CRI says removing one name
	// removes the image. An image a container uses stays (Conflict).
	if _, err := s.b.ImageRemove(ctx, img.ID, true, false); err != nil && !errdefs.IsNotFound(err) {
		return nil, err
	}
	return &runtimeapi.RemoveImageResponse{}, nil
}

// ImageFsInfo reports the space and inodes the image store uses. Layers
// are unpacked in the snapshots directory, which is also where containers'
// writable layers live, so it is reported for both.
func (s *Server) ImageFsInfo(ctx context.Context, req *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	if len(s.opts.ImageFsDirs) == 0 {
		return nil, errdefs.System("ImageFsInfo: no image filesystem configured")
	}
	bytes, inodes, err := diskUsage(ctx, s.opts.ImageFsDirs)
	if err != nil {
		return nil, err
	}
	usage := &runtimeapi.FilesystemUsage{
		Timestamp:  time.Now().UnixNano(),
		FsId:       &runtimeapi.FilesystemIdentifier{Mountpoint: s.opts.ImageFsDirs[0]},
		UsedBytes:  &runtimeapi.UInt64Value{Value: bytes},
		InodesUsed: &runtimeapi.UInt64Value{Value: inodes},
	}
	return &runtimeapi.ImageFsInfoResponse{
		ImageFilesystems:     []*runtimeapi.FilesystemUsage{usage},
		ContainerFilesystems: []*runtimeapi.FilesystemUsage{usage},
	}, nil
}

// diskUsage is du over dirs: allocated bytes and inodes, each inode counted
// once however many hard links it has. A missing dir counts nothing.
func diskUsage(ctx context.Context, dirs []string) (bytes, inodes uint64, err error) {
	type ino struct{ dev, ino uint64 }
	seen := map[ino]bool{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				if os.IsNotExist(err) {
					return nil // removed while we walk
				}
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			info, err := d.Info()
			if err != nil {
				return nil
			}
			st, ok := info.Sys().(*syscall.Stat_t)
			if !ok {
				return nil
			}
			k := ino{uint64(st.Dev), st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
			inodes++
			bytes += uint64(st.Blocks) * 512
			return nil
		})
		if err != nil {
			return 0, 0, errdefs.System("image filesystem usage of %s: %v", dir, err)
		}
	}
	return bytes, inodes, nil
}

// criImage is the CRI view of an image: names fully qualified (the kubelet
// compares them with what pods ask for), the user split into uid or name.
func criImage(img *image.InspectResponse) *runtimeapi.Image {
	out := &runtimeapi.Image{
		Id: img.ID, RepoTags: qualified(img.RepoTags), RepoDigests: qualified(img.RepoDigests),
		Size: uint64(max(img.Size, 0)), Spec: &runtimeapi.ImageSpec{Image: img.ID},
	}
	if img.Config != nil {
		out.Uid, out.Username = imageUser(img.Config.User)
	}
	// The pause image is ours: the kubelet's image GC must leave it.
	out.Pinned = slices.Contains(img.RepoTags, pauseRef())
	return out
}

// imageUser splits an image's USER ("uid[:gid]" or "name[:group]") as the
// kubelet wants it: a numeric uid, else a name. No user: neither.
func imageUser(user string) (*runtimeapi.Int64Value, string) {
	u, _, _ := strings.Cut(user, ":")
	if u == "" {
		return nil, ""
	}
	if uid, err := strconv.ParseInt(u, 10, 64); err == nil {
		return &runtimeapi.Int64Value{Value: uid}, ""
	}
	return nil, u
}

// qualified turns the engine's familiar names ("busybox:latest") into the
// full ones containerd reports ("docker.io/library/busybox:latest").
func qualified(names []string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		if named, err := reference.ParseNormalizedNamed(n); err == nil {
			n = named.String()
		}
		out = append(out, n)
	}
	return out
}

// refuseImageVolumes answers Unimplemented for mounts of an image (the
// ImageVolume feature, Kubernetes 1.31+): skiff does not mount images as
// volumes yet, and a bind of an empty host path must not stand in for one.
func refuseImageVolumes(cfg *runtimeapi.ContainerConfig) error {
	for _, m := range cfg.GetMounts() {
		if m.GetImage().GetImage() != "" {
			return errdefs.NotImplemented("CreateContainer %s: image volumes (a mount of image %q at %s) are not supported", cfg.GetMetadata().GetName(), m.GetImage().GetImage(), m.GetContainerPath())
		}
	}
	return nil
}
