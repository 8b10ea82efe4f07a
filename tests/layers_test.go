package tests

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

const mod = "github.com/skiff-dev/skiff/"

// rank of each package: a package may import only packages of a lower rank
// (or equal rank inside its own subtree). ARCHITECTURE.md lists the layers.
var rank = map[string]int{
	// foundations
	"internal/errdefs": 0, "internal/testutil": 0, "internal/faults": 0, "internal/filters": 1, "internal/archive": 1,
	// storage
	"internal/meta": 2, "internal/content": 3, "internal/snapshot": 3,
	"internal/registry": 3, "internal/buildcontext": 3,
	// mechanisms
	"internal/cgroups": 2, "internal/logger": 2, // + jsonfile, local, syslog, journald, crilog, logopts
	"internal/network": 4, "internal/dns": 4, // + internal/network/firewall
	"internal/runtime": 4, "internal/monitor": 5,
	// assembly
	"internal/image": 6, "internal/ocispec": 6,
	"internal/volume": 6, "internal/containerfs": 4,
	// engine and front ends
	"internal/engine": 7, "internal/builder": 8,
	"internal/apiserver": 9, "internal/cri": 9, "internal/daemon": 10, "internal/cli": 11,
	"cmd/skiff": 12, "cmd/skiffd": 12, "cmd/skiff-shim": 12, "cmd/skiff-init": 12,
	// tools of the scripts (hack/critest/...), not part of skiff
	"hack": 12,
}

func rankOf(pkg string) (int, bool) {
	r, _, ok := layerOf(pkg)
	return r, ok
}

// layerOf returns the rank of pkg and the entry of the table it falls under.
func layerOf(pkg string) (int, string, bool) {
	p := strings.TrimPrefix(pkg, mod)
	for p != "" && p != "." {
		if r, ok := rank[p]; ok {
			return r, p, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return 0, "", false
}

type pkgInfo struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listPackages(t *testing.T, args ...string) []pkgInfo {
	t.Helper()
	out, err := exec.Command("go", append([]string{"list", "-json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	var pkgs []pkgInfo
	for dec.More() {
		var p pkgInfo
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestNothingImportsUpward(t *testing.T) {
	for _, p := range listPackages(t, "../...") {
		if !strings.HasPrefix(p.ImportPath, mod) || strings.HasPrefix(p.ImportPath, mod+"tests") || strings.HasPrefix(p.ImportPath, mod+"bench") {
			continue
		}
		from, ok := rankOf(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no layer: add it to ARCHITECTURE.md and this test", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to, ok := rankOf(imp)
			if !ok {
				continue // reported on its own
			}
			// Packages under one table entry (cli and cli/opts) share a layer.
			_, fromKey, _ := layerOf(p.ImportPath)
			_, toKey, _ := layerOf(imp)
			sameTree := fromKey == toKey
			if !sameTree && to >= from {
				t.Errorf("%s (layer %d) imports %s (layer %d)", p.ImportPath, from, imp, to)
			}
		}
	}
}

// The shim is started for every container and the monitor stays resident:
// it must not link the engine's heavy dependencies.
func TestShimStaysSmall(t *testing.T) {
	pkgs := listPackages(t, "../cmd/skiff-shim")
	forbidden := []string{"go.etcd.io/bbolt", "github.com/spf13/cobra", "github.com/moby/moby", "net/http", mod + "internal/engine", mod + "internal/image"}
	for _, d := range pkgs[0].Deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("skiff-shim depends on %s", d)
			}
		}
	}
}

// Every skiff command starts the CLI: it must not link the engine, whose
// packages' initialization and page faults would slow each of them.
func TestCLIStaysClientOnly(t *testing.T) {
	pkgs := listPackages(t, "../cmd/skiff")
	forbidden := []string{"go.etcd.io/bbolt", "github.com/moby/buildkit", "github.com/google/nftables", "github.com/miekg/dns",
		"github.com/docker/compose", "github.com/compose-spec/compose-go", // skiff-compose, a module of its own
		"github.com/google/go-containerregistry", mod + "internal/registry",
		mod + "internal/daemon", mod + "internal/engine", mod + "internal/apiserver", mod + "internal/runtime", mod + "internal/image",
		mod + "internal/cri", "google.golang.org/grpc", "k8s.io/cri-api"}
	for _, d := range pkgs[0].Deps {
		for _, f := range forbidden {
			if d == f || strings.HasPrefix(d, f+"/") {
				t.Errorf("the skiff CLI depends on %s", d)
			}
		}
	}
}
