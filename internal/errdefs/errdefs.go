// Package errdefs holds skiff's error kinds. Every layer wraps its errors with
// one of these kinds; apiserver.statusFor and cli.exitCodeFor are the only places
// that turn a kind into an HTTP status or a process exit code.
package errdefs

import (
	"errors"
	"fmt"
)

// Kind classifies an error by what the caller can do about it.
type Kind int

const (
	KindUnknown         Kind = iota
	KindNotFound             // 404: no such container, image, exec, ...
	KindInvalid              // 400: bad parameter, bad flag value
	KindConflict             // 409: name in use, container running, image in use
	KindNotModified          // 304: already started / already stopped
	KindForbidden            // 403
	KindUnavailable          // 503
	KindNotImplemented       // 501
	KindCannotInvoke         // command found but cannot be run: exit 126
	KindCommandNotFound      // command does not exist: exit 127
	KindSystem               // 500: anything else
)

type kindError struct {
	kind Kind
	err  error
}

func (e *kindError) Error() string { return e.err.Error() }
func (e *kindError) Unwrap() error { return e.err }

// Wrap marks err with kind k. A nil err stays nil.
func Wrap(k Kind, err error) error {
	if err == nil {
		return nil
	}
	return &kindError{kind: k, err: err}
}

func newf(k Kind, format string, args ...any) error {
	return &kindError{kind: k, err: fmt.Errorf(format, args...)}
}

func NotFound(format string, args ...any) error    { return newf(KindNotFound, format, args...) }
func Invalid(format string, args ...any) error     { return newf(KindInvalid, format, args...) }
func Conflict(format string, args ...any) error    { return newf(KindConflict, format, args...) }
func NotModified(format string, args ...any) error { return newf(KindNotModified, format, args...) }
func Forbidden(format string, args ...any) error   { return newf(KindForbidden, format, args...) }
func Unavailable(format string, args ...any) error { return newf(KindUnavailable, format, args...) }
func NotImplemented(format string, args ...any) error {
	return newf(KindNotImplemented, format, args...)
}
func CannotInvoke(format string, args ...any) error { return newf(KindCannotInvoke, format, args...) }
func CommandNotFound(format string, args ...any) error {
	return newf(KindCommandNotFound, format, args...)
}
func System(format string, args ...any) error { return newf(KindSystem, format, args...) }

// KindOf returns the outermost kind found in err's chain.
func KindOf(err error) Kind {
	var ke *kindError
	if errors.As(err, &ke) {
		return ke.kind
	}
	return KindUnknown
}

func IsNotFound(err error) bool    { return KindOf(err) == KindNotFound }
func IsInvalid(err error) bool     { return KindOf(err) == KindInvalid }
func IsConflict(err error) bool    { return KindOf(err) == KindConflict }
func IsNotModified(err error) bool { return KindOf(err) == KindNotModified }

// kindNames spell the kinds between processes (the monitor protocol, the
// runtime's sync socket, skiff-shim's exec status pipe): by name, so the
// numbering of the constants above is never a wire format.
var kindNames = map[Kind]string{
	KindNotFound:        "notfound",
	KindInvalid:         "invalid",
	KindConflict:        "conflict",
	KindNotModified:     "notmodified",
	KindForbidden:       "forbidden",
	KindUnavailable:     "unavailable",
	KindNotImplemented:  "notimplemented",
	KindCannotInvoke:    "cannotinvoke",
	KindCommandNotFound: "commandnotfound",
	KindSystem:          "system",
}

// KindName is the wire name of err's kind; an error without a kind is
// "system".
func KindName(err error) string {
	if n, ok := kindNames[KindOf(err)]; ok {
		return n
	}
	return kindNames[KindSystem]
}

// KindByName is the kind a wire name stands for; a name it does not know
// (a newer peer's) is KindSystem.
func KindByName(name string) Kind {
	for k, n := range kindNames {
		if n == name {
			return k
		}
	}
	return KindSystem
}
