package gitfetch

import (
	"compress/zlib"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// objectCounts is what a copy of an object store found: loose objects and
// packs. Each fetch into the cache adds some of either.
type objectCounts struct{ loose, packs int }

// Beyond these the cache is repacked after a checkout, so that each work
// tree's copy stays a few large files rather than many small ones. Fetches
// keep what they bring as one pack (keepPacks), so loose objects come only
// from the rare lazy fetch.
const (
	maxLooseObjects = 256
	maxPacks        = 24
)

func (n objectCounts) needRepack() bool { return n.loose > maxLooseObjects || n.packs > maxPacks }

// copyObjects gives a work tree the cache's object store (packs with their
// .promisor marks, loose objects, the commit graph). Each file is a hard
// link where the file system allows one, else a copy. git never changes an
// object file in place (it writes a new file and renames it), and the files
// stay upbuild's, read-only (0444): the sandbox hands the work tree to the
// job's own UID but leaves files with several links alone, so a job can
// read the cache's objects of its own project and write none of them.
// Temporary files of an interrupted git command (tmp_*, incoming-*) and
// alternates are left behind.
func copyObjects(src, dst string) (objectCounts, error) {
	var n objectCounts
	entries, err := os.ReadDir(src)
	if err != nil {
		return n, fmt.Errorf("copy objects: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if !e.IsDir() {
			continue
		}
		switch {
		case name == "pack":
			if _, err := copyDir(filepath.Join(src, name), filepath.Join(dst, name), func(file string) bool {
				if !strings.HasPrefix(file, "pack-") {
					return false
				}
				if strings.HasSuffix(file, ".pack") {
					n.packs++
				}
				for _, ext := range []string{".pack", ".idx", ".promisor", ".rev", ".bitmap"} {
					if strings.HasSuffix(file, ext) {
						return true
					}
				}
				return false
			}); err != nil {
				return n, err
			}
		case name == "info":
			if _, err := copyDir(filepath.Join(src, name), filepath.Join(dst, name), func(file string) bool {
				return strings.HasPrefix(file, "commit-graph")
			}); err != nil {
				return n, err
			}
			if _, err := copyDir(filepath.Join(src, name, "commit-graphs"), filepath.Join(dst, name, "commit-graphs"), func(file string) bool {
				return strings.HasPrefix(file, "graph-") || file == "commit-graph-chain"
			}); err != nil {
				return n, err
			}
		case len(name) == 2 && isHex(name):
			loose, err := copyDir(filepath.Join(src, name), filepath.Join(dst, name), func(file string) bool {
				return isHex(file)
			})
			if err != nil {
				return n, err
			}
			n.loose += loose
		}
	}
	return n, nil
}

// copyDir copies the regular files of src that keep accepts into dst,
// creating dst when there is one; a missing src copies nothing.
func copyDir(src, dst string, keep func(string) bool) (int, error) {
	entries, err := os.ReadDir(src)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("copy objects: %w", err)
	}
	copied := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !keep(e.Name()) {
			continue
		}
		if copied == 0 {
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return 0, fmt.Errorf("copy objects: %w", err)
			}
		}
		if err := linkOrCopy(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return 0, fmt.Errorf("copy objects: %w", err)
		}
		copied++
	}
	return copied, nil
}

// linkOrCopy links dst to src, or copies src read-only, as git keeps
// object files, when it cannot be linked (another file system, a file
// system without links). io.Copy between files uses copy_file_range, which
// lets the kernel (or a reflink-capable file system) do the work.
func linkOrCopy(src, dst string) (err error) {
	info, err := os.Lstat(src)
	if err != nil {
		return err
	}
	// git writes .promisor marks owner-writable; a linked file must be
	// read-only to everyone, the job's UID included.
	if info.Mode().Perm() != 0o444 {
		if err := os.Chmod(src, 0o444); err != nil {
			return err
		}
	}
	if os.Link(src, dst) == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

func isHex(s string) bool {
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return s != ""
}

// commit is a commit object to write.
type commit struct {
	tree     string
	parents  []string
	identity string // "Name <email>", author and committer
	when     time.Time
	message  string
}

// writeCommit stores c as a loose object in objectsDir and returns its
// name. It is what `git commit-tree` does, without the process: the
// object is "commit <size>\0" and the text below, zlib-compressed, under
// its SHA-1. The cache and the work trees are SHA-1 repositories (git
// init's default, which the cache is created with).
func writeCommit(objectsDir string, c commit) (string, error) {
	var body strings.Builder
	body.WriteString("tree " + c.tree + "\n")
	for _, p := range c.parents {
		body.WriteString("parent " + p + "\n")
	}
	stamp := strconv.FormatInt(c.when.Unix(), 10) + " +0000"
	body.WriteString("author " + c.identity + " " + stamp + "\n")
	body.WriteString("committer " + c.identity + " " + stamp + "\n\n")
	body.WriteString(strings.TrimRight(c.message, "\n") + "\n")
	object := "commit " + strconv.Itoa(body.Len()) + "\x00" + body.String()
	sum := sha1.Sum([]byte(object))
	oid := hex.EncodeToString(sum[:])
	dir := filepath.Join(objectsDir, oid[:2])
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("write the merge commit: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "tmp_obj_")
	if err != nil {
		return "", fmt.Errorf("write the merge commit: %w", err)
	}
	zw := zlib.NewWriter(tmp)
	_, err = io.WriteString(zw, object)
	err = errors.Join(err, zw.Close(), tmp.Chmod(0o444), tmp.Close())
	if err == nil {
		err = os.Rename(tmp.Name(), filepath.Join(dir, oid[2:]))
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("write the merge commit: %w", err), os.Remove(tmp.Name()))
	}
	return oid, nil
}
