// Package blob stores artifacts as named blobs behind one interface, with two
// implementations:
//
//   - FS keeps each blob as a file under a root directory. Use it when the
//     web node and every worker share one machine (the SQLite setup, or a
//     PostgreSQL setup on a single host): it is the fastest and serves large
//     files without touching the database.
//   - DB keeps blobs in the upbuild database in 1 MiB chunks. Use it when
//     workers run on other machines than the web node (PostgreSQL across
//     hosts): whatever a worker stores is then readable from every node.
//
// Keys are slash-separated paths such as "jobs/123/hello-1.0-1.src.rpm".
// Every implementation refuses keys that could escape their namespace (see
// CheckKey), so a hostile artifact name cannot reach another job's files or
// anything outside the store.
package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
	"time"
	"unicode/utf8"
)

// Errors a Store reports; check them with errors.Is.
var (
	// ErrNotFound: no blob has this key.
	ErrNotFound = errors.New("blob not found")
	// ErrBadKey: the key or name is not acceptable (see CheckKey).
	ErrBadKey = errors.New("bad blob key")
)

// Info describes a stored blob.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store holds blobs by key. Implementations are safe for concurrent use.
type Store interface {
	// Put stores everything r yields under key, replacing any earlier blob
	// with that key only once the new one is complete: a reader sees the old
	// content or the new, never a part. It returns the size and the
	// lowercase hex SHA-256 of the content.
	Put(ctx context.Context, key string, r io.Reader) (size int64, sha256 string, err error)
	// Open returns the blob's content; the caller closes it.
	Open(ctx context.Context, key string) (io.ReadCloser, Info, error)
	// Delete removes the blob. Deleting a missing blob is not an error, so
	// an interrupted clean-up can simply run again.
	Delete(ctx context.Context, key string) error
	// List returns the blobs whose keys start with prefix, sorted by key.
	List(ctx context.Context, prefix string) ([]Info, error)
}

// Limits on keys. A segment is one file name on the filesystem store, where
// 255 bytes is the usual limit.
const (
	maxKeyLen     = 1024
	maxSegmentLen = 255
)

// CheckKey returns nil if key is acceptable: one or more non-empty segments
// separated by "/", none of them "." or ".." or starting with "." (the
// filesystem store's temporary files do), valid UTF-8 without control
// characters (NUL included) or backslashes, no leading or trailing "/", and
// at most 1024 bytes with segments of at most 255. Keys are refused rather
// than cleaned, so two different names never end up on the same blob.
func CheckKey(key string) error {
	if key == "" || len(key) > maxKeyLen {
		return fmt.Errorf("%w: %q must be 1 to %d bytes", ErrBadKey, key, maxKeyLen)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if err := CheckName(seg); err != nil {
			return fmt.Errorf("%w: key %q has a bad segment", ErrBadKey, key)
		}
	}
	return nil
}

// CheckName returns nil if name is acceptable as one segment of a key: the
// rules of CheckKey, and no "/".
func CheckName(name string) error {
	switch {
	case name == "" || len(name) > maxSegmentLen:
		return fmt.Errorf("%w: name %q must be 1 to %d bytes", ErrBadKey, name, maxSegmentLen)
	case strings.HasPrefix(name, "."):
		return fmt.Errorf("%w: name %q starts with a dot", ErrBadKey, name)
	case !utf8.ValidString(name):
		return fmt.Errorf("%w: name %q is not valid UTF-8", ErrBadKey, name)
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '/' || r == '\\' {
			return fmt.Errorf("%w: name %q contains %q", ErrBadKey, name, r)
		}
	}
	return nil
}

// hashingReader counts and hashes what passes through it, and stops when
// the context ends so a Put of an endless stream can be abandoned.
type hashingReader struct {
	ctx  context.Context
	r    io.Reader
	hash hash.Hash
	n    int64
}

func newHashingReader(ctx context.Context, r io.Reader) *hashingReader {
	return &hashingReader{ctx: ctx, r: r, hash: sha256.New()}
}

func (h *hashingReader) Read(p []byte) (int, error) {
	if err := h.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := h.r.Read(p)
	h.hash.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (h *hashingReader) sum() string { return hex.EncodeToString(h.hash.Sum(nil)) }
