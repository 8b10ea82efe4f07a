// Package volume keeps named volumes of the local driver: a directory
// <root>/<name>/_data per volume and a record in bbolt (bucket volume.v1,
// key = name, value = JSON Volume). It never mounts anything: a volume with
// mount options (type=tmpfs, device=..., o=...) is described by MountSpec
// and mounted by the runtime inside the container's mount namespace.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

// LabelAnonymous marks volumes created without a name (Docker's label).
const LabelAnonymous = "com.docker.volume.anonymous"

var bucket = []byte("volume.v1")

// validName is Docker's rule for volume names.
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Volume is the stored record of one volume.
type Volume struct {
	Name      string
	Driver    string
	Labels    map[string]string
	Options   map[string]string
	CreatedAt time.Time
}

// Anonymous reports whether the volume was created without a name.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[LabelAnonymous]
	return ok
}

// Store holds the volumes under root.
type Store struct {
	root string
	db   *bolt.DB
	mu   sync.Mutex // serializes create/remove so two creates of one name agree
}

// New opens the store; root is <data-root>/volumes.
func New(root string, db *meta.DB) (*Store, error) {
	if err := os.MkdirAll(root, 0o701); err != nil {
		return nil, fmt.Errorf("create volumes dir: %w", err)
	}
	if err := db.Bolt().Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		return nil, fmt.Errorf("init volume bucket: %w", err)
	}
	return &Store{root: root, db: db.Bolt()}, nil
}

// Mountpoint is the host directory holding the volume's data.
func (s *Store) Mountpoint(name string) string { return filepath.Join(s.root, name, "_data") }

// validOpts are the local driver's options.
var validOpts = map[string]bool{"type": true, "device": true, "o": true, "size": true}

// Create makes volume name (a random one when empty, labelled anonymous). An
// existing volume of that name is returned as is (created false), as Docker
// does, unless the request asks for another driver.
func (s *Store) Create(name, driver string, opts, labels map[string]string) (v *Volume, created bool, err error) {
	if driver == "" {
		driver = "local"
	}
	if driver != "local" {
		// dockerd's words: skiff has the local driver only, no plugins.
		return nil, false, errdefs.NotFound("error looking up volume plugin %s: plugin %q not found", driver, driver)
	}
	if name == "" {
		var b [32]byte
		rand.Read(b[:])
		name = hex.EncodeToString(b[:])
		if labels == nil {
			labels = map[string]string{}
		}
		labels[LabelAnonymous] = ""
	}
	if !validName.MatchString(name) {
		return nil, false, errdefs.Invalid("volume name %q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path", name)
	}
	for k := range opts {
		if !validOpts[k] {
			return nil, false, errdefs.Invalid("invalid option key: %q", k)
		}
	}
	if opts["type"] != "" && opts["device"] == "" {
		return nil, false, errdefs.Invalid("missing required option: \"device\"")
	}
	if opts["device"] != "" && opts["type"] == "" && !strings.Contains(","+opts["o"]+",", ",bind,") {
		return nil, false, errdefs.Invalid("missing required option: \"type\"")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, err := s.get(name); err == nil {
		return old, false, nil
	}
	v = &Volume{Name: name, Driver: driver, Labels: labels, Options: opts, CreatedAt: time.Now().UTC().Truncate(time.Second)}
	if err := os.MkdirAll(s.Mountpoint(name), 0o755); err != nil {
		return nil, false, fmt.Errorf("create volume %s: %w", name, err)
	}
	b, _ := json.Marshal(v)
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Put([]byte(name), b) }); err != nil {
		os.RemoveAll(filepath.Join(s.root, name))
		return nil, false, fmt.Errorf("record volume %s: %w", name, err)
	}
	return v, true, nil
}

// Get returns the volume called name.
func (s *Store) Get(name string) (*Volume, error) { return s.get(name) }

func (s *Store) get(name string) (*Volume, error) {
	var v *Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(name))
		if b == nil {
			return errdefs.NotFound("get %s: no such volume", name)
		}
		v = &Volume{}
		return json.Unmarshal(b, v)
	})
	return v, err
}

// List returns every volume, sorted by name.
func (s *Store) List() ([]*Volume, error) {
	var out []*Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, b []byte) error {
			v := &Volume{}
			if err := json.Unmarshal(b, v); err != nil {
				return fmt.Errorf("decode volume %s: %w", k, err)
			}
			out = append(out, v)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}

// Remove deletes the volume and its data. The caller checks it is unused.
func (s *Store) Remove(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.get(name); err != nil {
		return err
	}
	// Forget the record first: a crash halfway leaves an orphan directory
	// (harmless), never a record without data.
	if err := s.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucket).Delete([]byte(name)) }); err != nil {
		return fmt.Errorf("remove volume %s: %w", name, err)
	}
	if err := os.RemoveAll(filepath.Join(s.root, name)); err != nil {
		return fmt.Errorf("remove volume %s data: %w", name, err)
	}
	return nil
}

// Size is the disk usage of the volume's data in bytes, counted as dockerd
// counts it: the sizes of the files, a file with several hard links once.
func (s *Store) Size(name string) int64 {
	var n int64
	seen := map[uint64]bool{}
	filepath.Walk(s.Mountpoint(name), func(_ string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() || fi.Size() == 0 {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		n += fi.Size()
		return nil
	})
	return n
}

// IsEmpty reports whether the volume's data directory has no entries.
func (s *Store) IsEmpty(name string) bool {
	f, err := os.Open(s.Mountpoint(name))
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// MountSpec describes how the runtime mounts v: a bind of its data dir, or,
// with a "type" option, a mount of that file system (tmpfs, ...).
func (s *Store) MountSpec(v *Volume) (typ, source string, options []string) {
	if t := v.Options["type"]; t != "" {
		var o []string
		if v.Options["o"] != "" {
			o = strings.Split(v.Options["o"], ",")
		}
		return t, v.Options["device"], o
	}
	if dev := v.Options["device"]; dev != "" {
		return "bind", dev, []string{"rbind"}
	}
	return "bind", s.Mountpoint(v.Name), []string{"rbind"}
}
