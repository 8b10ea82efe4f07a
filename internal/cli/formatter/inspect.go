package formatter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/template"
)

// GetRefFunc fetches one object: its typed value and the raw API JSON.
type GetRefFunc func(ref string) (typed any, raw []byte, err error)

// InspectError is what Inspect returns when a reference failed or the
// template is bad; Code is the exit status docker uses (1, or 64 for a
// template that does not parse).
type InspectError struct {
	Code int
	Err  error
}

func (e *InspectError) Error() string { return e.Err.Error() }
func (e *InspectError) Unwrap() error { return e.Err }

// Inspect prints the objects that getRef returns for refs: as an indented
// JSON array without a format, compact with "json", else through the Go
// template (on the typed value first, then on the raw JSON decoded into
// maps, as docker does, so fields the typed struct lacks still work).
func Inspect(out io.Writer, refs []string, tmplStr string, getRef GetRefFunc) error {
	var (
		tmpl *template.Template
		err  error
	)
	if tmplStr != "" && tmplStr != JSONFormatKey {
		if tmpl, err = ParseTemplate(tmplStr); err != nil {
			return &InspectError{Code: 64, Err: fmt.Errorf("template parsing error: %w", err)}
		}
	}
	var (
		errs []error
		raws [][]byte
		buf  bytes.Buffer
	)
	for _, ref := range refs {
		typed, raw, err := getRef(ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if raw == nil {
			if raw, err = json.Marshal(typed); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		if tmpl == nil {
			raws = append(raws, raw)
			continue
		}
		if err := executeInspect(&buf, tmpl, typed, raw); err != nil {
			errs = append(errs, err)
		}
	}
	if tmpl == nil {
		var arr bytes.Buffer
		arr.WriteByte('[')
		arr.Write(bytes.Join(raws, []byte{','}))
		arr.WriteByte(']')
		var pretty bytes.Buffer
		if tmplStr == JSONFormatKey {
			err = json.Compact(&pretty, arr.Bytes())
		} else {
			err = json.Indent(&pretty, arr.Bytes(), "", "    ")
		}
		if err != nil {
			return err
		}
		pretty.WriteByte('\n')
		if _, err := pretty.WriteTo(out); err != nil {
			return err
		}
	} else {
		if buf.Len() == 0 {
			buf.WriteByte('\n')
		}
		if _, err := buf.WriteTo(out); err != nil {
			return err
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &InspectError{Code: 1, Err: err}
	}
	return nil
}

func executeInspect(out *bytes.Buffer, tmpl *template.Template, typed any, raw []byte) error {
	var b bytes.Buffer
	if err := tmpl.Execute(&b, typed); err == nil {
		out.Write(b.Bytes())
		out.WriteByte('\n')
		return nil
	}
	var generic any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&generic); err != nil {
		return fmt.Errorf("unable to read inspect data: %w", err)
	}
	b.Reset()
	if err := template.Must(tmpl.Clone()).Option("missingkey=error").Execute(&b, generic); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	out.Write(b.Bytes())
	out.WriteByte('\n')
	return nil
}
