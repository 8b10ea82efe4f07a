package registry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// testImage builds a one-layer gzip image in memory.
func testImage(t *testing.T, content, arch string) (PushImage, []byte) {
	t.Helper()
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg})
	tw.Write([]byte(content))
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(tb.Bytes())
	zw.Close()
	layer := gz.Bytes()
	cfg := ocispec.Image{Platform: ocispec.Platform{OS: "linux", Architecture: arch},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(tb.Bytes())}}}
	cfgJSON, _ := json.Marshal(cfg)
	ld := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	m := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))},
		Layers: []ocispec.Descriptor{ld}}
	mJSON, _ := json.Marshal(m)
	return PushImage{Manifest: mJSON, MediaType: ocispec.MediaTypeImageManifest, Config: cfgJSON,
		Layers: []PushLayer{{Desc: ld, DiffID: cfg.RootFS.DiffIDs[0], Open: func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(layer)), nil
		}}}}, layer
}

func startRegistry(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestPushResolveBlob(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t)
	c := New(Options{})
	img, layer := testImage(t, "hello", "amd64")
	var events []PushEvent
	d, err := c.Push(ctx, host+"/test/hello:v1", img, Auth{}, func(e PushEvent) { events = append(events, e) })
	if err != nil {
		t.Fatal(err)
	}
	if d != digest.FromBytes(img.Manifest) {
		t.Fatalf("pushed digest %s, want %s", d, digest.FromBytes(img.Manifest))
	}
	if len(events) == 0 || events[len(events)-1].Status != "Pushed" {
		t.Fatalf("push events: %+v", events)
	}
	// A second push skips the blob the registry has.
	events = nil
	if _, err := c.Push(ctx, host+"/test/hello:v1", img, Auth{}, func(e PushEvent) { events = append(events, e) }); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || events[0].Status != "Layer already exists" {
		t.Fatalf("second push events: %+v", events)
	}
	// Pushing to another repository mounts the blob.
	img.Layers[0].MountFrom = host + "/test/hello"
	events = nil
	if _, err := c.Push(ctx, host+"/other/hello:v1", img, Auth{}, func(e PushEvent) { events = append(events, e) }); err != nil {
		t.Fatal(err)
	}
	if len(events) != 1 || !strings.HasPrefix(events[0].Status, "Mounted from") {
		t.Fatalf("mount push events: %+v", events)
	}

	p, _ := ParsePlatform("linux/amd64")
	r, err := c.Resolve(ctx, host+"/test/hello:v1", p, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if r.ManifestDigest != d || r.Digest != d || !bytes.Equal(r.Config, img.Config) || len(r.Layers) != 1 {
		t.Fatalf("resolved %+v", r)
	}
	rc, err := r.Blob(ctx, r.Layers[0])
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, layer) {
		t.Fatalf("blob: %v (%d bytes)", err, len(got))
	}
	// By digest too.
	if _, err := c.Resolve(ctx, host+"/test/hello@"+d.String(), p, Auth{}); err != nil {
		t.Fatal(err)
	}
	// Unknown tag and repository: NotFound.
	if _, err := c.Resolve(ctx, host+"/test/hello:nope", p, Auth{}); !errdefs.IsNotFound(err) {
		t.Fatalf("unknown tag: %v", err)
	}
	if _, err := c.Resolve(ctx, host+"/nothing/here", p, Auth{}); !errdefs.IsNotFound(err) {
		t.Fatalf("unknown repo: %v", err)
	}
}

func TestIndexPicksPlatform(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t)
	c := New(Options{})
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex}
	want := map[string]digest.Digest{}
	for _, arch := range []string{"arm64", "amd64"} {
		img, _ := testImage(t, "hello "+arch, arch)
		d, err := c.Push(ctx, host+"/multi/img:"+arch, img, Auth{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		want[arch] = d
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: d,
			Size: int64(len(img.Manifest)), Platform: &ocispec.Platform{OS: "linux", Architecture: arch}})
	}
	// Push the index with a plain HTTP PUT.
	raw, _ := json.Marshal(idx)
	putManifest(t, host, "multi/img", "latest", ocispec.MediaTypeImageIndex, raw)
	for _, arch := range []string{"amd64", "arm64"} {
		p, _ := ParsePlatform("linux/" + arch)
		r, err := c.Resolve(ctx, host+"/multi/img", p, Auth{})
		if err != nil {
			t.Fatal(err)
		}
		if r.ManifestDigest != want[arch] || r.Digest != digest.FromBytes(raw) || r.Platform.Architecture != arch {
			t.Fatalf("%s: resolved manifest %s (index %s), want %s", arch, r.ManifestDigest, r.Digest, want[arch])
		}
	}
	p, _ := ParsePlatform("linux/s390x")
	if _, err := c.Resolve(ctx, host+"/multi/img", p, Auth{}); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "no matching manifest for linux/s390x") {
		t.Fatalf("s390x: %v", err)
	}
}

func TestMirrorForDockerHubNames(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t)
	img, _ := testImage(t, "mirrored", "amd64")
	if _, err := New(Options{}).Push(ctx, host+"/library/mirrored:latest", img, Auth{}, nil); err != nil {
		t.Fatal(err)
	}
	c := New(Options{Mirrors: []string{"http://" + host}})
	p, _ := ParsePlatform("linux/amd64")
	r, err := c.Resolve(ctx, "mirrored", p, Auth{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name.String() != "docker.io/library/mirrored:latest" {
		t.Fatalf("name %s", r.Name)
	}
}

func TestVerifierRejectsCorruptBlob(t *testing.T) {
	data := []byte("some blob")
	ok := NewVerifier(io.NopCloser(bytes.NewReader(data)), digest.FromBytes(data), int64(len(data)))
	if _, err := io.ReadAll(ok); err != nil {
		t.Fatal(err)
	}
	bad := NewVerifier(io.NopCloser(bytes.NewReader([]byte("some blub"))), digest.FromBytes(data), int64(len(data)))
	if _, err := io.ReadAll(bad); !errors.Is(err, ErrVerify) || !errdefs.IsInvalid(err) {
		t.Fatalf("corrupt blob: %v", err)
	}
	short := NewVerifier(io.NopCloser(bytes.NewReader(data[:3])), digest.FromBytes(data), int64(len(data)))
	if _, err := io.ReadAll(short); !errors.Is(err, ErrVerify) {
		t.Fatalf("short blob: %v", err)
	}
}

func TestAuthRoundTrip(t *testing.T) {
	a := Auth{Username: "u", Password: "p", ServerAddress: "127.0.0.1:5000"}
	got, err := DecodeAuth(EncodeAuth(a))
	if err != nil || got != a {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got, err := DecodeAuth(""); err != nil || got != (Auth{}) {
		t.Fatalf("empty: %+v %v", got, err)
	}
	if _, err := DecodeAuth("%%%"); !errdefs.IsInvalid(err) {
		t.Fatalf("garbage: %v", err)
	}
}

func TestParsePlatform(t *testing.T) {
	p, err := ParsePlatform("linux/arm64/v8")
	if err != nil || p.OS != "linux" || p.Architecture != "arm64" || p.Variant != "" {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := ParsePlatform("a/b/c/d"); !errdefs.IsInvalid(err) {
		t.Fatal(err)
	}
}

func putManifest(t *testing.T, host, repo, tag, mediaType string, raw []byte) {
	t.Helper()
	req := httptest.NewRequest("PUT", "http://"+host+"/v2/"+repo+"/manifests/"+tag, bytes.NewReader(raw))
	req.RequestURI = ""
	req.Header.Set("Content-Type", mediaType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Fatalf("put index: %s", resp.Status)
	}
}

func TestInsecureRegistries(t *testing.T) {
	c := New(Options{Insecure: []string{"myreg.example:5000", "10.1.0.0/16"}})
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost:5000": true, "[::1]:5000": true,
		"myreg.example:5000": true, "myreg.example": false,
		"10.1.2.3:443": true, "10.2.0.1": false, "docker.io": false,
	} {
		if got := c.insecure(host); got != want {
			t.Errorf("insecure(%q) = %v, want %v", host, got, want)
		}
	}
}
