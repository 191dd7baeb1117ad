package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/store"
	"upbuild.dev/upbuild/internal/testdb"
)

// eachStore runs fn against the filesystem store and the database store on
// each engine. The database store uses small chunks so that multi-chunk
// blobs stay small in tests.
func eachStore(t *testing.T, fn func(t *testing.T, s blob.Store)) {
	t.Run("fs", func(t *testing.T) { fn(t, blob.FS{Root: filepath.Join(t.TempDir(), "blobs")}) })
	t.Run("db", func(t *testing.T) {
		testdb.Each(t, func(t *testing.T, dbURL string) {
			fn(t, blob.DB{Store: openStore(t, dbURL), ChunkSize: 1000})
		})
	})
}

func openStore(t *testing.T, dbURL string) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return st
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readAll(t *testing.T, s blob.Store, key string) ([]byte, blob.Info) {
	t.Helper()
	rc, info, err := s.Open(context.Background(), key)
	if err != nil {
		t.Fatalf("open %q: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return b, info
}

func TestPutOpenListDeleteRoundTrip(t *testing.T) {
	eachStore(t, func(t *testing.T, s blob.Store) {
		ctx := context.Background()
		contents := map[string][]byte{
			"jobs/12/hello-1.0-1.src.rpm": bytes.Repeat([]byte("rpm\x00\xff"), 1001), // several chunks, binary
			"jobs/12/empty.txt":           {},
			"jobs/123/other.txt":          []byte("another job"),
			"jobs/12/ünïcode name.log":    []byte("exactly one thousand?"),
		}
		for key, want := range contents {
			size, sum, err := s.Put(ctx, key, bytes.NewReader(want))
			if err != nil {
				t.Fatalf("put %q: %v", key, err)
			}
			if size != int64(len(want)) || sum != sha(want) {
				t.Fatalf("put %q = %d %s, want %d %s", key, size, sum, len(want), sha(want))
			}
		}
		for key, want := range contents {
			got, info := readAll(t, s, key)
			if !bytes.Equal(got, want) || info.Size != int64(len(want)) || info.Key != key {
				t.Fatalf("open %q: %d bytes, info %+v; want %d bytes", key, len(got), info, len(want))
			}
		}
		list, err := s.List(ctx, "jobs/12/")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, info := range list {
			keys = append(keys, info.Key)
		}
		want := "jobs/12/empty.txt jobs/12/hello-1.0-1.src.rpm jobs/12/ünïcode name.log"
		if strings.Join(keys, " ") != want {
			t.Fatalf("list jobs/12/ = %q, want %q", keys, want)
		}

		// Replacing a blob serves the new content only.
		if _, _, err := s.Put(ctx, "jobs/123/other.txt", strings.NewReader("replaced")); err != nil {
			t.Fatal(err)
		}
		if got, _ := readAll(t, s, "jobs/123/other.txt"); string(got) != "replaced" {
			t.Fatalf("after replace: %q", got)
		}

		for _, key := range []string{"jobs/123/other.txt", "jobs/123/other.txt"} { // twice: deleting a missing blob is fine
			if err := s.Delete(ctx, key); err != nil {
				t.Fatalf("delete %q: %v", key, err)
			}
		}
		if _, _, err := s.Open(ctx, "jobs/123/other.txt"); !errors.Is(err, blob.ErrNotFound) {
			t.Fatalf("open after delete: %v, want ErrNotFound", err)
		}
		if list, err := s.List(ctx, "jobs/123/"); err != nil || len(list) != 0 {
			t.Fatalf("list after delete: %v %v", list, err)
		}
		if list, err := s.List(ctx, ""); err != nil || len(list) != 3 {
			t.Fatalf("list everything: %v %v", list, err)
		}
	})
}

func TestFailedPutKeepsThePreviousBlob(t *testing.T) {
	eachStore(t, func(t *testing.T, s blob.Store) {
		ctx := context.Background()
		if _, _, err := s.Put(ctx, "jobs/1/a.rpm", strings.NewReader("good")); err != nil {
			t.Fatal(err)
		}
		broken := io.MultiReader(strings.NewReader(strings.Repeat("x", 2500)), errReader{})
		if _, _, err := s.Put(ctx, "jobs/1/a.rpm", broken); !errors.Is(err, errBroken) {
			t.Fatalf("put from a failing reader: %v", err)
		}
		if got, _ := readAll(t, s, "jobs/1/a.rpm"); string(got) != "good" {
			t.Fatalf("after a failed put: %q", got)
		}
		if list, err := s.List(ctx, "jobs/"); err != nil || len(list) != 1 {
			t.Fatalf("a failed put left something listed: %+v %v", list, err)
		}
	})
}

var errBroken = errors.New("the pipe broke")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

func TestHostileKeysAreRefused(t *testing.T) {
	hostile := []string{
		"", "..", "../etc/passwd", "jobs/../../etc/passwd", "jobs/1/..", "/etc/passwd", "jobs//1", "jobs/1/",
		"jobs/1/./a", "jobs/1/.hidden", "jobs/1/a\x00b", "jobs\\1\\a", "..\\..\\a", "jobs/1/a\nb", "jobs/1/a\rb",
		"jobs/1/\x1b[31mred", "jobs/1/\x7f", "jobs/1/\xff\xfe", "jobs/1/\u0085", strings.Repeat("a", 256),
		strings.Repeat("a/", 600) + "a",
	}
	eachStore(t, func(t *testing.T, s blob.Store) {
		ctx := context.Background()
		for _, key := range hostile {
			if _, _, err := s.Put(ctx, key, strings.NewReader("x")); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("put %q: %v, want ErrBadKey", key, err)
			}
			if _, _, err := s.Open(ctx, key); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("open %q: %v, want ErrBadKey", key, err)
			}
			if err := s.Delete(ctx, key); !errors.Is(err, blob.ErrBadKey) {
				t.Errorf("delete %q: %v, want ErrBadKey", key, err)
			}
		}
		if list, err := s.List(ctx, ""); err != nil || len(list) != 0 {
			t.Fatalf("hostile keys stored something: %+v %v", list, err)
		}
	})
}

func TestFSStaysInsideItsRoot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	outside := filepath.Join(dir, "outside")
	if err := os.Mkdir(outside, 0o700); err != nil {
		t.Fatal(err)
	}
	s := blob.FS{Root: filepath.Join(dir, "blobs")}
	if _, _, err := s.Put(ctx, "jobs/1/a", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	// A symbolic link planted in the store must not lead out of it.
	if err := os.Symlink(outside, filepath.Join(dir, "blobs", "jobs", "2")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Put(ctx, "jobs/2/escaped", strings.NewReader("x")); err == nil {
		t.Fatal("put through a symlink to outside the root succeeded")
	}
	if entries, err := os.ReadDir(outside); err != nil || len(entries) != 0 {
		t.Fatalf("outside the root: %v %v", entries, err)
	}
}
