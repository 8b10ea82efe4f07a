package builder

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
)

// proxyArgs are the build args Docker predefines: usable without an ARG
// line, passed to RUN, and kept out of the image history (and so out of
// the cache key) unless the Dockerfile declares them, because a proxy does
// not change what a step builds.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true,
	"HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true,
	"NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// buildArgs tracks ARG declarations and --build-arg values with Docker's
// scoping: args declared before the first FROM (meta args) are visible to
// FROM lines and give defaults to a stage that declares the same name
// again; an ARG inside a stage is visible from its line to the stage's
// end.
type buildArgs struct {
	given      map[string]*string // --build-arg; a nil value sets nothing
	meta       map[string]*string // declared before the first FROM
	declared   map[string]*string // declared in the current stage (nil: no default)
	referenced map[string]bool    // every name declared anywhere, for the unused warning
}

func newBuildArgs(given map[string]*string) *buildArgs {
	return &buildArgs{
		given:      given,
		meta:       map[string]*string{},
		declared:   map[string]*string{},
		referenced: map[string]bool{},
	}
}

// forStage gives the args a new stage starts with: the meta args (for
// redeclaration) but no declared ones. Referenced names are shared so the
// unused warning sees every stage.
func (a *buildArgs) forStage() *buildArgs {
	return &buildArgs{given: a.given, meta: a.meta, declared: map[string]*string{}, referenced: a.referenced}
}

// declare records ARG key[=value] in the current scope.
func (a *buildArgs) declare(key string, value *string) {
	a.declared[key] = value
	a.referenced[key] = true
}

// declareMeta records an ARG before the first FROM.
func (a *buildArgs) declareMeta(key string, value *string) {
	a.meta[key] = value
	a.declare(key, value)
}

// value resolves key in scope: --build-arg wins, then the declared default,
// then (for `ARG X` without a default) the meta arg's default.
func (a *buildArgs) value(key string, scope map[string]*string) (string, bool) {
	def, ok := scope[key]
	if v, given := a.given[key]; given && v != nil {
		return *v, true
	}
	if def == nil {
		if m := a.meta[key]; m != nil {
			return *m, true
		}
		return "", false
	}
	return *def, ok
}

// resolved returns every arg of scope with a value, plus the predefined
// proxy args given on the command line.
func (a *buildArgs) resolved(scope map[string]*string) map[string]string {
	out := map[string]string{}
	for k := range scope {
		if v, ok := a.value(k, scope); ok {
			out[k] = v
		}
	}
	for k := range proxyArgs {
		if v, ok := a.value(k, scope); ok {
			out[k] = v
		}
	}
	return out
}

// metaValues are the args FROM lines expand with.
func (a *buildArgs) metaValues() map[string]string { return a.resolved(a.meta) }

// inEffect lists K=V for the args a step sees that are not shadowed by a
// variable of env (ENV wins over ARG), sorted.
func (a *buildArgs) inEffect(env []string) []string {
	have := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		have[k] = true
	}
	var out []string
	for k, v := range a.resolved(a.declared) {
		if !have[k] {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// inHistory filters inEffect's list down to what Docker writes into a RUN
// step's history (and so its cache key): proxy args only when declared.
func (a *buildArgs) inHistory(kvs []string) []string {
	var out []string
	for _, kv := range kvs {
		k, _, _ := strings.Cut(kv, "=")
		if _, declared := a.declared[k]; declared || !proxyArgs[k] {
			out = append(out, kv)
		}
	}
	return out
}

// warnUnused prints Docker's warning for --build-arg names no ARG declared.
func (a *buildArgs) warnUnused(out io.Writer) {
	var unused []string
	for _, k := range slices.Sorted(maps.Keys(a.given)) {
		if !a.referenced[k] && !proxyArgs[k] {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 {
		fmt.Fprintf(out, "[Warning] One or more build-args %v were not consumed\n", unused)
	}
}

// envList turns a map into K=V lines for shell.EnvsFromSlice.
func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
