package token_test

import (
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"upbuild.dev/upbuild/internal/token"
)

func assertMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.Mode().Perm(); got != want {
		t.Errorf("%s has mode %04o, want %04o", path, got, want)
	}
}

func TestLoadOrCreateKeyring(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "etc", "upbuild")
	path := filepath.Join(dir, "keys")

	ring, created, err := token.LoadOrCreateKeyring(path)
	if err != nil || !created {
		t.Fatalf("first LoadOrCreateKeyring = %v, created %v", err, created)
	}
	assertMode(t, path, 0o600)
	assertMode(t, dir, 0o700)
	tok := mustIssue(t, ring, 1, gtkProject)

	again, created, err := token.LoadOrCreateKeyring(path)
	if err != nil || created {
		t.Fatalf("second LoadOrCreateKeyring = %v, created %v", err, created)
	}
	if _, err := again.Verify(tok); err != nil {
		t.Fatalf("the reloaded keyring refuses a token of the created one: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("the key directory holds %d entries, want only the key file", len(entries))
	}
}

func TestLoadOrCreateKeyringConcurrently(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	const processes = 8
	rings := make([]*token.Keyring, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		wg.Go(func() { rings[i], _, errs[i] = token.LoadOrCreateKeyring(path) })
	}
	wg.Wait()
	for i := range processes {
		if errs[i] != nil {
			t.Fatalf("LoadOrCreateKeyring %d: %v", i, errs[i])
		}
	}
	// Whoever created the file, everyone must verify everyone's tokens.
	for i, issuer := range rings {
		tok := mustIssue(t, issuer, int64(i+1), gnomeGroup)
		for j, verifier := range rings {
			if _, err := verifier.Verify(tok); err != nil {
				t.Errorf("keyring %d refuses a token from keyring %d: %v", j, i, err)
			}
		}
	}
}

func TestKeyFileRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	first, _, err := token.LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	oldest := mustIssue(t, first, 1, gtkProject)

	newKey, err := token.RotateKeyringFile(path)
	if err != nil {
		t.Fatal(err)
	}
	assertMode(t, path, 0o600)
	second, created, err := token.LoadOrCreateKeyring(path)
	if err != nil || created {
		t.Fatalf("reload after rotation: %v, created %v", err, created)
	}
	if ids := second.KeyIDs(); len(ids) != 2 || ids[0] != newKey.ID || ids[1] != first.KeyIDs()[0] {
		t.Errorf("after rotation the ring holds %q, want [%s %s]", ids, newKey.ID, first.KeyIDs()[0])
	}
	if _, err := second.Verify(oldest); err != nil {
		t.Errorf("a token issued before the rotation no longer verifies: %v", err)
	}
	middle := mustIssue(t, second, 2, gtkProject)
	if c, err := second.Verify(middle); err != nil || c.KeyID != newKey.ID {
		t.Errorf("a token issued after the rotation: %+v, %v; want key %s", c, err, newKey.ID)
	}
	// A process that has not reloaded yet still verifies tokens the old ring issued.
	if _, err := first.Verify(oldest); err != nil {
		t.Errorf("the old ring refuses its own token: %v", err)
	}

	if _, err := token.RotateKeyringFile(path); err != nil {
		t.Fatal(err)
	}
	third, _, err := token.LoadOrCreateKeyring(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := third.Verify(oldest); !errors.Is(err, token.ErrUnknownKey) {
		t.Errorf("a token two rotations old: %v, want ErrUnknownKey", err)
	}
	if _, err := third.Verify(middle); err != nil {
		t.Errorf("a token one rotation old no longer verifies: %v", err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("rotation left %d entries in the directory, want only the key file", len(entries))
	}
}

func TestRotateMissingKeyFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if _, err := token.RotateKeyringFile(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RotateKeyringFile of a missing file: %v, want fs.ErrNotExist", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("RotateKeyringFile created %s", path)
	}
}

func TestKeyFileMustBePrivate(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys")
	if _, _, err := token.LoadOrCreateKeyring(path); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o640, 0o604, 0o620, 0o666} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		if _, _, err := token.LoadOrCreateKeyring(path); !errors.Is(err, token.ErrInsecureKeyFile) {
			t.Errorf("loading a key file with mode %04o: %v, want ErrInsecureKeyFile", mode, err)
		}
		if _, err := token.RotateKeyringFile(path); !errors.Is(err, token.ErrInsecureKeyFile) {
			t.Errorf("rotating a key file with mode %04o: %v, want ErrInsecureKeyFile", mode, err)
		}
	}
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, _, err := token.LoadOrCreateKeyring(path); err != nil {
		t.Errorf("a read-only private key file: %v", err)
	}
}

func TestKeyFileFormat(t *testing.T) {
	secretA := base64.StdEncoding.EncodeToString(keyA.Secret)
	secretB := base64.StdEncoding.EncodeToString(keyB.Secret)
	path := filepath.Join(t.TempDir(), "keys")
	content := "# written by hand\n\n" + keyB.ID + " " + secretB + "\n  " + keyA.ID + "\t" + secretA + "  \n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	ring, created, err := token.LoadOrCreateKeyring(path)
	if err != nil || created {
		t.Fatalf("LoadOrCreateKeyring = %v, created %v", err, created)
	}
	// The file's keys are the ones in use: a token from keyB verifies.
	if _, err := ring.Verify(mustIssue(t, mustKeyring(t, keyB), 1, gtkProject)); err != nil {
		t.Errorf("hand-written key file: %v", err)
	}
	if _, err := ring.Verify(mustIssue(t, mustKeyring(t, keyA), 1, gtkProject)); err != nil {
		t.Errorf("hand-written key file, previous key: %v", err)
	}
}

func TestKeyFileRefusesGarbage(t *testing.T) {
	secret := base64.StdEncoding.EncodeToString(keyA.Secret)
	short := base64.StdEncoding.EncodeToString(keyA.Secret[:16])
	for name, content := range map[string]string{
		"empty":           "",
		"comments only":   "# nothing here\n",
		"secret only":     secret + "\n",
		"secret first":    secret + " " + keyA.ID + "\n",
		"three fields":    keyA.ID + " " + secret + " extra\n",
		"not base64":      keyA.ID + " " + secret + "!\n",
		"short secret":    keyA.ID + " " + short + "\n",
		"three keys":      keyA.ID + " " + secret + "\n" + keyB.ID + " " + secret + "\n" + keyC.ID + " " + secret + "\n",
		"duplicate id":    keyA.ID + " " + secret + "\n" + keyA.ID + " " + secret + "\n",
		"upper-case id":   strings.ToUpper("abcdef01") + " " + secret + "\n",
		"url-safe base64": keyA.ID + " " + base64.URLEncoding.EncodeToString([]byte(strings.Repeat("\xff", 33))) + "\n",
	} {
		path := filepath.Join(t.TempDir(), "keys")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, _, err := token.LoadOrCreateKeyring(path)
		if !errors.Is(err, token.ErrBadKey) {
			t.Errorf("%s: LoadOrCreateKeyring = %v, want ErrBadKey", name, err)
			continue
		}
		assertNoLeak(t, err, secret, secret[:16], short)
		if _, err := token.RotateKeyringFile(path); !errors.Is(err, token.ErrBadKey) {
			t.Errorf("%s: RotateKeyringFile = %v, want ErrBadKey", name, err)
		}
		if got, err := os.ReadFile(path); err != nil || string(got) != content {
			t.Errorf("%s: a failed load or rotation changed the key file", name)
		}
	}
}

func TestKeyFileIsADirectory(t *testing.T) {
	path := t.TempDir()
	if err := os.Chmod(path, 0o700); err != nil {
		t.Fatal(err)
	}
	if _, _, err := token.LoadOrCreateKeyring(path); !errors.Is(err, token.ErrInsecureKeyFile) {
		t.Errorf("LoadOrCreateKeyring of a directory: %v, want ErrInsecureKeyFile", err)
	}
}
