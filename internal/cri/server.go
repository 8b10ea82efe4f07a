// Package cri is skiff's Kubernetes front end: the CRI v1 RuntimeService and
// ImageService (k8s.io/cri-api) served over gRPC on a unix socket of their
// own, beside the Docker Engine API of package apiserver. Both call the same
// engine through small interfaces, so a kubelet's pods and a Docker client's
// containers share one set of stores.
//
// Calls skiff does not implement yet answer codes.Unimplemented (the
// generated Unimplemented*Server), never a fake success: a kubelet must see
// what it cannot rely on.
package cri

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-streaming/pkg/streaming"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Options configure the CRI server.
type Options struct {
	Logger *slog.Logger
	// ImageFsDirs are the directories whose usage ImageFsInfo reports (the
	// engine's content store and snapshots); the first is the mountpoint
	// reported.
	ImageFsDirs []string
	// PauseBinary is skiff-init, the one file of the pause image.
	PauseBinary string
	// StateDir keeps the CRI's own state (pods' network state, the CNI
	// result cache); NetNSDir the pinned network namespaces (exec root).
	StateDir, NetNSDir string
	// CNIConfDir and CNIBinDir: the pod network's configuration and
	// plugins (cni.go).
	CNIConfDir, CNIBinDir string
}

// Server serves the CRI RuntimeService and ImageService.
type Server struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	runtimeapi.UnimplementedImageServiceServer

	b    Backend
	opts Options
	log  *slog.Logger

	pauseMu sync.Mutex // one import of the pause image at a time

	// The streaming server (stream.go): nil until ListenStream.
	stream  streaming.Server
	streamL net.Listener
}

// New returns a CRI server over b.
func New(b Backend, opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Server{b: b, opts: opts, log: log}
}

// Serve answers CRI calls on l until ctx ends; then it stops gracefully
// (calls in flight finish) and returns nil.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	g := grpc.NewServer(grpc.ChainUnaryInterceptor(s.unaryErrors))
	runtimeapi.RegisterRuntimeServiceServer(g, s)
	runtimeapi.RegisterImageServiceServer(g, s)
	done := make(chan struct{})
	go s.serveStream(ctx)
	go s.gcPodNetworks(ctx) // cni.go
	go func() {
		select {
		case <-ctx.Done():
			g.GracefulStop()
		case <-done:
		}
	}()
	err := g.Serve(l)
	close(done)
	if ctx.Err() != nil || errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// unaryErrors turns engine errors into gRPC statuses (by their errdefs
// kind) and logs each call at debug level.
func (s *Server) unaryErrors(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	resp, err := handler(ctx, req)
	if err != nil {
		err = toStatus(err)
		s.log.Debug("cri call failed", "method", info.FullMethod, "err", err)
	}
	return resp, err
}

// toStatus maps an errdefs kind to its gRPC code; an error that already is
// a status keeps it.
func toStatus(err error) error {
	if _, ok := status.FromError(err); ok {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return status.Error(codes.Canceled, err.Error())
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	code := codes.Unknown
	switch errdefs.KindOf(err) {
	case errdefs.KindNotFound:
		code = codes.NotFound
	case errdefs.KindInvalid:
		code = codes.InvalidArgument
	case errdefs.KindConflict:
		code = codes.FailedPrecondition
	case errdefs.KindForbidden:
		code = codes.PermissionDenied
	case errdefs.KindUnavailable:
		code = codes.Unavailable
	case errdefs.KindNotImplemented:
		code = codes.Unimplemented
	case errdefs.KindSystem:
		code = codes.Internal
	}
	return status.Error(code, err.Error())
}
