package jsonfile

import (
	"slices"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/skiff-dev/skiff/internal/logger"
)

// decodeFast parses the records this package (and Docker) writes without
// reflection: an object with the string fields "log", "stream" and "time".
// Anything else (other fields, whitespace, odd escapes) returns ok=false and
// the caller falls back to encoding/json.
//
// Bytes that are not UTF-8 (a damaged file: writers escape them) also go to
// encoding/json, which reads each as U+FFFD as Docker's reader does.
func decodeFast(b []byte) (e Entry, ok bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' || !utf8.Valid(b) {
		return e, false
	}
	b = b[1 : len(b)-1]
	var (
		log  []byte
		seen bool
	)
	for len(b) > 0 {
		if seen {
			if b[0] != ',' {
				return e, false
			}
			b = b[1:]
		}
		seen = true
		var key []byte
		var err bool
		if key, b, err = scanString(b, nil); err || len(b) == 0 || b[0] != ':' {
			return e, false
		}
		b = b[1:]
		switch string(key) {
		case "log":
			if log, b, err = scanString(b, make([]byte, 0, len(b))); err {
				return e, false
			}
		case "stream":
			var s []byte
			if s, b, err = scanString(b, nil); err {
				return e, false
			}
			switch string(s) { // no allocation for the usual two
			case "stdout":
				e.Stream = "stdout"
			case "stderr":
				e.Stream = "stderr"
			default:
				e.Stream = string(s)
			}
		case "time":
			var s []byte
			if s, b, err = scanString(b, nil); err {
				return e, false
			}
			t, perr := time.Parse(time.RFC3339Nano, string(s))
			if perr != nil {
				return e, false
			}
			e.Time = t
		case "attrs":
			if e.Attrs != nil {
				return e, false // a second object: encoding/json merges them
			}
			if e.Attrs, b, err = scanAttrs(b); err {
				return e, false
			}
		default:
			return e, false
		}
	}
	e.Line = log
	return e, true
}

// scanAttrs reads an object of string values (Docker's "attrs", written
// with sorted keys and no spaces). A repeated key is left to encoding/json.
func scanAttrs(b []byte) (as []logger.Attr, rest []byte, bad bool) {
	if len(b) < 2 || b[0] != '{' {
		return nil, nil, true
	}
	b = b[1:]
	if b[0] == '}' {
		return nil, b[1:], false
	}
	for {
		var k, v []byte
		if k, b, bad = scanString(b, nil); bad || len(b) == 0 || b[0] != ':' {
			return nil, nil, true
		}
		if v, b, bad = scanString(b[1:], nil); bad || len(b) == 0 {
			return nil, nil, true
		}
		as = append(as, logger.Attr{Key: string(k), Value: string(v)})
		switch b[0] {
		case ',':
			b = b[1:]
		case '}':
			as = sortAttrs(as)
			for i := 1; i < len(as); i++ {
				if as[i].Key == as[i-1].Key {
					// A repeated key: encoding/json keeps the last.
					return nil, nil, true
				}
			}
			return as, b[1:], false
		default:
			return nil, nil, true
		}
	}
}

func sortAttrs(as []logger.Attr) []logger.Attr {
	slices.SortFunc(as, func(a, b logger.Attr) int { return strings.Compare(a.Key, b.Key) })
	return as
}

func sortedAttrs(m map[string]string) []logger.Attr {
	if len(m) == 0 {
		return nil
	}
	as := make([]logger.Attr, 0, len(m))
	for k, v := range m {
		as = append(as, logger.Attr{Key: k, Value: v})
	}
	return sortAttrs(as)
}

// scanString reads a JSON string at the start of b and returns its value
// (appended to dst, or a sub-slice of b when it has no escapes and dst is
// nil) and the rest of b.
func scanString(b, dst []byte) (val, rest []byte, bad bool) {
	if len(b) == 0 || b[0] != '"' {
		return nil, nil, true
	}
	b = b[1:]
	start := 0
	escaped := false
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '"':
			if !escaped && dst == nil {
				return b[:i], b[i+1:], false
			}
			return append(dst, b[start:i]...), b[i+1:], false
		case c == '\\':
			escaped = true
			dst = append(dst, b[start:i]...)
			if i+1 >= len(b) {
				return nil, nil, true
			}
			switch b[i+1] {
			case '"', '\\', '/':
				dst = append(dst, b[i+1])
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r, ok := hex4(b[i+2:])
				if !ok {
					return nil, nil, true
				}
				i += 6
				if utf16.IsSurrogate(r) {
					r2, ok2 := rune(-1), false
					if len(b) >= i+6 && b[i] == '\\' && b[i+1] == 'u' {
						r2, ok2 = hex4(b[i+2:])
					}
					if dec := utf16.DecodeRune(r, r2); ok2 && dec != utf8.RuneError {
						r = dec
						i += 6
					} else {
						r = utf8.RuneError
					}
				}
				dst = utf8.AppendRune(dst, r)
				start = i
				continue
			default:
				return nil, nil, true
			}
			i += 2
			start = i
		case c < 0x20:
			return nil, nil, true
		default:
			i++
		}
	}
	return nil, nil, true
}

func hex4(b []byte) (rune, bool) {
	if len(b) < 4 {
		return 0, false
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case '0' <= c && c <= '9':
			r |= rune(c - '0')
		case 'a' <= c && c <= 'f':
			r |= rune(c - 'a' + 10)
		case 'A' <= c && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, false
		}
	}
	return r, true
}
