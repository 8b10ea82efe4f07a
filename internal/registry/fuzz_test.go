package registry

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

var fuzzMediaTypes = []string{
	ocispec.MediaTypeImageManifest, MediaTypeDockerManifest, ocispec.MediaTypeImageIndex,
	MediaTypeDockerManifestList, mediaTypeSchema1 + "+json", "", "text/plain",
}

// FuzzManifestDecode feeds a registry's answers to the pull's decoders: the
// top manifest (by its declared or sniffed media type), an index, a config.
// Invariants: refusals are Invalid or NotFound (a bad registry answer, never
// a 500 or a panic); an accepted manifest has well-formed digests and a
// config small enough to read, and decodes the same after a re-encode; a
// picked index entry is for the platform asked; an accepted config has one
// diff id per layer.
//
//	go test ./internal/registry -run '^$' -fuzz '^FuzzManifestDecode$' -fuzztime 1m
func FuzzManifestDecode(f *testing.F) {
	d := func(c string) string { return "sha256:" + strings.Repeat(c, 64) }
	f.Add([]byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"`+d("a")+`","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"`+d("b")+`","size":3}]}`), uint8(0),
		[]byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["`+d("c")+`"]}}`))
	f.Add([]byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"`+d("a")+`","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}},{"digest":"`+d("b")+`","platform":{"architecture":"amd64","os":"linux"}},{"digest":"`+d("c")+`","platform":{"architecture":"unknown","os":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}]}`), uint8(2),
		[]byte(`{}`))
	f.Add([]byte(`{"schemaVersion":1,"fsLayers":[]}`), uint8(5), []byte(`{"rootfs":{"diff_ids":[]}}`))
	f.Add([]byte(`{"config":{"digest":"sha256:short","size":99999999999},"layers":[{"digest":"md5:x"}]}`), uint8(1), []byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte, mtIndex uint8, config []byte) {
		mt := fuzzMediaTypes[int(mtIndex)%len(fuzzMediaTypes)]
		if mt == "" || strings.HasPrefix(mt, "text/plain") {
			mt = sniffMediaType(raw) // as getTop does
		}
		refused := func(what string, err error) {
			if k := errdefs.KindOf(err); k != errdefs.KindInvalid && k != errdefs.KindNotFound {
				t.Fatalf("%s refused with kind %v: %v", what, k, err)
			}
		}
		for _, p := range []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64", Variant: "v8"}} {
			desc, err := pickFromIndex(raw, p)
			if err != nil {
				refused("index", err)
				continue
			}
			if desc.Platform == nil || desc.Platform.OS != p.OS || desc.Platform.Architecture != p.Architecture {
				t.Fatalf("picked %+v for %+v", desc.Platform, p)
			}
		}
		m, err := decodeManifest(raw, mt)
		if err != nil {
			refused("manifest", err)
			return
		}
		if m.Config.Digest.Validate() != nil || m.Config.Size > MaxManifestSize {
			t.Fatalf("accepted config descriptor %+v", m.Config)
		}
		for _, l := range m.Layers {
			if l.Digest.Validate() != nil {
				t.Fatalf("accepted layer digest %q", l.Digest)
			}
		}
		again, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", m, err)
		}
		m2, err := decodeManifest(again, mt)
		if err != nil || !reflect.DeepEqual(m2, m) {
			t.Fatalf("%s re-decoded as %+v, %v; was %+v", again, m2, err, m)
		}
		cfg, err := decodeConfig(config, len(m.Layers))
		if err != nil {
			refused("config", err)
			return
		}
		if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
			t.Fatalf("config with %d diff ids accepted for %d layers", len(cfg.RootFS.DiffIDs), len(m.Layers))
		}
	})
}
