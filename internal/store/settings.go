package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ProjectSettings is a project's row of settings-page overrides. Data is the
// settings package's JSON; the store does not look inside.
type ProjectSettings struct {
	Instance  string
	ProjectID int64
	Data      []byte
	// Version counts saves: 1 after the first. A form carries the version
	// it was rendered from, and a save from an older one is refused.
	Version   int64
	UpdatedBy string
	UpdatedAt time.Time
}

// ErrSettingsChanged is wrapped by the *SettingsConflictError of a save
// whose form was rendered from an older version.
var ErrSettingsChanged = errors.New("the settings were changed meanwhile")

// SettingsConflictError says who saved the settings since the form was
// rendered.
type SettingsConflictError struct {
	Current ProjectSettings
}

func (e *SettingsConflictError) Error() string {
	by := e.Current.UpdatedBy
	if by == "" {
		by = "someone"
	}
	return fmt.Sprintf("the settings were changed by %s meanwhile (at %s, now version %d); nothing was saved — review their change and save again",
		by, e.Current.UpdatedAt.UTC().Format("2006-01-02 15:04:05 UTC"), e.Current.Version)
}

func (e *SettingsConflictError) Unwrap() error { return ErrSettingsChanged }

// ProjectSettings loads a project's settings; found is false when none were
// ever saved.
func (s *Store) ProjectSettings(ctx context.Context, instance string, projectID int64) (ProjectSettings, bool, error) {
	ps, err := s.projectSettings(ctx, s.read, instance, projectID)
	if isNoRows(err) {
		return ProjectSettings{Instance: instance, ProjectID: projectID}, false, nil
	}
	if err != nil {
		return ProjectSettings{}, false, fmt.Errorf("load settings of project %d on %s: %w", projectID, instance, err)
	}
	return ps, true, nil
}

type queryRower interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *Store) projectSettings(ctx context.Context, q queryRower, instance string, projectID int64) (ProjectSettings, error) {
	ps := ProjectSettings{Instance: instance, ProjectID: projectID}
	var data string
	var at int64
	err := q.QueryRowContext(ctx, s.q(`SELECT settings, version, updated_by, updated_at FROM project_settings
		WHERE instance = ? AND project_id = ?`), instance, projectID).Scan(&data, &ps.Version, &ps.UpdatedBy, &at)
	if err != nil {
		return ProjectSettings{}, err
	}
	ps.Data, ps.UpdatedAt = []byte(data), fromMicros(at)
	return ps, nil
}

// SettingsChange is one save of a project's settings.
type SettingsChange struct {
	Instance  string
	ProjectID int64
	Data      []byte
	// Actor is who saved, as in the audit log.
	Actor string
	// Detail says what changed, for the audit log.
	Detail string
	// ExpectedVersion is the version the form was rendered from (0 when
	// the project had no settings).
	ExpectedVersion int64
	At              time.Time // defaults to now
}

// SaveProjectSettings stores new settings if the stored version is still
// ExpectedVersion, and appends a settings.change entry to the audit log in
// the same transaction. Otherwise nothing is written and the error is a
// *SettingsConflictError (errors.Is ErrSettingsChanged). It returns the row
// as saved.
func (s *Store) SaveProjectSettings(ctx context.Context, c SettingsChange) (ProjectSettings, error) {
	if c.At.IsZero() {
		c.At = time.Now()
	}
	saved := ProjectSettings{Instance: c.Instance, ProjectID: c.ProjectID, Data: c.Data, Version: c.ExpectedVersion + 1,
		UpdatedBy: c.Actor, UpdatedAt: fromMicros(micros(c.At))}
	var conflict *SettingsConflictError
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var res sql.Result
		var err error
		if c.ExpectedVersion == 0 {
			res, err = tx.ExecContext(ctx, s.q(`INSERT INTO project_settings (instance, project_id, settings, version, updated_by, updated_at)
				VALUES (?, ?, ?, 1, ?, ?) ON CONFLICT (instance, project_id) DO NOTHING`),
				c.Instance, c.ProjectID, string(c.Data), c.Actor, micros(c.At))
		} else {
			res, err = tx.ExecContext(ctx, s.q(`UPDATE project_settings SET settings = ?, version = version + 1, updated_by = ?, updated_at = ?
				WHERE instance = ? AND project_id = ? AND version = ?`),
				string(c.Data), c.Actor, micros(c.At), c.Instance, c.ProjectID, c.ExpectedVersion)
		}
		if err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return fmt.Errorf("save settings: %w", err)
		}
		if n == 0 {
			current, err := s.projectSettings(ctx, tx, c.Instance, c.ProjectID)
			if isNoRows(err) {
				// The form expected a version that no longer exists: only
				// possible if the row was deleted by hand.
				current = ProjectSettings{Instance: c.Instance, ProjectID: c.ProjectID}
			} else if err != nil {
				return fmt.Errorf("save settings: %w", err)
			}
			conflict = &SettingsConflictError{Current: current}
			return conflict
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO audit_log (instance, project_id, actor, action, detail, at)
			VALUES (?, ?, ?, ?, ?, ?)`), c.Instance, c.ProjectID, c.Actor, "settings.change", c.Detail, micros(c.At)); err != nil {
			return fmt.Errorf("save settings: audit entry: %w", err)
		}
		return nil
	})
	if err != nil {
		return ProjectSettings{}, err
	}
	return saved, nil
}

// ProjectConfig is the config file the planner last read on a project's
// default branch.
type ProjectConfig struct {
	Instance  string
	ProjectID int64
	Ref       string
	SHA       string
	File      string
	Content   []byte
	// RepoFiles are the repository's top-level files at SHA, which Packit's
	// defaults depend on (the spec file).
	RepoFiles []string
	SeenAt    time.Time
}

// RecordProjectConfig keeps c as the project's latest default-branch config.
func (s *Store) RecordProjectConfig(ctx context.Context, c ProjectConfig) error {
	if c.SeenAt.IsZero() {
		c.SeenAt = time.Now()
	}
	files, err := json.Marshal(c.RepoFiles)
	if err != nil {
		return fmt.Errorf("record project config: %w", err)
	}
	_, err = s.write.ExecContext(ctx, s.q(`INSERT INTO project_configs (instance, project_id, ref, sha, file, content, repo_files, seen_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (instance, project_id) DO UPDATE SET ref = excluded.ref, sha = excluded.sha, file = excluded.file,
			content = excluded.content, repo_files = excluded.repo_files, seen_at = excluded.seen_at`),
		c.Instance, c.ProjectID, c.Ref, c.SHA, c.File, string(c.Content), string(files), micros(c.SeenAt))
	if err != nil {
		return fmt.Errorf("record project config: %w", err)
	}
	return nil
}

// ProjectConfig loads the latest recorded default-branch config; found is
// false when the planner has not read one yet.
func (s *Store) ProjectConfig(ctx context.Context, instance string, projectID int64) (ProjectConfig, bool, error) {
	c := ProjectConfig{Instance: instance, ProjectID: projectID}
	var content, files string
	var at int64
	err := s.read.QueryRowContext(ctx, s.q(`SELECT ref, sha, file, content, repo_files, seen_at FROM project_configs
		WHERE instance = ? AND project_id = ?`), instance, projectID).Scan(&c.Ref, &c.SHA, &c.File, &content, &files, &at)
	if isNoRows(err) {
		return c, false, nil
	}
	if err != nil {
		return ProjectConfig{}, false, fmt.Errorf("load config of project %d on %s: %w", projectID, instance, err)
	}
	if err := json.Unmarshal([]byte(files), &c.RepoFiles); err != nil {
		return ProjectConfig{}, false, fmt.Errorf("load config of project %d on %s: %w", projectID, instance, err)
	}
	c.Content, c.SeenAt = []byte(content), fromMicros(at)
	return c, true, nil
}
