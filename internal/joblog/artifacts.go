package joblog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"upbuild.dev/upbuild/internal/blob"
	"upbuild.dev/upbuild/internal/store"
)

// Artifact is one file a job produced.
type Artifact struct {
	JobID int64
	// Name is the file name, one key segment (see blob.CheckName).
	Name string
	Size int64
	// SHA256 is the lowercase hex digest of the content.
	SHA256    string
	CreatedAt time.Time
}

// Artifacts records job artifacts in the database and keeps their content
// in a blob store, under "jobs/<job id>/<name>". It is safe for concurrent
// use.
type Artifacts struct {
	store *store.Store
	blobs blob.Store
}

// NewArtifacts returns artifact storage with records in st and content in blobs.
func NewArtifacts(st *store.Store, blobs blob.Store) *Artifacts {
	return &Artifacts{store: st, blobs: blobs}
}

func artifactKey(jobID int64, name string) string {
	return "jobs/" + strconv.FormatInt(jobID, 10) + "/" + name
}

// Save stores r as the job's artifact called name, replacing one of the
// same name. A name that is not a plain file name (blob.CheckName) is
// refused with an error matching blob.ErrBadKey.
func (a *Artifacts) Save(ctx context.Context, jobID int64, name string, r io.Reader) (Artifact, error) {
	if err := blob.CheckName(name); err != nil {
		return Artifact{}, fmt.Errorf("save artifact of job %d: %w", jobID, err)
	}
	key := artifactKey(jobID, name)
	size, sum, err := a.blobs.Put(ctx, key, r)
	if err != nil {
		return Artifact{}, fmt.Errorf("save artifact %q of job %d: %w", name, jobID, err)
	}
	art := Artifact{JobID: jobID, Name: name, Size: size, SHA256: sum, CreatedAt: time.Now().UTC().Truncate(time.Microsecond)}
	if _, err := a.store.WriteDB().ExecContext(ctx, a.store.Rebind(`INSERT INTO job_artifacts (job_id, name, blob_key, size, sha256, created_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (job_id, name) DO UPDATE SET blob_key = excluded.blob_key, size = excluded.size,
		sha256 = excluded.sha256, created_at = excluded.created_at`),
		jobID, name, key, size, sum, art.CreatedAt.UnixMicro()); err != nil {
		return Artifact{}, fmt.Errorf("record artifact %q of job %d: %w", name, jobID, err)
	}
	return art, nil
}

// List returns a job's artifacts sorted by name.
func (a *Artifacts) List(ctx context.Context, jobID int64) ([]Artifact, error) {
	rows, err := a.store.ReadDB().QueryContext(ctx, a.store.Rebind(`SELECT name, size, sha256, created_at FROM job_artifacts
		WHERE job_id = ?`), jobID)
	if err != nil {
		return nil, fmt.Errorf("list artifacts of job %d: %w", jobID, err)
	}
	defer rows.Close()
	var out []Artifact
	for rows.Next() {
		art := Artifact{JobID: jobID}
		var created int64
		if err := rows.Scan(&art.Name, &art.Size, &art.SHA256, &created); err != nil {
			return nil, fmt.Errorf("list artifacts of job %d: %w", jobID, err)
		}
		art.CreatedAt = time.UnixMicro(created).UTC()
		out = append(out, art)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list artifacts of job %d: %w", jobID, err)
	}
	// Sorted here: the database's collation need not order names bytewise.
	slices.SortFunc(out, func(x, y Artifact) int { return strings.Compare(x.Name, y.Name) })
	return out, nil
}

// Open returns an artifact's content; the caller closes it. A missing
// artifact (or one whose content is gone) is ErrNotFound.
func (a *Artifacts) Open(ctx context.Context, jobID int64, name string) (io.ReadCloser, Artifact, error) {
	art := Artifact{JobID: jobID, Name: name}
	var key string
	var created int64
	err := a.store.ReadDB().QueryRowContext(ctx, a.store.Rebind(`SELECT blob_key, size, sha256, created_at FROM job_artifacts
		WHERE job_id = ? AND name = ?`), jobID, name).Scan(&key, &art.Size, &art.SHA256, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, Artifact{}, fmt.Errorf("artifact %q of job %d: %w", name, jobID, ErrNotFound)
	}
	if err != nil {
		return nil, Artifact{}, fmt.Errorf("open artifact %q of job %d: %w", name, jobID, err)
	}
	art.CreatedAt = time.UnixMicro(created).UTC()
	rc, _, err := a.blobs.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, Artifact{}, fmt.Errorf("artifact %q of job %d: content missing: %w", name, jobID, ErrNotFound)
	}
	if err != nil {
		return nil, Artifact{}, fmt.Errorf("open artifact %q of job %d: %w", name, jobID, err)
	}
	return rc, art, nil
}

// Prune deletes the artifacts of jobs that finished more than olderThan ago
// and returns how many it deleted. The content goes first and the record
// second, so an interrupted prune leaves records that the next one finishes.
func (a *Artifacts) Prune(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan).UnixMicro()
	pruned := 0
	for {
		ids, err := finishedJobsWith(ctx, a.store, "job_artifacts", cutoff)
		if err != nil || len(ids) == 0 {
			return pruned, err
		}
		for _, id := range ids {
			n, err := a.deleteJobArtifacts(ctx, id)
			pruned += n
			if err != nil {
				return pruned, err
			}
		}
	}
}

func (a *Artifacts) deleteJobArtifacts(ctx context.Context, jobID int64) (int, error) {
	rows, err := a.store.ReadDB().QueryContext(ctx, a.store.Rebind(`SELECT name, blob_key FROM job_artifacts WHERE job_id = ?`), jobID)
	if err != nil {
		return 0, fmt.Errorf("prune artifacts of job %d: %w", jobID, err)
	}
	type record struct{ name, key string }
	var records []record
	for rows.Next() {
		var r record
		if err := rows.Scan(&r.name, &r.key); err != nil {
			rows.Close()
			return 0, fmt.Errorf("prune artifacts of job %d: %w", jobID, err)
		}
		records = append(records, r)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("prune artifacts of job %d: %w", jobID, err)
	}
	deleted := 0
	for _, r := range records {
		if err := a.blobs.Delete(ctx, r.key); err != nil {
			return deleted, fmt.Errorf("prune artifact %q of job %d: %w", r.name, jobID, err)
		}
		if _, err := a.store.WriteDB().ExecContext(ctx, a.store.Rebind(`DELETE FROM job_artifacts WHERE job_id = ? AND name = ?`),
			jobID, r.name); err != nil {
			return deleted, fmt.Errorf("prune artifact %q of job %d: %w", r.name, jobID, err)
		}
		deleted++
	}
	return deleted, nil
}
