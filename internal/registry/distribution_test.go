package registry

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

func TestInspect(t *testing.T) {
	ctx := context.Background()
	host := startRegistry(t)
	c := New(Options{})
	img, _ := testImage(t, "hello", "arm64")
	md, err := c.Push(ctx, host+"/dist/one:v1", img, Auth{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	idx := ocispec.Index{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{
			{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(img.Manifest)),
				Platform: &ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}},
			{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(img.Manifest)),
				Platform:    &ocispec.Platform{OS: "unknown", Architecture: "unknown"},
				Annotations: map[string]string{"vnd.docker.reference.type": "attestation-manifest"}},
		}}
	raw, _ := json.Marshal(idx)
	putManifest(t, host, "dist/one", "multi", ocispec.MediaTypeImageIndex, raw)

	parse := func(s string) reference.Named {
		n, err := reference.ParseNormalizedNamed(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, tc := range []struct {
		ref  string
		desc ocispec.Descriptor
		plat []ocispec.Platform
	}{
		{host + "/dist/one:v1", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(img.Manifest))},
			[]ocispec.Platform{{OS: "linux", Architecture: "arm64"}}},
		{host + "/dist/one@" + md.String(), ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(img.Manifest))},
			[]ocispec.Platform{{OS: "linux", Architecture: "arm64"}}},
		{host + "/dist/one:multi", ocispec.Descriptor{MediaType: ocispec.MediaTypeImageIndex, Digest: digest.FromBytes(raw), Size: int64(len(raw))},
			[]ocispec.Platform{{OS: "linux", Architecture: "arm64", Variant: "v8"}, {OS: "unknown", Architecture: "unknown"}}},
	} {
		d, err := c.Inspect(ctx, parse(tc.ref), Auth{})
		if err != nil {
			t.Fatalf("%s: %v", tc.ref, err)
		}
		gotD, _ := json.Marshal(d.Descriptor)
		wantD, _ := json.Marshal(tc.desc)
		gotP, _ := json.Marshal(d.Platforms)
		wantP, _ := json.Marshal(tc.plat)
		if string(gotD) != string(wantD) || string(gotP) != string(wantP) {
			t.Errorf("%s:\n got %s %s\nwant %s %s", tc.ref, gotD, gotP, wantD, wantP)
		}
	}
	// A name without a tag means :latest; unknown tags and names are NotFound.
	if _, err := c.Inspect(ctx, parse(host+"/dist/one"), Auth{}); !errdefs.IsNotFound(err) {
		t.Errorf("no latest tag: %v", err)
	}
	if _, err := c.Inspect(ctx, parse(host+"/dist/none:v1"), Auth{}); !errdefs.IsNotFound(err) {
		t.Errorf("unknown repository: %v", err)
	}
}
