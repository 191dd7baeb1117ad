package blob

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"syscall"
)

// FS stores each blob as a file under Root, at the path its key names. All
// access goes through an os.Root, so not even a symbolic link planted inside
// Root leads outside it. Writes go to a temporary file that is synced and
// then renamed over the key's path, and the directory is synced after the
// rename, so a crash leaves the old blob or the new one.
type FS struct {
	Root string
}

var _ Store = FS{}

const tmpPrefix = ".tmp-"

// openRoot opens the root directory, creating it first when create is set.
func (f FS) openRoot(create bool) (*os.Root, error) {
	if f.Root == "" {
		return nil, errors.New("blob store: no root directory configured")
	}
	if create {
		if err := os.MkdirAll(f.Root, 0o750); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	root, err := os.OpenRoot(f.Root)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	return root, nil
}

// Put implements Store.
func (f FS) Put(ctx context.Context, key string, r io.Reader) (size int64, sum string, err error) {
	if err := CheckKey(key); err != nil {
		return 0, "", err
	}
	root, err := f.openRoot(true)
	if err != nil {
		return 0, "", err
	}
	defer root.Close()
	dir := path.Dir(key)
	tmp, file, err := createTemp(root, dir)
	if err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	renamed := false
	defer func() {
		if !renamed {
			err = errors.Join(err, removeMissingOK(root, tmp))
		}
	}()
	hr := newHashingReader(ctx, r)
	_, copyErr := io.Copy(file, hr)
	if copyErr == nil {
		copyErr = file.Sync()
	}
	if err := errors.Join(copyErr, file.Close()); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	if err := root.Rename(tmp, key); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	renamed = true
	if err := syncDir(root, dir); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	return hr.n, hr.sum(), nil
}

// createTemp makes the directory and a new temporary file in it. A
// concurrent Delete may remove the directory once it is empty, between the
// two steps; then the directory is made again.
func createTemp(root *os.Root, dir string) (string, *os.File, error) {
	var b [12]byte
	for attempt := 0; ; attempt++ {
		if dir != "." {
			if err := root.MkdirAll(dir, 0o750); err != nil {
				return "", nil, err
			}
		}
		if _, err := rand.Read(b[:]); err != nil {
			return "", nil, err
		}
		name := path.Join(dir, tmpPrefix+hex.EncodeToString(b[:]))
		file, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, fs.ErrNotExist) && attempt < 3 {
			continue
		}
		return name, file, err
	}
}

func syncDir(root *os.Root, dir string) error {
	d, err := root.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func removeMissingOK(root *os.Root, name string) error {
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Open implements Store.
func (f FS) Open(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := CheckKey(key); err != nil {
		return nil, Info{}, err
	}
	if err := ctx.Err(); err != nil {
		return nil, Info{}, err
	}
	root, err := f.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Info{}, fmt.Errorf("open blob %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, err
	}
	defer root.Close()
	file, err := root.Open(key)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil, Info{}, fmt.Errorf("open blob %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open blob %q: %w", key, err)
	}
	st, err := file.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return nil, Info{}, errors.Join(fmt.Errorf("open blob %q: %w", key, err), file.Close())
	}
	return file, Info{Key: key, Size: st.Size(), ModTime: st.ModTime().UTC()}, nil
}

// Delete implements Store. Directories left empty are removed too, so
// pruned jobs leave nothing behind.
func (f FS) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	root, err := f.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer root.Close()
	if err := removeMissingOK(root, key); err != nil {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	for dir := path.Dir(key); dir != "."; dir = path.Dir(dir) {
		err := root.Remove(dir)
		if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) || errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("delete blob %q: remove empty directory: %w", key, err)
		}
	}
	return nil
}

// List implements Store.
func (f FS) List(ctx context.Context, prefix string) ([]Info, error) {
	start := "."
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		start = prefix[:i]
		if err := CheckKey(start); err != nil {
			return nil, err
		}
	}
	root, err := f.openRoot(false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer root.Close()
	var out []Info
	err = fs.WalkDir(root.FS(), start, func(name string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) && name == start {
			return fs.SkipAll
		}
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name != "." && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(name, prefix) {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out = append(out, Info{Key: name, Size: info.Size(), ModTime: info.ModTime().UTC()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
