// Package jobfs reads and writes files in a job's directory on the host.
//
// What that directory holds is decided by others: the repository's content
// (a committed symlink is checked out as a symlink) and the code the
// repository runs in the sandbox, which may replace any file there with a
// symlink to a host path or a named pipe. upbuild itself runs as root, so
// it must never follow a path out of the directory, and never open anything
// but a regular file, which could block it forever. A Dir does neither: it
// works through an os.Root (symlinks are followed only while they stay
// inside, never when absolute), opens without blocking and checks the file
// type of what it opened. And it never writes into a file that is already
// there: the work tree's object files are hard links to the repository
// cache's, read-only to the job but not to root, and the job can move one
// to any name upbuild is about to write. Writes go to a new file that is
// then renamed over the name.
package jobfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// Sentinel errors; check them with errors.Is.
var (
	// ErrNotRegular means the name is a directory, a named pipe, a device
	// or a socket, not a regular file.
	ErrNotRegular = errors.New("not a regular file")
	// ErrOutside means a host path given to a Dir is not beneath it.
	ErrOutside = errors.New("outside the job directory")
	// ErrTooLarge means a file is larger than the limit it was read with.
	ErrTooLarge = errors.New("file too large")
)

// Dir is one job directory on the host.
type Dir struct {
	root *os.Root
	path string
}

// Open opens the directory at path, which must exist.
func Open(path string) (*Dir, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("jobfs: %w", err)
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, fmt.Errorf("jobfs: %w", err)
	}
	return &Dir{root: root, path: abs}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return d.root.Close() }

// Path is the directory's host path.
func (d *Dir) Path() string { return d.path }

// rel turns a host path beneath the directory, or a path relative to it,
// into the name os.Root wants.
func (d *Dir) rel(name string) (string, error) {
	if !filepath.IsAbs(name) {
		return filepath.Clean(name), nil
	}
	rel, err := filepath.Rel(d.path, filepath.Clean(name))
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return "", fmt.Errorf("%s: %w %s", name, ErrOutside, d.path)
	}
	return rel, nil
}

// Open opens a regular file for reading.
func (d *Dir) Open(name string) (*os.File, error) {
	return d.openRegular(name)
}

// Create returns a new file that replaces name when it is closed with
// Commit. It never opens what is at name: that may be a hard link the job
// moved there, to a file it cannot write but root can (the repository
// cache's object files are linked into the work tree), and root would
// overwrite the other file too. A new file renamed over name replaces only
// the directory entry.
func (d *Dir) Create(name string, perm os.FileMode) (*NewFile, error) {
	rel, err := d.rel(name)
	if err != nil {
		return nil, err
	}
	for range 10 {
		tmp := filepath.Join(filepath.Dir(rel), fmt.Sprintf(".upbuild-new-%d", rand.Uint64()))
		f, err := d.root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &NewFile{File: f, d: d, tmp: tmp, dest: rel}, nil
	}
	return nil, fmt.Errorf("%s: no free temporary name", name)
}

// NewFile is a file being written for Dir.Create.
type NewFile struct {
	*os.File
	d         *Dir
	tmp, dest string
}

// Commit closes the file and puts it in place.
func (n *NewFile) Commit() error {
	if err := n.File.Close(); err != nil {
		return errors.Join(err, n.d.root.Remove(n.tmp))
	}
	if err := n.d.root.Rename(n.tmp, n.dest); err != nil {
		return errors.Join(err, n.d.root.Remove(n.tmp))
	}
	return nil
}

// Abort closes and removes the file; name is left as it was.
func (n *NewFile) Abort() error {
	return errors.Join(n.File.Close(), n.d.root.Remove(n.tmp))
}

// openRegular opens for reading without blocking (a named pipe with no
// one at the other end would otherwise hold the caller forever) and
// refuses anything that turns out not to be a regular file.
func (d *Dir) openRegular(name string) (*os.File, error) {
	rel, err := d.rel(name)
	if err != nil {
		return nil, err
	}
	f, err := d.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if !info.Mode().IsRegular() {
		return nil, errors.Join(fmt.Errorf("%s: %w (%s)", name, ErrNotRegular, info.Mode().Type()), f.Close())
	}
	return f, nil
}

// ReadFile reads a regular file of at most limit bytes.
func (d *Dir) ReadFile(name string, limit int64) ([]byte, error) {
	f, err := d.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, ErrTooLarge, limit)
	}
	return data, nil
}

// WriteFile replaces name with a new file holding data (see Create).
func (d *Dir) WriteFile(name string, data []byte, perm os.FileMode) error {
	f, err := d.Create(name, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return errors.Join(err, f.Abort())
	}
	return f.Commit()
}

// CopyFile copies the regular file src to dst, both in the directory.
func (d *Dir) CopyFile(src, dst string) error {
	in, err := d.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := d.Create(dst, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		return errors.Join(err, out.Abort())
	}
	return out.Commit()
}

// MkdirAll makes a directory and its parents.
func (d *Dir) MkdirAll(name string, perm os.FileMode) error {
	rel, err := d.rel(name)
	if err != nil {
		return err
	}
	return d.root.MkdirAll(rel, perm)
}

// Regular lists the regular files beneath dir (a host path beneath the
// directory, or a path relative to it), as host paths, in lexical order.
// Symlinks are neither followed nor listed, and a dir that leads out of
// the directory lists nothing.
func (d *Dir) Regular(dir string) ([]string, error) {
	rel, err := d.rel(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	err = fs.WalkDir(d.root.FS(), filepath.ToSlash(rel), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if p == filepath.ToSlash(rel) {
				return err
			}
			return nil // an entry that went away or cannot be read is not listed
		}
		if e.Type().IsRegular() {
			out = append(out, filepath.Join(d.path, filepath.FromSlash(p)))
		}
		return nil
	})
	return out, err
}

// Remove removes a file or an empty directory (a symlink itself, never
// what it points at).
func (d *Dir) Remove(name string) error {
	rel, err := d.rel(name)
	if err != nil {
		return err
	}
	return d.root.Remove(rel)
}
