package daemon

import (
	"cmp"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/skiff-dev/skiff/internal/cri"
	"github.com/skiff-dev/skiff/internal/engine"
)

// listenCRI opens the CRI socket (cfg.CRISocket, a path or unix:// URL) and
// returns the CRI server for it; with the socket set to "" the CRI is off
// and both are nil.
func listenCRI(eng *engine.Engine, cfg Config, logger *slog.Logger) (*cri.Server, net.Listener, error) {
	path := strings.TrimPrefix(*cfg.CRISocket, "unix://")
	if path == "" {
		return nil, nil, nil
	}
	if !filepath.IsAbs(path) {
		return nil, nil, fmt.Errorf("cri-socket %q: must be an absolute path (or \"\" to turn the CRI off)", *cfg.CRISocket)
	}
	l, err := listen("unix://" + path)
	if err != nil {
		return nil, nil, fmt.Errorf("cri socket: %w", err)
	}
	// The CRI has no authentication: only root may connect, as with
	// containerd's socket.
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, nil, fmt.Errorf("cri socket: %w", err)
	}
	srv := cri.New(eng, cri.Options{
		Logger:      logger.With("api", "cri"),
		ImageFsDirs: []string{filepath.Join(cfg.DataRoot, "snapshots"), filepath.Join(cfg.DataRoot, "content")},
		// skiff-init, next to the shim (as the engine finds it for --init).
		PauseBinary: filepath.Join(filepath.Dir(cfg.ShimPath), "skiff-init"),
		StateDir:    filepath.Join(cfg.DataRoot, "cri"),
		NetNSDir:    filepath.Join(cfg.ExecRoot, "cri", "netns"),
		CNIConfDir:  cmp.Or(cfg.CNIConfDir, DefaultCNIConfDir),
		CNIBinDir:   cmp.Or(cfg.CNIBinDir, DefaultCNIBinDir),
	})
	if err := srv.ListenStream(cmp.Or(cfg.CRIStreamAddress, cri.DefaultStreamAddress)); err != nil {
		l.Close()
		return nil, nil, err
	}
	logger.Info("CRI streaming server", "address", srv.StreamAddr())
	return srv, l, nil
}
