// Package formatter renders lists and objects for the skiff command line the
// way docker/cli does (Apache-2.0; this follows its formatter and templates
// packages): `table` formats with aligned columns and headers, `json`, and Go
// templates with docker's helper functions.
package formatter

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"text/template"
)

// basicFunctions are available in every template, as in docker.
var basicFunctions = template.FuncMap{
	"json":     formatJSON,
	"split":    strings.Split,
	"join":     joinElements,
	"title":    strings.Title, //nolint:staticcheck // ASCII only, like docker
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"pad":      padWithSpace,
	"truncate": truncateWithLength,
}

// headerFunctions replace basicFunctions when a table header is rendered, so
// that `{{upper .Names}}` still prints the column name NAMES unchanged.
var headerFunctions = template.FuncMap{
	"json":     func(v string) string { return v },
	"split":    func(v string, _ string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"title":    func(v string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

// ParseTemplate parses format with docker's helper functions.
func ParseTemplate(format string) (*template.Template, error) {
	return template.New("").Funcs(basicFunctions).Parse(format)
}

// NewTemplate returns an empty template with the helper functions.
func NewTemplate(tag string) *template.Template {
	return template.New(tag).Funcs(basicFunctions)
}

func padWithSpace(source string, prefix, suffix int) string {
	if source == "" {
		return source
	}
	return strings.Repeat(" ", prefix) + source + strings.Repeat(" ", suffix)
}

func truncateWithLength(source string, length int) string {
	if len(source) < length {
		return source
	}
	return source[:length]
}

func formatJSON(v any) string {
	buf := &bytes.Buffer{}
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err)
	}
	return strings.TrimSpace(buf.String())
}

func joinElements(elems any, sep string) (string, error) {
	if elems == nil {
		return "", nil
	}
	if ss, ok := elems.([]string); ok {
		return strings.Join(ss, sep), nil
	}
	switch rv := reflect.ValueOf(elems); rv.Kind() {
	case reflect.Array, reflect.Slice:
		var b strings.Builder
		for i := range rv.Len() {
			if i > 0 {
				b.WriteString(sep)
			}
			fmt.Fprint(&b, rv.Index(i).Interface())
		}
		return b.String(), nil
	case reflect.Map:
		var out []string
		for _, k := range rv.MapKeys() {
			out = append(out, fmt.Sprint(rv.MapIndex(k).Interface()))
		}
		sort.Strings(out)
		return strings.Join(out, sep), nil
	default:
		return "", fmt.Errorf("expected slice, got %T", elems)
	}
}
