package formatter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf8"
)

// Format keys with a special meaning.
const (
	TableFormatKey = "table"
	RawFormatKey   = "raw"
	JSONFormatKey  = "json"

	DefaultQuietFormat = "{{.ID}}"
	JSONFormat         = "{{json .}}"
)

// Format is a --format value.
type Format string

// IsTable reports whether the format starts with "table".
func (f Format) IsTable() bool { return strings.HasPrefix(string(f), TableFormatKey) }

// Contains reports whether the format contains sub.
func (f Format) Contains(sub string) bool { return strings.Contains(string(f), sub) }

// templateString strips the "table" prefix and turns the \t and \n that a
// shell passes literally into real tabs and newlines.
func (f Format) templateString() string {
	out := string(f)
	switch out {
	case TableFormatKey:
		return ""
	case JSONFormatKey:
		return JSONFormat
	}
	if after, ok := strings.CutPrefix(out, TableFormatKey); ok {
		out = after
	}
	out = strings.Trim(out, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(out)
}

// Context renders a list of SubContexts with one Format.
type Context struct {
	Output io.Writer
	Format Format
	// Trunc shortens ids, commands and names like docker's default output.
	Trunc bool
	// Now is the clock for "x minutes ago"; nil means time.Now.
	Now func() time.Time

	buffer *bytes.Buffer
}

func (c *Context) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// SubContext is one row; FullHeader gives the column names for table output.
type SubContext interface {
	FullHeader() any
}

// SubHeaderContext maps a field name to its column header.
type SubHeaderContext map[string]string

// Label turns a field path into a header (docker's rule, used by .Label).
func (SubHeaderContext) Label(name string) string {
	n := strings.Split(name, ".")
	return strings.NewReplacer("-", " ", "_", " ").Replace(n[len(n)-1])
}

// HeaderContext implements SubContext.
type HeaderContext struct {
	Header any
}

// FullHeader returns the header.
func (c *HeaderContext) FullHeader() any { return c.Header }

// Write renders every row that render passes to format, then writes the
// result (with a header and aligned columns for table formats).
func (c *Context) Write(header SubContext, render func(format func(SubContext) error) error) error {
	c.buffer = &bytes.Buffer{}
	tmpl, err := ParseTemplate(c.Format.templateString())
	if err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	format := func(sub SubContext) error {
		if err := tmpl.Execute(c.buffer, sub); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		c.buffer.WriteString("\n")
		return nil
	}
	if err := render(format); err != nil {
		return err
	}
	out := c.Output
	if out == nil {
		out = io.Discard
	}
	if !c.Format.IsTable() {
		_, err := c.buffer.WriteTo(out)
		return err
	}
	// docker: minwidth 10, tabwidth 1, padding 3.
	tw := tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)
	_ = tmpl.Funcs(headerFunctions).Execute(tw, header.FullHeader())
	_, _ = tw.Write([]byte{'\n'})
	_, _ = c.buffer.WriteTo(tw)
	return tw.Flush()
}

// MarshalJSON marshals the exported, argument-less methods of a row (its
// template fields) into a JSON object, which is what `{{json .}}` prints.
func MarshalJSON(x any) ([]byte, error) {
	val := reflect.ValueOf(x)
	if val.Kind() != reflect.Pointer || val.IsNil() || val.Elem().Kind() != reflect.Struct {
		return nil, errors.New("expected a pointer to a struct")
	}
	typ := val.Type()
	m := map[string]any{}
	for i := range val.NumMethod() {
		meth := typ.Method(i)
		fn := val.Method(i)
		name := meth.Name
		if name == "FullHeader" || name == "MarshalJSON" || !unicode.IsUpper(rune(name[0])) {
			continue
		}
		if fn.Type().NumIn() != 0 || fn.Type().NumOut() != 1 {
			continue
		}
		m[name] = fn.Call(nil)[0].Interface()
	}
	return json.Marshal(m)
}

// TruncateID shortens an id to 12 characters after any "sha256:" prefix.
func TruncateID(id string) string {
	if i := strings.IndexRune(id, ':'); i >= 0 {
		id = id[i+1:]
	}
	if len(id) > 12 {
		id = id[:12]
	}
	return id
}

// Ellipsis shortens s to max runes, ending with "…" when it was cut.
func Ellipsis(s string, max int) string {
	if max <= 0 {
		return ""
	}
	rs := []rune(s)
	if max == 1 {
		if len(rs) == 0 {
			return ""
		}
		return string(rs[0])
	}
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	return string(rs[:max-1]) + "…"
}
