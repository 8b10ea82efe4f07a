package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/moby/moby/client"
	bolt "go.etcd.io/bbolt"
)

// stallProxy is an HTTP proxy in front of a registry that sends the first
// half of each gated blob and then holds the rest until release: a pull
// through it is slow for as long as the test wants, so what the test does
// meanwhile is ordered against the pull, with no timing involved.
type stallProxy struct {
	host    string // 127.0.0.1:PORT
	gated   map[string]bool
	stalled chan string // a gated blob's digest, once its first half is sent
	gate    chan struct{}
	once    sync.Once
}

func startStallProxy(t *testing.T, registry string, gated []v1.Hash) *stallProxy {
	t.Helper()
	p := &stallProxy{gated: map[string]bool{}, stalled: make(chan string, 16), gate: make(chan struct{})}
	for _, h := range gated {
		p.gated[h.String()] = true
	}
	u, err := url.Parse("http://" + registry)
	if err != nil {
		t.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // write what comes at once
	rp.ModifyResponse = func(resp *http.Response) error {
		req := resp.Request
		i := strings.LastIndex(req.URL.Path, "/blobs/")
		if req.Method != http.MethodGet || i < 0 || resp.StatusCode != http.StatusOK {
			return nil
		}
		d := req.URL.Path[i+len("/blobs/"):]
		if p.gated[d] {
			resp.Body = &stallBody{ReadCloser: resp.Body, left: resp.ContentLength / 2, p: p, digest: d, ctx: req.Context()}
		}
		return nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.host = l.Addr().String()
	srv := &http.Server{Handler: rp}
	go srv.Serve(l)
	t.Cleanup(func() {
		p.release()
		srv.Close()
	})
	return p
}

// release lets every gated blob finish.
func (p *stallProxy) release() { p.once.Do(func() { close(p.gate) }) }

type stallBody struct {
	io.ReadCloser
	left   int64
	p      *stallProxy
	digest string
	ctx    context.Context
	held   bool
}

func (b *stallBody) Read(buf []byte) (int, error) {
	if b.left <= 0 && !b.held {
		b.held = true
		b.p.stalled <- b.digest
		select {
		case <-b.p.gate:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
	}
	if !b.held && int64(len(buf)) > b.left {
		buf = buf[:b.left]
	}
	n, err := b.ReadCloser.Read(buf)
	b.left -= int64(n)
	return n, err
}

// slowPull is a pull through a stallProxy of an image made of the busybox
// layer (which the daemon's imported busybox shares by diff id) and three
// layers of random data, which stall half way.
type slowPull struct {
	ref       string // through the proxy
	proxy     *stallProxy
	reg       *testRegistry
	base      string // short id of the busybox layer's blob, as pull shows it
	done      chan error
	completed chan struct{} // closed when the busybox layer is "Pull complete"
}

func setupSlowPull(t *testing.T) *slowPull {
	t.Helper()
	reg := startRegistry(t, "", "")
	bb, err := tarball.LayerFromFile(busyboxTar)
	if err != nil {
		t.Fatal(err)
	}
	layers := []v1.Layer{bb}
	var gated []v1.Hash
	for i := 0; i < 3; i++ {
		l, err := random.Layer(1<<20, types.DockerLayer)
		if err != nil {
			t.Fatal(err)
		}
		d, _ := l.Digest()
		gated = append(gated, d)
		layers = append(layers, l)
	}
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	r, err := name.ParseReference(reg.host + "/e2e/slow:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	bd, _ := bb.Digest()
	p := startStallProxy(t, reg.host, gated)
	return &slowPull{ref: p.host + "/e2e/slow:v1", proxy: p, reg: reg, base: bd.Hex[:12]}
}

// start begins the pull and returns once the busybox layer is complete and
// the three others are stalled half way.
func (s *slowPull) start(t *testing.T, d *daemon) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	resp, err := d.cli.ImagePull(ctx, s.ref, client.ImagePullOptions{})
	if err != nil {
		t.Fatal(err)
	}
	s.done = make(chan error, 1)
	s.completed = make(chan struct{})
	go func() {
		defer resp.Close()
		dec := json.NewDecoder(resp)
		closed := false
		for {
			var m struct {
				ID, Status string
				Error      string `json:"error"`
			}
			if err := dec.Decode(&m); err != nil {
				if err == io.EOF {
					err = nil
				}
				s.done <- err
				return
			}
			if m.Error != "" {
				s.done <- fmt.Errorf("pull: %s", m.Error)
				return
			}
			if !closed && m.ID == s.base && m.Status == "Pull complete" {
				close(s.completed)
				closed = true
			}
		}
	}()
	timeout := time.After(time.Minute)
	for i := 0; i < 3; i++ {
		select {
		case <-s.proxy.stalled:
		case err := <-s.done:
			t.Fatalf("pull ended before its layers stalled: %v", err)
		case <-timeout:
			t.Fatal("the layers of the pull did not all reach the proxy")
		}
	}
	select {
	case <-s.completed:
	case err := <-s.done:
		t.Fatalf("pull ended before its first layer: %v", err)
	case <-timeout:
		t.Fatal("the busybox layer of the pull did not complete")
	}
}

// running fails the test unless the pull is still going.
func (s *slowPull) running(t *testing.T, what string) {
	t.Helper()
	select {
	case err := <-s.done:
		t.Fatalf("the slow pull ended (%v) before %s", err, what)
	default:
	}
}

// must runs a skiff command while the pull is stalled. The pull cannot end
// before the test releases it, so a command that waits for the pull never
// returns: after a minute that is a failure, not a hang.
func (s *slowPull) must(t *testing.T, d *daemon, args ...string) string {
	t.Helper()
	type result struct {
		out, errOut string
		code        int
	}
	rc := make(chan result, 1)
	go func() {
		out, errOut, code := d.skiff(args...)
		rc <- result{out, errOut, code}
	}()
	select {
	case r := <-rc:
		if r.code != 0 {
			t.Fatalf("skiff %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.errOut)
		}
		return r.out
	case <-time.After(time.Minute):
		t.Fatalf("skiff %s waited for the stalled pull", strings.Join(args, " "))
	}
	return ""
}

// finish releases the stalled layers and waits for the pull's end.
func (s *slowPull) finish(t *testing.T) {
	t.Helper()
	s.proxy.release()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the pull did not finish after its layers were released")
	}
}

// storeFiles lists the blobs and snapshot directories of a data root.
func storeFiles(t *testing.T, data string) []string {
	t.Helper()
	var out []string
	for _, dir := range []string{"content/blobs/sha256", "snapshots", "content/ingest"} {
		ents, err := os.ReadDir(filepath.Join(data, dir))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, dir+"/"+e.Name())
		}
	}
	return out
}

// While a pull is stalled in the middle of its layers: an rmi of an
// unrelated image, a second pull, and an image prune that removes the image
// the pull shares a layer with all finish. The pull then completes with a
// whole image that runs, and removing it gives every file back.
func TestRmiPullAndPruneDuringSlowPull(t *testing.T) {
	t.Parallel()
	sp := setupSlowPull(t)
	small := sp.reg.host + "/e2e/small:v1"
	si, err := random.Image(64<<10, 1)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := name.ParseReference(small); err != nil {
		t.Fatal(err)
	} else if err := remote.Write(r, si); err != nil {
		t.Fatal(err)
	}

	d := startDaemon(t)
	d.importBusybox()
	dir := t.TempDir()
	unrelated := filepath.Join(dir, "unrelated.tar")
	if err := os.WriteFile(unrelated, tarOf(t, map[string]string{"hello": "unrelated\n"}), 0o644); err != nil {
		t.Fatal(err)
	}
	d.must("import", unrelated, "unrelated")

	sp.start(t, d)
	sp.must(t, d, "rmi", "unrelated")
	sp.running(t, "the rmi of an unrelated image finished")
	sp.must(t, d, "pull", small)
	sp.running(t, "a second pull finished")
	// Removes busybox (whose layer the slow pull shares and holds) and the
	// small image; GC runs with the pull's layers on disk.
	out := sp.must(t, d, "image", "prune", "-a", "-f")
	if !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("prune output: %s", out)
	}
	sp.running(t, "image prune finished")
	if out := d.must("images", "-q"); out != "" {
		t.Errorf("images after prune: %q", out)
	}

	sp.finish(t)
	if n := d.must("image", "inspect", "-f", "{{len .RootFS.Layers}}", sp.ref); n != "4\n" {
		t.Errorf("layers of the slow image: %q", n)
	}
	if out := d.must("run", "--rm", sp.ref, "echo", "pulled-ok"); out != "pulled-ok\n" {
		t.Errorf("run the slow image: %q", out)
	}
	d.must("rmi", sp.ref)
	if left := storeFiles(t, filepath.Join(d.root, "data")); !slices.Equal(left, []string{"snapshots/empty"}) {
		t.Errorf("left after removing every image: %v", left)
	}
}

// A kill -9 of the engine while a pull is stalled half way leaves a lease
// and objects no image names; the next start removes the lease and
// collects them: the stores hold what the images reference, no more.
func TestKillDuringSlowPullLeavesNothing(t *testing.T) {
	t.Parallel()
	sp := setupSlowPull(t)
	d := startDaemon(t)
	d.importBusybox()
	data := filepath.Join(d.root, "data")
	before := storeFiles(t, data)

	sp.start(t, d)
	during := storeFiles(t, data)
	d.kill9()
	leases := countLeases(t, data)
	if leases != 1 {
		t.Errorf("%d leases in the database after the kill, want the pull's", leases)
	}
	if len(during) <= len(before) {
		t.Errorf("the pull had stored nothing yet: %v", during)
	}
	d.start()
	if after := storeFiles(t, data); !slices.Equal(after, before) {
		t.Errorf("after restart:\n%v\nbefore the pull:\n%v", after, before)
	}
	if out := d.must("images", "--format", "{{.Repository}}"); out != "busybox\n" {
		t.Errorf("images after restart: %q", out)
	}
	d.stop()
	if n := countLeases(t, data); n != 0 {
		t.Errorf("%d leases after restart", n)
	}
}

func countLeases(t *testing.T, data string) int {
	t.Helper()
	db, err := bolt.Open(filepath.Join(data, "meta.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	n := 0
	db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket([]byte("image.leases.v1")); b != nil {
			b.ForEachBucket(func([]byte) error { n++; return nil })
		}
		return nil
	})
	return n
}
