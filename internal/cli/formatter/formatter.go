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

// Ellipsis shortens s to max display columns, ending with "…" when it was
// cut, as docker's formatter does: East Asian wide and fullwidth
// characters take two columns.
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
	if len(s) == len(rs) { // ASCII
		if len(rs) <= max {
			return s
		}
		return string(rs[:max-1]) + "…"
	}
	// ends[i] is the width of rs[:i+1].
	ends := make([]int, len(rs))
	w := 0
	for i, r := range rs {
		w += charWidth(r)
		ends[i] = w
	}
	if w <= max {
		return s
	}
	for i := 0; i+1 < len(ends); i++ {
		if ends[i] <= max-1 && ends[i+1] > max-1 {
			return string(rs[:i+1]) + "…"
		}
	}
	return s
}

// wideRanges are the main East Asian Wide (W) and Fullwidth (F) blocks of
// Unicode's EastAsianWidth.txt: CJK, Hangul, kana, fullwidth forms, emoji.
var wideRanges = [][2]rune{
	{0x1100, 0x115F}, {0x231A, 0x231B}, {0x2329, 0x232A}, {0x23E9, 0x23EC}, {0x23F0, 0x23F0}, {0x23F3, 0x23F3},
	{0x25FD, 0x25FE}, {0x2614, 0x2615}, {0x2648, 0x2653}, {0x267F, 0x267F}, {0x2693, 0x2693}, {0x26A1, 0x26A1},
	{0x26AA, 0x26AB}, {0x26BD, 0x26BE}, {0x26C4, 0x26C5}, {0x26CE, 0x26CE}, {0x26D4, 0x26D4}, {0x26EA, 0x26EA},
	{0x26F2, 0x26F3}, {0x26F5, 0x26F5}, {0x26FA, 0x26FA}, {0x26FD, 0x26FD}, {0x2705, 0x2705}, {0x270A, 0x270B},
	{0x2728, 0x2728}, {0x274C, 0x274C}, {0x274E, 0x274E}, {0x2753, 0x2755}, {0x2757, 0x2757}, {0x2795, 0x2797},
	{0x27B0, 0x27B0}, {0x27BF, 0x27BF}, {0x2B1B, 0x2B1C}, {0x2B50, 0x2B50}, {0x2B55, 0x2B55},
	{0x2E80, 0x303E}, {0x3041, 0x33FF}, {0x3400, 0x4DBF}, {0x4E00, 0x9FFF}, {0xA000, 0xA4CF}, {0xA960, 0xA97F},
	{0xAC00, 0xD7A3}, {0xF900, 0xFAFF}, {0xFE10, 0xFE19}, {0xFE30, 0xFE6F}, {0xFF00, 0xFF60}, {0xFFE0, 0xFFE6},
	{0x16FE0, 0x16FE4}, {0x17000, 0x18CFF}, {0x1B000, 0x1B2FF}, {0x1F004, 0x1F004}, {0x1F0CF, 0x1F0CF},
	{0x1F18E, 0x1F18E}, {0x1F191, 0x1F19A}, {0x1F200, 0x1F2FF}, {0x1F300, 0x1F320}, {0x1F32D, 0x1F335},
	{0x1F337, 0x1F37C}, {0x1F37E, 0x1F393}, {0x1F3A0, 0x1F3CA}, {0x1F3CF, 0x1F3D3}, {0x1F3E0, 0x1F3F0},
	{0x1F3F4, 0x1F3F4}, {0x1F3F8, 0x1F43E}, {0x1F440, 0x1F440}, {0x1F442, 0x1F4FC}, {0x1F4FF, 0x1F53D},
	{0x1F54B, 0x1F54E}, {0x1F550, 0x1F567}, {0x1F57A, 0x1F57A}, {0x1F595, 0x1F596}, {0x1F5A4, 0x1F5A4},
	{0x1F5FB, 0x1F64F}, {0x1F680, 0x1F6C5}, {0x1F6CC, 0x1F6CC}, {0x1F6D0, 0x1F6D2}, {0x1F6D5, 0x1F6D7},
	{0x1F6DC, 0x1F6DF}, {0x1F6EB, 0x1F6EC}, {0x1F6F4, 0x1F6FC}, {0x1F7E0, 0x1F7EB}, {0x1F7F0, 0x1F7F0},
	{0x1F90C, 0x1F93A}, {0x1F93C, 0x1F945}, {0x1F947, 0x1F9FF}, {0x1FA70, 0x1FAFF}, {0x20000, 0x2FFFD},
	{0x30000, 0x3FFFD},
}

// charWidth is the number of terminal columns r takes.
func charWidth(r rune) int {
	lo, hi := 0, len(wideRanges)
	for lo < hi {
		m := (lo + hi) / 2
		switch {
		case r < wideRanges[m][0]:
			hi = m
		case r > wideRanges[m][1]:
			lo = m + 1
		default:
			return 2
		}
	}
	return 1
}
