package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// readTar returns the archive's regular files, and its entry names in order.
func readTar(t *testing.T, b []byte) (map[string][]byte, []string) {
	t.Helper()
	files := map[string][]byte{}
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if h.Typeflag == tar.TypeReg {
			files[h.Name], _ = io.ReadAll(tr)
		}
	}
	return files, names
}

// TestSaveLayout checks the archive against the OCI image layout spec and
// Docker's manifest.json / repositories files, where they fix the bytes.
func TestSaveLayout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	bb := f.mustImport(t, gzipped(busyboxTar(t)), "busybox:latest") // a compressed layer
	small := f.mustImport(t, smallTar(t, "hello"), "example.com/app:v1")
	if err := f.s.Tag(ctx, small.ID, "example.com/app:v2"); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.s.Save(ctx, &buf, []string{"busybox", "example.com/app"}); err != nil {
		t.Fatal(err)
	}
	files, names := readTar(t, buf.Bytes())
	if names[0] != "blobs/" || names[1] != "blobs/sha256/" {
		t.Errorf("archive starts with %v, want the blobs directories", names[:2])
	}
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout = %s", got)
	}
	for name, b := range files {
		if hex, ok := strings.CutPrefix(name, "blobs/sha256/"); ok {
			if got := digest.FromBytes(b).Encoded(); got != hex {
				t.Errorf("blob %s hashes to %s", name, got)
			}
		}
	}
	var idx ocispec.Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatal(err)
	}
	if idx.SchemaVersion != 2 || idx.MediaType != ocispec.MediaTypeImageIndex || len(idx.Manifests) != 3 {
		t.Fatalf("index.json = %s", files["index.json"])
	}
	gotNames := map[string]string{}
	for _, d := range idx.Manifests {
		if d.MediaType != ocispec.MediaTypeImageManifest || int64(len(files[blobPath(d.Digest)])) != d.Size {
			t.Errorf("index entry %+v does not describe its blob", d)
		}
		gotNames[d.Annotations[annotationImageName]] = d.Annotations[annotationRefName]
		var m ocispec.Manifest
		json.Unmarshal(files[blobPath(d.Digest)], &m)
		if m.Config.MediaType != ocispec.MediaTypeImageConfig {
			t.Errorf("config media type %q", m.Config.MediaType)
		}
		for _, l := range m.Layers {
			if l.MediaType != ocispec.MediaTypeImageLayer || int64(len(files[blobPath(l.Digest)])) != l.Size {
				t.Errorf("layer %+v does not describe its blob", l)
			}
		}
	}
	want := map[string]string{"docker.io/library/busybox:latest": "latest", "example.com/app:v1": "v1", "example.com/app:v2": "v2"}
	for k, v := range want {
		if gotNames[k] != v {
			t.Errorf("index.json names %v, want %v", gotNames, want)
		}
	}

	var entries []DockerManifestEntry
	if err := json.Unmarshal(files["manifest.json"], &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		t.Fatalf("manifest.json = %s", files["manifest.json"])
	}
	for _, e := range entries {
		cfg := files[e.Config]
		id := digest.FromBytes(cfg).String()
		img, err := f.s.Get(ctx, id)
		if err != nil {
			t.Fatalf("manifest.json config %s is no image: %v", e.Config, err)
		}
		for i, l := range e.Layers {
			if digest.FromBytes(files[l]) != img.DiffIDs[i] {
				t.Errorf("layer %s is not the uncompressed layer %s", l, img.DiffIDs[i])
			}
		}
		switch id {
		case bb.ID:
			if strings.Join(e.RepoTags, ",") != "busybox:latest" {
				t.Errorf("busybox RepoTags = %v", e.RepoTags)
			}
		case small.ID:
			if strings.Join(e.RepoTags, ",") != "example.com/app:v1,example.com/app:v2" {
				t.Errorf("app RepoTags = %v", e.RepoTags)
			}
		}
	}
	var repos map[string]map[string]string
	json.Unmarshal(files["repositories"], &repos)
	if repos["busybox"]["latest"] != bb.DiffIDs[0].Encoded() || repos["example.com/app"]["v2"] != small.DiffIDs[0].Encoded() {
		t.Errorf("repositories = %s", files["repositories"])
	}

	// Saving the same images again gives the same bytes.
	var again bytes.Buffer
	if err := f.s.Save(ctx, &again, []string{"busybox", "example.com/app"}); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		t.Error("two saves of the same images differ")
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	ctx := context.Background()
	a := newFixture(t)
	bb := a.mustImport(t, busyboxTar(t), "busybox:latest")
	small := a.mustImport(t, smallTar(t, "hi"), "")
	var buf bytes.Buffer
	if err := a.s.Save(ctx, &buf, []string{"busybox:latest", small.ID}); err != nil {
		t.Fatal(err)
	}

	b := newFixture(t)
	loaded, err := b.s.Load(ctx, bytes.NewReader(gzipped(buf.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 2 || loaded[0].ID != bb.ID || strings.Join(loaded[0].Tags, ",") != "busybox:latest" ||
		loaded[1].ID != small.ID || len(loaded[1].Tags) != 0 {
		t.Fatalf("loaded %+v", loaded)
	}
	got, err := b.s.Get(ctx, "busybox")
	if err != nil || got.ID != bb.ID || got.Size != bb.Size {
		t.Fatalf("loaded busybox: %+v, %v", got, err)
	}
	// Nothing extra stays: per image a config, a manifest and one layer.
	if n := b.blobs(t); n != 6 {
		t.Errorf("%d blobs after load, want 6", n)
	}
	// Loading again changes nothing.
	if _, err := b.s.Load(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	if n := b.blobs(t); n != 6 {
		t.Errorf("%d blobs after a second load, want 6", n)
	}
}

// legacyArchive builds what `docker save` wrote before Docker 25, by its
// spec: <v1id>/{VERSION,json,layer.tar}, <config hex>.json, manifest.json,
// repositories, with a layer repeated as a symlink to its first copy.
func legacyArchive(t *testing.T, layerTars [][]byte, tag string) ([]byte, digest.Digest) {
	t.Helper()
	var diffIDs []string
	for _, l := range layerTars {
		diffIDs = append(diffIDs, digest.FromBytes(l).String())
	}
	created := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
	cfg := []byte(`{"architecture":"amd64","config":{"Cmd":["sh"],"Env":["PATH=/bin"]},"created":"` + created +
		`","os":"linux","rootfs":{"type":"layers","diff_ids":["` + strings.Join(diffIDs, `","`) + `"]}}`)
	cfgHex := digest.FromBytes(cfg).Encoded()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)})
		tw.Write(b)
	}
	var layerPaths []string
	first := map[string]string{}
	for i, l := range layerTars {
		v1 := digest.FromString(strings.Join(diffIDs[:i+1], " ")).Encoded()
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: v1 + "/", Mode: 0o755, ModTime: time.Unix(0, 0)})
		file(v1+"/VERSION", []byte("1.0"))
		file(v1+"/json", []byte(`{"id":"`+v1+`"}`))
		if prev, ok := first[diffIDs[i]]; ok {
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: v1 + "/layer.tar", Linkname: "../" + prev, ModTime: time.Unix(0, 0)})
		} else {
			file(v1+"/layer.tar", l)
			first[diffIDs[i]] = v1 + "/layer.tar"
		}
		layerPaths = append(layerPaths, v1+"/layer.tar")
	}
	file(cfgHex+".json", cfg)
	mj, _ := json.Marshal([]DockerManifestEntry{{Config: cfgHex + ".json", RepoTags: []string{tag}, Layers: layerPaths}})
	file("manifest.json", mj)
	repo, tg, _ := strings.Cut(tag, ":")
	file("repositories", []byte(`{"`+repo+`":{"`+tg+`":"x"}}`))
	tw.Close()
	return buf.Bytes(), digest.Digest("sha256:" + cfgHex)
}

func TestLoadLegacyDockerArchive(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	one, two := smallTar(t, "one"), smallTarNamed(t, "two")
	ar, id := legacyArchive(t, [][]byte{busyboxTar(t), one, two, one}, "legacy:v1")
	loaded, err := f.s.Load(ctx, bytes.NewReader(ar))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != id.String() || loaded[0].Tags[0] != "legacy:v1" {
		t.Fatalf("loaded %+v, want %s", loaded, id)
	}
	img, err := f.s.Get(ctx, "legacy:v1")
	if err != nil || len(img.Layers) != 4 || img.Config.Config.Cmd[0] != "sh" {
		t.Fatalf("image %+v, %v", img, err)
	}
	if len(f.snapshots(t)) != 4 {
		t.Errorf("snapshots %v, want one per layer", f.snapshots(t))
	}
}

// ociArchive is a plain OCI layout (no manifest.json) with gzip layers and a
// multi-platform index pointing at the image, as other tools write it.
func ociArchive(t *testing.T, layer []byte, name string) ([]byte, digest.Digest) {
	t.Helper()
	gz := gzipped(layer)
	cfg := []byte(`{"architecture":"` + hostArch() + `","os":"linux","config":{"Cmd":["sh"]},"rootfs":{"type":"layers","diff_ids":["` + digest.FromBytes(layer).String() + `"]}}`)
	desc := func(mt string, b []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(b), Size: int64(len(b))}
	}
	m, _ := json.Marshal(ocispec.Manifest{Versioned: specsV2, MediaType: ocispec.MediaTypeImageManifest,
		Config: desc(ocispec.MediaTypeImageConfig, cfg), Layers: []ocispec.Descriptor{desc(ocispec.MediaTypeImageLayerGzip, gz)}})
	md := desc(ocispec.MediaTypeImageManifest, m)
	md.Platform = &ocispec.Platform{OS: "linux", Architecture: hostArch()}
	other := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("absent"), Size: 1, Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}}
	inner, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{other, md}})
	id := desc(ocispec.MediaTypeImageIndex, inner)
	id.Annotations = map[string]string{annotationRefName: name}
	outer, _ := json.Marshal(ocispec.Index{Versioned: specsV2, MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{id}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	file := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))})
		tw.Write(b)
	}
	file("oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`))
	file("index.json", outer)
	for _, b := range [][]byte{gz, cfg, m, inner} {
		file(blobPath(digest.FromBytes(b)), b)
	}
	tw.Close()
	return buf.Bytes(), digest.FromBytes(cfg)
}

func TestLoadOCILayout(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	ar, id := ociArchive(t, busyboxTar(t), "example.com/oci:1.0")
	loaded, err := f.s.Load(ctx, bytes.NewReader(ar))
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded) != 1 || loaded[0].ID != id.String() || strings.Join(loaded[0].Tags, ",") != "example.com/oci:1.0" {
		t.Fatalf("loaded %+v", loaded)
	}
	img, _ := f.s.Get(ctx, id.String())
	if img.Layers[0].MediaType != ocispec.MediaTypeImageLayerGzip {
		t.Errorf("layer kept as %s", img.Layers[0].MediaType)
	}
}

func TestLoadRefusesBadArchives(t *testing.T) {
	ctx := context.Background()
	good, _ := legacyArchive(t, [][]byte{smallTar(t, "x")}, "bad:v1")
	files, _ := readTar(t, good)
	rebuild := func(edit func(name string, b []byte) (string, []byte)) []byte {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for name, b := range files {
			name, b = edit(name, b)
			tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(b))})
			tw.Write(b)
		}
		tw.Close()
		return buf.Bytes()
	}
	cases := map[string][]byte{
		"layer differs from the config's diff id": rebuild(func(n string, b []byte) (string, []byte) {
			if strings.HasSuffix(n, "layer.tar") {
				return n, smallTar(t, "y")
			}
			return n, b
		}),
		"layer path leaves the archive": rebuild(func(n string, b []byte) (string, []byte) {
			if n == "manifest.json" {
				return n, bytes.ReplaceAll(b, []byte(`"Layers":["`), []byte(`"Layers":["../`))
			}
			return n, b
		}),
		"blob does not match its name": rebuild(func(n string, b []byte) (string, []byte) {
			if strings.HasSuffix(n, "layer.tar") {
				return "blobs/sha256/" + strings.Repeat("0", 64), b
			}
			return n, b
		}),
		"no manifest": rebuild(func(n string, b []byte) (string, []byte) {
			if n == "manifest.json" {
				return "other.json", b
			}
			return n, b
		}),
		"not a tar": []byte("hello, this is not an archive at all, not even close to one........................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................................."),
	}
	for name, ar := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			_, err := f.s.Load(ctx, bytes.NewReader(ar))
			if !errdefs.IsInvalid(err) {
				t.Fatalf("err = %v, want Invalid", err)
			}
			if n := f.blobs(t); n != 0 {
				t.Errorf("%d blobs left", n)
			}
			if s := f.snapshots(t); len(s) != 0 {
				t.Errorf("snapshots left: %v", s)
			}
		})
	}
}
