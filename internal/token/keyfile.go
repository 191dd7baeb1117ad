package token

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrInsecureKeyFile reports a key file that group or others may access, or
// that is not a regular file. Fix it with chmod 600.
var ErrInsecureKeyFile = errors.New("token: key file is not private")

const (
	keyFileMode = 0o600
	keyDirMode  = 0o700
	// maxKeyFileSize bounds what is read; a real key file is about 150 bytes.
	maxKeyFileSize = 64 << 10
	keyFileHeader  = "# upbuild service keys for webhook tokens: <key id> <base64 secret>, primary first.\n" +
		"# Anyone who reads this file can forge tokens. Keep it mode 0600.\n"
)

// LoadOrCreateKeyring reads the keyring from the key file at path, or, when
// there is no such file, creates it (mode 0600, in a directory created with
// mode 0700 if missing) holding one new key; created says which happened. A
// key file that group or others may access is refused with
// ErrInsecureKeyFile. Two processes starting at once end up with the same key.
func LoadOrCreateKeyring(path string) (ring *Keyring, created bool, err error) {
	ring, err = readKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return ring, false, err
	}
	if err := os.MkdirAll(filepath.Dir(path), keyDirMode); err != nil {
		return nil, false, fmt.Errorf("token: creating the key directory: %w", err)
	}
	key, err := GenerateKey()
	if err != nil {
		return nil, false, err
	}
	ring, err = NewKeyring(key)
	if err != nil {
		return nil, false, err
	}
	err = writeFileAtomically(path, formatKeyFile(ring), false)
	if errors.Is(err, fs.ErrExist) {
		// Another process created it first; use its key, not ours.
		ring, err = readKeyFile(path)
		return ring, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return ring, true, nil
}

// RotateKeyringFile makes a new primary key in the key file at path, keeps
// the old primary as the previous key and drops the key before it. The file
// is replaced atomically, mode 0600. Tokens issued with the dropped key stop
// verifying. Processes that loaded the old file keep using it until they
// reload; the key they issue with is still in the new file.
func RotateKeyringFile(path string) (newPrimary Key, err error) {
	old, err := readKeyFile(path)
	if err != nil {
		return Key{}, err
	}
	newPrimary, err = generateKeyNotIn(old)
	if err != nil {
		return Key{}, err
	}
	ring, err := NewKeyring(newPrimary, old.primary())
	if err != nil {
		return Key{}, err
	}
	if err := writeFileAtomically(path, formatKeyFile(ring), true); err != nil {
		return Key{}, err
	}
	return newPrimary, nil
}

// generateKeyNotIn makes a key whose id is not already in ring. Ids are 32
// random bits, so a second try is rare and a fifth would mean a broken RNG.
func generateKeyNotIn(ring *Keyring) (Key, error) {
	for range 4 {
		key, err := GenerateKey()
		if err != nil {
			return Key{}, err
		}
		if _, taken := ring.lookup(key.ID); !taken {
			return key, nil
		}
	}
	return Key{}, fmt.Errorf("%w: could not generate a key id not already in use", ErrBadKey)
}

// readKeyFile reads and parses a key file after checking it is private.
func readKeyFile(path string) (*Keyring, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token: reading the key file: %w", err)
	}
	defer f.Close() // read-only: a failing Close loses nothing
	info, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("token: reading the key file: %w", err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInsecureKeyFile, path)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o; run chmod 600 on it, and rotate the key if others may have read it",
			ErrInsecureKeyFile, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("token: reading the key file: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadKey, path, maxKeyFileSize)
	}
	ring, err := parseKeyFile(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ring, nil
}

// parseKeyFile parses the format described in the package comment. Its
// errors give line numbers, never line contents.
func parseKeyFile(data []byte) (*Keyring, error) {
	var keys []Key
	lines := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; lines.Scan(); n++ {
		line := strings.TrimSpace(lines.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("%w: line %d: want \"<key id> <base64 secret>\"", ErrBadKey, n)
		}
		secret, err := base64.StdEncoding.DecodeString(fields[1])
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: the secret is not standard base64", ErrBadKey, n)
		}
		keys = append(keys, Key{ID: fields[0], Secret: secret})
	}
	if err := lines.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadKey, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: no keys", ErrBadKey)
	}
	return NewKeyring(keys[0], keys[1:]...)
}

func formatKeyFile(ring *Keyring) []byte {
	var b bytes.Buffer
	b.WriteString(keyFileHeader)
	for _, key := range ring.keys {
		b.WriteString(key.ID + " " + base64.StdEncoding.EncodeToString(key.Secret) + "\n")
	}
	return b.Bytes()
}

// writeFileAtomically writes data to a temporary file next to path and then
// moves it into place, so that readers see the old file or the new one and
// never a part. With replace false it fails with fs.ErrExist if path exists.
func writeFileAtomically(path string, data []byte, replace bool) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("token: writing the key file: %w", err)
	}
	defer func() {
		// After a rename the name is gone; after a link it is a second name.
		if removeErr := os.Remove(tmp.Name()); removeErr != nil && !errors.Is(removeErr, fs.ErrNotExist) && err == nil {
			err = fmt.Errorf("token: removing the temporary key file: %w", removeErr)
		}
	}()
	if err := writeAndSync(tmp, data); err != nil {
		return fmt.Errorf("token: writing the key file: %w", err)
	}
	if replace {
		err = os.Rename(tmp.Name(), path)
	} else {
		err = os.Link(tmp.Name(), path) // unlike rename, refuses to replace
	}
	if err != nil {
		return fmt.Errorf("token: writing the key file: %w", err)
	}
	return syncDir(dir)
}

func writeAndSync(f *os.File, data []byte) error {
	// CreateTemp makes the file 0600 already; Chmod states the intent and
	// does not depend on that.
	err := errors.Join(f.Chmod(keyFileMode), writeAll(f, data), f.Sync())
	return errors.Join(err, f.Close())
}

func writeAll(f *os.File, data []byte) error {
	_, err := f.Write(data)
	return err
}

// syncDir makes the new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("token: syncing the key directory: %w", err)
	}
	if err := errors.Join(d.Sync(), d.Close()); err != nil {
		return fmt.Errorf("token: syncing the key directory: %w", err)
	}
	return nil
}
