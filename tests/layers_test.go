package tests

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/skiff-dev/skiff/"

// allowed lists, for each package (a table entry covers its subtree), the
// skiff packages it may import: an allow-list, so a new import is a decision
// written down here, never a surprise. Packages under one entry (cli and
// cli/opts) may import each other. ARCHITECTURE.md lists the layers; each
// entry's layer is in layerOf, and TestAllowListsGoDown checks that every
// allowed import goes to a lower layer.
var allowed = map[string][]string{
	// foundations
	"internal/errdefs":  nil,
	"internal/testutil": nil,
	"internal/filters":  {"internal/errdefs"},
	"internal/archive":  {"internal/errdefs"},
	"internal/mount":    nil, // linked by skiff-shim: std and x/sys only
	"internal/faults":   nil, // kill points: empty unless built with -tags faults
	// storage
	"internal/meta":         {"internal/errdefs"},
	"internal/content":      {"internal/errdefs"},
	"internal/snapshot":     {"internal/errdefs", "internal/meta", "internal/mount"},
	"internal/registry":     {"internal/errdefs"},
	"internal/buildcontext": {"internal/errdefs", "internal/archive", "internal/meta"},
	// mechanisms
	"internal/cgroups":     {"internal/errdefs"},
	"internal/logger":      {"internal/errdefs"}, // + jsonfile, local, syslog, journald, crilog, logopts
	"internal/network":     {"internal/errdefs"}, // + firewall
	"internal/dns":         {"internal/errdefs"},
	"internal/containerfs": {"internal/errdefs"},
	"internal/runtime":     {"internal/errdefs", "internal/faults", "internal/cgroups", "internal/mount"},
	"internal/monitor":     {"internal/errdefs", "internal/faults", "internal/logger"},
	// assembly
	"internal/image":   {"internal/errdefs", "internal/archive", "internal/meta", "internal/content", "internal/snapshot"},
	"internal/ocispec": {"internal/errdefs", "internal/mount", "internal/runtime"},
	"internal/volume":  {"internal/errdefs", "internal/meta"},
	// engine
	"internal/engine": {"internal/errdefs", "internal/faults", "internal/filters", "internal/archive", "internal/mount",
		"internal/meta", "internal/content", "internal/snapshot", "internal/registry",
		"internal/cgroups", "internal/logger", "internal/network", "internal/dns", "internal/containerfs",
		"internal/runtime", "internal/monitor", "internal/image", "internal/ocispec", "internal/volume"},
	// features: the builder drives the engine through builder.Backend, which
	// the daemon wires; it never imports the engine.
	"internal/builder": {"internal/errdefs", "internal/meta", "internal/buildcontext", "internal/image"},
	// front ends
	"internal/apiserver": {"internal/errdefs", "internal/filters", "internal/archive", "internal/registry",
		"internal/logger", "internal/image", "internal/engine"},
	"internal/cri": {"internal/errdefs", "internal/filters", "internal/registry", "internal/engine"},
	"internal/daemon": {"internal/errdefs", "internal/buildcontext", "internal/registry", "internal/cgroups",
		"internal/logger", "internal/engine", "internal/builder", "internal/apiserver", "internal/cri"},
	"internal/cli": {"internal/errdefs", "internal/archive"},
	// The `daemon` command's flags, linked by skiffd only (cli/opts is
	// under internal/cli).
	"internal/cli/daemoncmd": {"internal/cli", "internal/daemon"},
	"cmd/skiff":              {"internal/cli"},
	"cmd/skiffd":             {"internal/cli/daemoncmd", "internal/daemon", "internal/runtime"},
	"cmd/skiff-shim":         {"internal/errdefs", "internal/monitor", "internal/runtime"},
	"cmd/skiff-init":         nil,
	// tools of the scripts (hack/critest/...), not part of skiff
	"hack": nil,
}

// layer is each entry's layer in ARCHITECTURE.md's table, bottom up.
var layer = map[string]int{
	"internal/errdefs": 0, "internal/testutil": 0, "internal/filters": 0, "internal/archive": 0, "internal/mount": 0,
	"internal/faults": 0,
	"internal/meta":   1, "internal/content": 1, "internal/snapshot": 1, "internal/registry": 1, "internal/buildcontext": 1,
	"internal/cgroups": 2, "internal/logger": 2, "internal/network": 2, "internal/dns": 2,
	"internal/containerfs": 2, "internal/runtime": 2, "internal/monitor": 2,
	"internal/image": 3, "internal/ocispec": 3, "internal/volume": 3,
	"internal/engine":    4,
	"internal/builder":   5,
	"internal/apiserver": 6, "internal/cri": 6, "internal/daemon": 6, "internal/cli": 6,
	"internal/cli/daemoncmd": 6, "cmd/skiff": 6, "cmd/skiffd": 6, "cmd/skiff-shim": 6, "cmd/skiff-init": 6,
	"hack": 7,
}

// entryOf returns the table entry pkg falls under.
func entryOf(pkg string) (string, bool) {
	p := strings.TrimPrefix(pkg, mod)
	for p != "" && p != "." {
		if _, ok := allowed[p]; ok {
			return p, true
		}
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
	return "", false
}

type pkgInfo struct {
	ImportPath string
	Standard   bool
	Imports    []string
	Module     *struct{ Path string }
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

// The allow-lists themselves respect the layers: within a layer only
// mechanisms build on mechanisms (runtime on cgroups, monitor on logger,
// ocispec on runtime), front ends on front ends (daemon on apiserver, the
// commands on cli); never an import from a lower layer to a higher one.
func TestAllowListsGoDown(t *testing.T) {
	for from, tos := range allowed {
		lf, ok := layer[from]
		if !ok {
			t.Errorf("%s has no layer", from)
		}
		for _, to := range tos {
			lt, ok := layer[to]
			if !ok {
				t.Errorf("%s may import %s, which is not in the table", from, to)
			} else if lt > lf {
				t.Errorf("%s (layer %d) may import %s (layer %d): upward", from, lf, to, lt)
			}
		}
	}
}

func TestImportsAreAllowed(t *testing.T) {
	for _, p := range listPackages(t, "../...") {
		if !strings.HasPrefix(p.ImportPath, mod) || strings.HasPrefix(p.ImportPath, mod+"tests") || strings.HasPrefix(p.ImportPath, mod+"bench") {
			continue
		}
		from, ok := entryOf(p.ImportPath)
		if !ok {
			t.Errorf("package %s has no layer: add it to ARCHITECTURE.md and this test", p.ImportPath)
			continue
		}
		for _, imp := range p.Imports {
			if !strings.HasPrefix(imp, mod) {
				continue
			}
			to, ok := entryOf(imp)
			if !ok || to == from {
				continue // unknown: reported on its own; same subtree: allowed
			}
			if !slices.Contains(allowed[from], to) {
				t.Errorf("%s imports %s, which %s's allow-list does not name", p.ImportPath, imp, from)
			}
		}
	}
}

// shimStd is what skiff-shim's own packages and libraries may import from
// the standard library (what those import in turn is std's business): no
// net/http, no crypto/tls, nothing that makes a resident monitor heavy.
var shimStd = []string{
	"C", "bufio", "bytes", "compress/gzip", "context", "encoding/binary", "encoding/hex", "encoding/json",
	"errors", "fmt", "io", "math", "math/bits", "math/rand/v2", "net", "os", "os/exec", "os/signal",
	"path/filepath", "runtime", "runtime/debug", "slices", "sort", "strconv", "strings", "sync", "syscall",
	"time", "unicode/utf16", "unicode/utf8", "unsafe",
}

// shimLinks is every non-standard package skiff-shim may link.
var shimLinks = []string{
	"github.com/opencontainers/runtime-spec/specs-go",
	"golang.org/x/sys/unix",
	mod + "cmd/skiff-shim",
	mod + "internal/errdefs",
	mod + "internal/mount",
	mod + "internal/faults",
	mod + "internal/cgroups",
	mod + "internal/runtime",
	mod + "internal/runtime/nsenter",
	mod + "internal/monitor",
	mod + "internal/logger",
	mod + "internal/logger/crilog",
	mod + "internal/logger/journald",
	mod + "internal/logger/jsonfile",
	mod + "internal/logger/local",
	mod + "internal/logger/syslog",
}

// The shim is started for every container and the monitor stays resident:
// it links only what these lists allow (no bbolt, cobra, moby, net/http).
func TestShimStaysSmall(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "../cmd/skiff-shim") {
		if p.Standard {
			continue
		}
		if !slices.Contains(shimLinks, p.ImportPath) {
			t.Errorf("skiff-shim links %s, which shimLinks does not allow", p.ImportPath)
		}
		for _, imp := range p.Imports {
			if isStd(imp) && !slices.Contains(shimStd, imp) {
				t.Errorf("%s (in skiff-shim) imports %s, which shimStd does not allow", p.ImportPath, imp)
			}
		}
	}
}

// isStd tells a standard library import path by its first element, which
// has no dot.
func isStd(p string) bool {
	first, _, _ := strings.Cut(p, "/")
	return !strings.Contains(first, ".")
}

// cliModules are the modules the skiff CLI may link: the Docker API client,
// the docker CLI's config and its dependencies. Every skiff command starts
// it, so it must not link the engine (bbolt, registry, nftables, grpc),
// whose initialization and page faults would slow each of them.
var cliModules = []string{
	"github.com/cespare/xxhash/v2", "github.com/containerd/errdefs", "github.com/containerd/errdefs/pkg",
	"github.com/distribution/reference", "github.com/docker/cli", "github.com/docker/docker-credential-helpers",
	"github.com/docker/go-connections", "github.com/docker/go-units", "github.com/felixge/httpsnoop",
	"github.com/go-logr/logr", "github.com/go-logr/stdr", "github.com/klauspost/compress",
	"github.com/moby/docker-image-spec", "github.com/moby/moby/api", "github.com/moby/moby/client",
	"github.com/moby/patternmatcher", "github.com/moby/term", "github.com/opencontainers/go-digest",
	"github.com/opencontainers/image-spec", "github.com/sirupsen/logrus", "github.com/spf13/cobra",
	"github.com/spf13/pflag", "go.opentelemetry.io/auto/sdk",
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp", "go.opentelemetry.io/otel",
	"go.opentelemetry.io/otel/metric", "go.opentelemetry.io/otel/trace", "golang.org/x/sys",
}

// cliLinks are the skiff packages the CLI may link.
var cliLinks = []string{
	mod + "cmd/skiff", mod + "internal/cli", mod + "internal/cli/opts", mod + "internal/cli/formatter",
	mod + "internal/errdefs", mod + "internal/archive",
}

func TestCLIStaysClientOnly(t *testing.T) {
	for _, p := range listPackages(t, "-deps", "../cmd/skiff") {
		switch {
		case p.Standard:
		case strings.HasPrefix(p.ImportPath, mod):
			if !slices.Contains(cliLinks, p.ImportPath) {
				t.Errorf("the skiff CLI links %s, which cliLinks does not allow", p.ImportPath)
			}
		case p.Module == nil || !slices.Contains(cliModules, p.Module.Path):
			t.Errorf("the skiff CLI links %s, whose module cliModules does not allow", p.ImportPath)
		}
	}
}
