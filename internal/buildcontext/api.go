// Package buildcontext is a build's view of its context (the directory or
// tar a client sends) and the file copies COPY and ADD make from it or from
// another image's root filesystem.
//
//   - context.go: Context (FromDir, FromTar), .dockerignore (Excluded),
//     source patterns (Sources, ExpandSources);
//   - hashcache.go: Checksum and the HashCache that keeps content hashes
//     between builds (bbolt bucket buildcontext.hashes.v1);
//   - copy.go: WriteLayer and WriteFileLayer, the layer tar of a COPY/ADD
//     with Docker's rules;
//   - walk.go, fs.go: the confined tree walk and path resolution they share.
//
// Every read is confined to its root: paths are resolved with
// openat2(RESOLVE_IN_ROOT), trees are walked through directory descriptors
// with O_NOFOLLOW, so no symlink in a context or an image leads outside it.
package buildcontext
