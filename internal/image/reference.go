package image

import (
	"strings"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"

	"github.com/skiff-dev/skiff/internal/errdefs"
)

// ParseReference normalizes s as Docker does: "busybox" is
// docker.io/library/busybox:latest, "name@sha256:..." keeps its digest (and
// drops a tag given with it). A bad reference is an Invalid error with
// Docker's message.
func ParseReference(s string) (reference.Named, error) {
	named, err := reference.ParseNormalizedNamed(s)
	if err != nil {
		return nil, invalidReference(err)
	}
	if c, ok := named.(reference.Canonical); ok {
		if _, tagged := named.(reference.Tagged); tagged {
			// name:tag@digest means the digest.
			return reference.WithDigest(reference.TrimNamed(named), c.Digest())
		}
		return named, nil
	}
	return reference.TagNameOnly(named), nil
}

func invalidReference(err error) error {
	msg := err.Error()
	if !strings.HasPrefix(msg, "invalid reference format") {
		msg = "invalid reference format: " + msg
	}
	return errdefs.Invalid("%s", msg)
}

// parseTag parses a reference to create: it must be a name with a tag, not
// a digest.
func parseTag(s string) (reference.NamedTagged, error) {
	named, err := ParseReference(s)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Canonical); ok {
		return nil, errdefs.Invalid("refusing to create a tag with a digest reference")
	}
	if reference.FamiliarName(named) == string(digest.Canonical) {
		return nil, errdefs.Invalid("refusing to create an ambiguous tag using digest algorithm as name")
	}
	return named.(reference.NamedTagged), nil
}

// Familiar gives the short form of a stored reference for display:
// docker.io/library/busybox:latest is busybox:latest.
func Familiar(ref string) string {
	if n, err := reference.ParseNormalizedNamed(ref); err == nil {
		return reference.FamiliarString(n)
	}
	return ref
}

// ShortID is the 12 hex digits Docker shows for an id.
func ShortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func isHex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
