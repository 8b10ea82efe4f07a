package image

import (
	"context"
	"fmt"
	"strings"

	"github.com/distribution/reference"
	bolt "go.etcd.io/bbolt"

	"github.com/skiff-dev/skiff/internal/errdefs"
	"github.com/skiff-dev/skiff/internal/meta"
)

// DeleteOptions steer Delete. The callbacks tell the store about
// containers, which it does not know; nil callbacks mean "no container".
type DeleteOptions struct {
	Force bool
	// NoPrune keeps untagged parent images (docker rmi --no-prune).
	NoPrune bool
	// InUse reports whether any container (running or not) uses the image.
	InUse func(imageID string) bool
	// UsedBy names a container that uses the image, for messages.
	UsedBy func(imageID string) string
	// Running names a running container that uses the image, or "".
	// Even Force cannot delete an image a running container uses.
	Running func(imageID string) string
}

// DeleteItem is one line of `docker rmi` output: an untagged reference
// (familiar form) or a deleted image id.
type DeleteItem struct {
	Untagged string
	Deleted  string
}

// Delete removes the reference or image refOrID with Docker's rules:
//   - a name untags; the image goes only with its last reference;
//   - an id removes the image with all its references when they are all of
//     one repository; otherwise it needs Force;
//   - an image a container uses is not deleted: without Force that is a
//     Conflict, with Force the reference is removed and the image kept
//     while it is used (a running container's image cannot be deleted even
//     by id with Force);
//   - deleting an image removes its layer snapshots and blobs that no other
//     image and no lease uses, then (unless NoPrune) its untagged parents
//     that no lease holds.
//
// Delete waits for no pull, import or build: they hold what they make in
// leases, not a lock (lease.go).
//
// The items done before an error are returned with it.
func (s *Store) Delete(ctx context.Context, refOrID string, opts DeleteOptions) ([]DeleteItem, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := &deleter{s: s, ctx: ctx, opts: opts}
	err := s.db.Update(func(tx *bolt.Tx) error {
		d.tx = tx
		return d.run(refOrID)
	})
	if err != nil {
		return nil, err
	}
	// The records are gone; now their files. A failure here leaves
	// garbage for GC, never a record without its files.
	for _, id := range d.deleted {
		s.configs.Delete(id)
	}
	if len(d.deleted) > 0 {
		if err := s.gcLocked(context.WithoutCancel(ctx)); err != nil {
			return d.items, fmt.Errorf("remove image files: %w", err)
		}
	}
	return d.items, nil
}

type deleter struct {
	s       *Store
	ctx     context.Context
	tx      *bolt.Tx
	opts    DeleteOptions
	items   []DeleteItem
	deleted []string
}

func (d *deleter) inUse(id string) bool { return d.opts.InUse != nil && d.opts.InUse(id) }

func (d *deleter) usedBy(id string) string {
	if d.opts.UsedBy != nil {
		if c := d.opts.UsedBy(id); c != "" {
			return ShortID(c)
		}
	}
	return "(unknown)"
}

func (d *deleter) running(id string) string {
	if d.opts.Running != nil {
		return ShortID(d.opts.Running(id))
	}
	return ""
}

func (d *deleter) run(refOrID string) error {
	id, err := resolve(d.tx, refOrID)
	if err != nil {
		return err
	}
	refs := parseRefs(refsOf(d.tx, id))
	quiet := false
	if !isIDPrefix(id, refOrID) {
		// A reference was given: remove it first.
		if !d.opts.Force && isSingleReference(refs) && d.inUse(id) {
			return errdefs.Conflict("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s",
				refOrID, d.usedBy(id), ShortID(id))
		}
		named, err := ParseReference(refOrID)
		if err != nil {
			return err
		}
		if err := d.untag(named); err != nil {
			return err
		}
		refs = parseRefs(refsOf(d.tx, id))
		// Untagging the last tag of a repository takes its digest
		// references with it.
		if _, canonical := named.(reference.Canonical); !canonical {
			otherTag := false
			for _, r := range refs {
				if _, c := r.(reference.Canonical); !c && r.Name() == named.Name() {
					otherTag = true
				}
			}
			if !otherTag {
				var rest []reference.Named
				for _, r := range refs {
					if _, c := r.(reference.Canonical); c && r.Name() == named.Name() {
						if err := d.untag(r); err != nil {
							return err
						}
						continue
					}
					rest = append(rest, r)
				}
				refs = rest
			}
		}
		if len(refs) > 0 {
			return nil
		}
		quiet = true
	} else if isSingleReference(refs) {
		// An id whose references are all of one repository: they go
		// with it, unless a container holds the image.
		if c := d.conflict(id, true, !d.opts.Force, false); c != nil {
			return c
		}
		for _, r := range refs {
			if err := d.untag(r); err != nil {
				return err
			}
		}
	}
	return d.deleteImage(id, d.opts.Force, quiet)
}

func (d *deleter) untag(r reference.Named) error {
	if err := d.tx.Bucket(bucketRefs).Delete([]byte(r.String())); err != nil {
		return fmt.Errorf("untag %s: %w", reference.FamiliarString(r), err)
	}
	d.items = append(d.items, DeleteItem{Untagged: reference.FamiliarString(r)})
	return nil
}

// conflict reports why id cannot be deleted: hard reasons (dependent child
// images, a running container) when hard is set; soft ones (remaining
// references when activeRefs is set, a stopped container) when soft is.
func (d *deleter) conflict(id string, hard, soft, activeRefs bool) error {
	short := ShortID(id)
	msg := func(forced bool, why string) error {
		how := "must be forced"
		if forced {
			how = "cannot be forced"
		}
		return errdefs.Conflict("conflict: unable to delete %s (%s) - %s", short, how, why)
	}
	if hard {
		if child := d.child(id); child != "" {
			return msg(true, "image has dependent child images")
		}
		if c := d.running(id); c != "" {
			return msg(true, "image is being used by running container "+c)
		}
	}
	if soft {
		if activeRefs && len(refsOf(d.tx, id)) > 0 {
			return msg(false, "image is referenced in multiple repositories")
		}
		if d.inUse(id) {
			return msg(false, "image is being used by stopped container "+d.usedBy(id))
		}
	}
	return nil
}

func (d *deleter) child(id string) string {
	var child string
	meta.ForEachJSON(d.tx, bucketImages, func(k string, r *record) error {
		if r.Parent == id {
			child = k
			return errStop
		}
		return nil
	})
	return child
}

// deleteImage removes id's references and record if nothing holds it.
// quiet: the caller already untagged what it was asked to, so a held image
// is simply kept.
func (d *deleter) deleteImage(id string, force, quiet bool) error {
	if err := d.conflict(id, true, !force, true); err != nil {
		if quiet {
			return nil
		}
		return err
	}
	if d.inUse(id) {
		// Forced: the references are gone, the image stays while used.
		for _, r := range parseRefs(refsOf(d.tx, id)) {
			if err := d.untag(r); err != nil {
				return err
			}
		}
		return nil
	}
	rec, err := getRecord(d.tx, id)
	if err != nil {
		return err
	}
	for _, r := range parseRefs(refsOf(d.tx, id)) {
		if err := d.untag(r); err != nil {
			return err
		}
	}
	if err := meta.Delete(d.tx, bucketImages, id); err != nil {
		return err
	}
	d.items = append(d.items, DeleteItem{Deleted: id})
	d.deleted = append(d.deleted, id)
	if d.opts.NoPrune || rec.Parent == "" {
		return nil
	}
	// Parents go too when nothing else names or holds them.
	if _, err := getRecord(d.tx, rec.Parent); err != nil {
		return nil
	}
	// A leased parent is a running build's intermediate image: the build
	// still makes its next step on it.
	if len(refsOf(d.tx, rec.Parent)) > 0 || d.child(rec.Parent) != "" || d.inUse(rec.Parent) || d.running(rec.Parent) != "" ||
		leasedImages(d.tx)[rec.Parent] {
		return nil
	}
	return d.deleteImage(rec.Parent, false, true)
}

func parseRefs(refs []string) []reference.Named {
	var out []reference.Named
	for _, r := range refs {
		if n, err := reference.ParseNormalizedNamed(r); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// isIDPrefix reports whether s names id by (a prefix of) its hex digits.
func isIDPrefix(id, s string) bool {
	if strings.HasPrefix(id, s) {
		return true
	}
	return strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), s)
}

// isSingleReference reports whether refs hold at most one tag and all are
// of one repository (Docker's rule for deleting by id without force).
func isSingleReference(refs []reference.Named) bool {
	if len(refs) <= 1 {
		return len(refs) == 1
	}
	var tagged reference.Named
	names := map[string]bool{}
	for _, r := range refs {
		if _, c := r.(reference.Canonical); c {
			names[r.Name()] = true
		} else if tagged == nil {
			names[r.Name()] = true
			tagged = r
		} else {
			return false
		}
	}
	if tagged == nil {
		tagged = refs[0]
	}
	return len(names) == 1 && names[tagged.Name()]
}
