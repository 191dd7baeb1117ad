-- +goose Up
-- Times are unix microseconds, UTC by definition, portable across both databases.
CREATE TABLE hook_tokens (
    id          INTEGER PRIMARY KEY,
    instance    TEXT    NOT NULL,
    scope_kind  TEXT    NOT NULL CHECK (scope_kind IN ('project', 'group')),
    scope_path  TEXT    NOT NULL,
    key_id      TEXT    NOT NULL,
    signing     INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    created_by  TEXT    NOT NULL DEFAULT '',
    revoked_at  INTEGER
);
CREATE INDEX hook_tokens_scope ON hook_tokens (instance, scope_path);

-- The numeric project IDs a token has authenticated, so that a renamed or
-- transferred project keeps working and a new project at an old path does not.
CREATE TABLE token_projects (
    token_id     INTEGER NOT NULL REFERENCES hook_tokens (id),
    project_id   INTEGER NOT NULL,
    project_path TEXT    NOT NULL,
    bound_at     INTEGER NOT NULL,
    PRIMARY KEY (token_id, project_id)
);

CREATE TABLE deliveries (
    id             INTEGER PRIMARY KEY,
    instance       TEXT    NOT NULL,
    project_id     INTEGER NOT NULL,
    project_path   TEXT    NOT NULL,
    event_header   TEXT    NOT NULL,
    event_kind     TEXT    NOT NULL,
    dedup_key      TEXT,
    headers        TEXT    NOT NULL,
    body           BLOB    NOT NULL,
    outcome        TEXT    NOT NULL CHECK (outcome IN ('accepted', 'ignored')),
    reason         TEXT    NOT NULL DEFAULT '',
    event          TEXT,
    token_id       INTEGER NOT NULL,
    received_at    INTEGER NOT NULL,
    repeat_count   INTEGER NOT NULL DEFAULT 0,
    last_repeat_at INTEGER,
    planned_at     INTEGER
);
CREATE UNIQUE INDEX deliveries_dedup ON deliveries (dedup_key);
CREATE INDEX deliveries_project ON deliveries (instance, project_path, id);
CREATE INDEX deliveries_unplanned ON deliveries (id) WHERE planned_at IS NULL AND outcome = 'accepted';

-- Rejected deliveries are not stored; one bounded counter per known scope
-- (and one per instance for unknown projects) says why hooks fail.
CREATE TABLE rejections (
    instance    TEXT    NOT NULL,
    scope_path  TEXT    NOT NULL,
    count       INTEGER NOT NULL,
    first_at    INTEGER NOT NULL,
    last_at     INTEGER NOT NULL,
    last_reason TEXT    NOT NULL,
    PRIMARY KEY (instance, scope_path)
);

-- +goose Down
DROP TABLE rejections;
DROP TABLE deliveries;
DROP TABLE token_projects;
DROP TABLE hook_tokens;
