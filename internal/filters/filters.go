// Package filters parses the Docker API's `filters` query parameter and
// matches values against it. Both wire forms are accepted: the current
// {"key":{"value":true}} and the legacy {"key":["value"]}.
package filters

import (
	"encoding/json"
	"path"
	"strings"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// Args maps a filter term to its accepted values.
type Args map[string][]string

// Parse decodes the filters query value. An empty string is no filter.
func Parse(s string) (Args, error) {
	if s == "" {
		return Args{}, nil
	}
	var cur map[string]map[string]bool
	if err := json.Unmarshal([]byte(s), &cur); err == nil {
		out := Args{}
		for k, vs := range cur {
			for v, ok := range vs {
				if ok {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	var legacy map[string][]string
	if err := json.Unmarshal([]byte(s), &legacy); err != nil {
		return nil, errdefs.Invalid("invalid filter %q: %v", s, err)
	}
	return Args(legacy), nil
}

// Validate rejects terms outside allowed, as Docker does ("invalid filter 'x'").
func (a Args) Validate(allowed ...string) error {
	for k := range a {
		ok := false
		for _, al := range allowed {
			if k == al {
				ok = true
				break
			}
		}
		if !ok {
			return errdefs.Invalid("invalid filter '%s'", k)
		}
	}
	return nil
}

// Has reports whether term is present.
func (a Args) Has(term string) bool { _, ok := a[term]; return ok }

// Get returns the values of term.
func (a Args) Get(term string) []string { return a[term] }

// Match reports whether value satisfies term: true when the term is absent
// or any of its values equals value.
func (a Args) Match(term, value string) bool {
	vs, ok := a[term]
	if !ok {
		return true
	}
	for _, v := range vs {
		if v == value {
			return true
		}
	}
	return false
}

// MatchPrefix is Match with prefix comparison (ids).
func (a Args) MatchPrefix(term, value string) bool {
	vs, ok := a[term]
	if !ok {
		return true
	}
	for _, v := range vs {
		if strings.HasPrefix(value, v) {
			return true
		}
	}
	return false
}

// MatchGlob is Match with shell-style patterns (names, references).
func (a Args) MatchGlob(term, value string) bool {
	vs, ok := a[term]
	if !ok {
		return true
	}
	for _, v := range vs {
		if ok, _ := path.Match(v, value); ok || v == value {
			return true
		}
	}
	return false
}

// MatchLabels checks the "label" term: each value is KEY or KEY=VALUE and all
// must hold.
func (a Args) MatchLabels(term string, labels map[string]string) bool {
	for _, v := range a[term] {
		k, want, hasVal := strings.Cut(v, "=")
		got, ok := labels[k]
		if !ok || (hasVal && got != want) {
			return false
		}
	}
	return true
}

// Bool returns the value of a boolean term and whether it was set.
func (a Args) Bool(term string) (val, set bool, err error) {
	vs, ok := a[term]
	if !ok || len(vs) == 0 {
		return false, false, nil
	}
	switch strings.ToLower(vs[0]) {
	case "true", "1":
		return true, true, nil
	case "false", "0":
		return false, true, nil
	}
	return false, true, errdefs.Invalid("invalid filter '%s=%s'", term, vs[0])
}
