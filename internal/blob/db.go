package blob

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
	"unicode/utf8"

	"upbuild.dev/upbuild/internal/store"
)

// DefaultChunkSize is how much of a blob one row of the DB store holds.
const DefaultChunkSize = 1 << 20

// DB stores blobs in the upbuild database (tables blobs and blob_chunks), so
// that every node sharing the database can read what any worker stored.
//
// Each chunk is written in its own short transaction: a large upload never
// holds SQLite's single write lock for long. The chunks of a new upload sit
// under a fresh upload ID until one last transaction points the key at them
// and drops the previous version's chunks. A failed Put removes its chunks;
// one cut short by a crash leaves unreferenced chunks behind, which take
// space but are never served.
type DB struct {
	Store *store.Store
	// ChunkSize is the size of each stored chunk; 0 means DefaultChunkSize.
	ChunkSize int
}

var _ Store = DB{}

func (d DB) chunkSize() int {
	if d.ChunkSize > 0 {
		return d.ChunkSize
	}
	return DefaultChunkSize
}

// Put implements Store.
func (d DB) Put(ctx context.Context, key string, r io.Reader) (size int64, sum string, err error) {
	if err := CheckKey(key); err != nil {
		return 0, "", err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	uploadID := hex.EncodeToString(b[:])
	committed := false
	defer func() {
		if !committed {
			// The caller's context may be what ended the upload; the clean-up
			// still has to run.
			cleanCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			err = errors.Join(err, d.deleteChunks(cleanCtx, d.Store.WriteDB(), uploadID))
		}
	}()
	hr := newHashingReader(ctx, r)
	buf := make([]byte, d.chunkSize())
	insert := d.Store.Rebind(`INSERT INTO blob_chunks (upload_id, seq, data, created_at) VALUES (?, ?, ?, ?)`)
	for seq := int64(1); ; seq++ {
		n, readErr := io.ReadFull(hr, buf)
		if n > 0 {
			if _, err := d.Store.WriteDB().ExecContext(ctx, insert, uploadID, seq, buf[:n], time.Now().UnixMicro()); err != nil {
				return 0, "", fmt.Errorf("put blob %q: store chunk: %w", key, err)
			}
		}
		if errors.Is(readErr, io.EOF) || errors.Is(readErr, io.ErrUnexpectedEOF) {
			break
		}
		if readErr != nil {
			return 0, "", fmt.Errorf("put blob %q: %w", key, readErr)
		}
	}
	size, sum = hr.n, hr.sum()
	tx, err := d.Store.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var previous string
	switch err := tx.QueryRowContext(ctx, d.Store.Rebind(`SELECT upload_id FROM blobs WHERE blob_key = ?`), key).Scan(&previous); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	if _, err := tx.ExecContext(ctx, d.Store.Rebind(`INSERT INTO blobs (blob_key, upload_id, size, sha256, created_at)
		VALUES (?, ?, ?, ?, ?) ON CONFLICT (blob_key) DO UPDATE SET upload_id = excluded.upload_id, size = excluded.size,
		sha256 = excluded.sha256, created_at = excluded.created_at`), key, uploadID, size, sum, time.Now().UnixMicro()); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	if previous != "" {
		if err := d.deleteChunks(ctx, tx, previous); err != nil {
			return 0, "", fmt.Errorf("put blob %q: %w", key, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, "", fmt.Errorf("put blob %q: %w", key, err)
	}
	committed = true
	return size, sum, nil
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func (d DB) deleteChunks(ctx context.Context, db execer, uploadID string) error {
	if _, err := db.ExecContext(ctx, d.Store.Rebind(`DELETE FROM blob_chunks WHERE upload_id = ?`), uploadID); err != nil {
		return fmt.Errorf("delete blob chunks: %w", err)
	}
	return nil
}

// Open implements Store. The returned reader loads one chunk at a time with
// ctx, so it must not outlive ctx. If the blob is replaced or deleted while
// it is read, Read fails rather than returning a mix of versions.
func (d DB) Open(ctx context.Context, key string) (io.ReadCloser, Info, error) {
	if err := CheckKey(key); err != nil {
		return nil, Info{}, err
	}
	var uploadID string
	var created int64
	info := Info{Key: key}
	err := d.Store.ReadDB().QueryRowContext(ctx, d.Store.Rebind(`SELECT upload_id, size, created_at FROM blobs WHERE blob_key = ?`), key).
		Scan(&uploadID, &info.Size, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Info{}, fmt.Errorf("open blob %q: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, Info{}, fmt.Errorf("open blob %q: %w", key, err)
	}
	info.ModTime = time.UnixMicro(created).UTC()
	return &chunkReader{ctx: ctx, db: d, key: key, uploadID: uploadID, remaining: info.Size}, info, nil
}

type chunkReader struct {
	ctx       context.Context
	db        DB
	key       string
	uploadID  string
	nextSeq   int64
	remaining int64 // bytes not yet returned
	buf       []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.buf) == 0 {
		if c.remaining == 0 {
			return 0, io.EOF
		}
		c.nextSeq++
		err := c.db.Store.ReadDB().QueryRowContext(c.ctx, c.db.Store.Rebind(`SELECT data FROM blob_chunks WHERE upload_id = ? AND seq = ?`),
			c.uploadID, c.nextSeq).Scan(&c.buf)
		if errors.Is(err, sql.ErrNoRows) || (err == nil && (len(c.buf) == 0 || int64(len(c.buf)) > c.remaining)) {
			err = errors.New("the blob changed while it was read")
		}
		if err != nil {
			c.buf = nil
			return 0, fmt.Errorf("read blob %q: %w", c.key, err)
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.remaining -= int64(n)
	return n, nil
}

func (c *chunkReader) Close() error { return nil }

// Delete implements Store.
func (d DB) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	tx, err := d.Store.WriteDB().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	var uploadID string
	switch err := tx.QueryRowContext(ctx, d.Store.Rebind(`SELECT upload_id FROM blobs WHERE blob_key = ?`), key).Scan(&uploadID); {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	if _, err := tx.ExecContext(ctx, d.Store.Rebind(`DELETE FROM blobs WHERE blob_key = ?`), key); err != nil {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	if err := d.deleteChunks(ctx, tx, uploadID); err != nil {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("delete blob %q: %w", key, err)
	}
	return nil
}

// List implements Store. Keys are compared as strings in Go rather than by
// the database, whose collation may not order them bytewise.
func (d DB) List(ctx context.Context, prefix string) ([]Info, error) {
	rows, err := d.Store.ReadDB().QueryContext(ctx, d.Store.Rebind(`SELECT blob_key, size, created_at FROM blobs
		WHERE substr(blob_key, 1, ?) = ?`), utf8.RuneCountInString(prefix), prefix)
	if err != nil {
		return nil, fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	defer rows.Close()
	var out []Info
	for rows.Next() {
		var info Info
		var created int64
		if err := rows.Scan(&info.Key, &info.Size, &created); err != nil {
			return nil, fmt.Errorf("list blobs %q: %w", prefix, err)
		}
		info.ModTime = time.UnixMicro(created).UTC()
		out = append(out, info)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list blobs %q: %w", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
