package archive

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os/exec"
	"slices"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// withInflater runs f with gzip streams inflated in Go ("go") or by igzip
// ("igzip", which hack/deps.sh installs; the test fails without it).
func withInflater(t *testing.T, name string, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		saved := igzipPath
		t.Cleanup(func() { igzipPath = saved })
		switch name {
		case "go":
			igzipPath = func() string { return "" }
		case "igzip":
			p, err := exec.LookPath("igzip")
			if err != nil {
				t.Fatalf("igzip not installed (%v): run hack/deps.sh (Debian package isal)", err)
			}
			igzipPath = func() string { return p }
		}
		f(t)
	})
}

func TestGzipInflaters(t *testing.T) {
	layer := richLayer(t)
	var gz bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(layer)
	gw.Close()
	good := gz.Bytes()
	badCRC := slices.Clone(good)
	badCRC[len(badCRC)-8] ^= 0xff // the trailer's CRC-32
	truncated := good[:len(good)/2]
	garbage := append([]byte{0x1f, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0xff}, bytes.Repeat([]byte{0xa5}, 4096)...)
	wantSum := sha256.Sum256(layer)

	var want []string
	for _, inflater := range []string{"go", "igzip"} {
		withInflater(t, inflater, func(t *testing.T) {
			rc, _, err := DecompressStream(bytes.NewReader(good))
			if err != nil {
				t.Fatal(err)
			}
			if _, external := rc.(*procReader); external != (inflater == "igzip") {
				t.Fatalf("external inflater used: %v", external)
			}
			rc.Close()
			s := newSandbox(t)
			h := sha256.New()
			r := bytes.NewReader(good)
			if _, err := Apply(context.Background(), s.root, r, WithUncompressedTee(h)); err != nil {
				t.Fatal(err)
			}
			if r.Len() != 0 {
				t.Errorf("Apply left %d bytes unread", r.Len())
			}
			if !bytes.Equal(h.Sum(nil), wantSum[:]) {
				t.Errorf("the tee saw other bytes than the uncompressed layer")
			}
			got := tree(t, s.root)
			if want == nil {
				want = got
			} else if !slices.Equal(got, want) {
				t.Errorf("tree differs from the Go inflater's:\n%v\n%v", got, want)
			}
			for _, bad := range []struct {
				name string
				data []byte
			}{{"bad crc", badCRC}, {"truncated", truncated}, {"garbage", garbage}} {
				s := newSandbox(t)
				if _, err := Apply(context.Background(), s.root, bytes.NewReader(bad.data)); err == nil {
					t.Errorf("%s: Apply succeeded", bad.name)
				}
			}
		})
	}
}
