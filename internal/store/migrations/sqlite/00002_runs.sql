-- +goose Up
-- A run is what one event (or one comment command) asked for: the jobs of
-- .packit.yaml that match its trigger, one per (job, target, package).
CREATE TABLE runs (
    id                  INTEGER PRIMARY KEY,
    instance            TEXT    NOT NULL,
    project_id          INTEGER NOT NULL,
    project_path        TEXT    NOT NULL,
    trigger             TEXT    NOT NULL,
    -- run_key makes planning idempotent: one GitLab release fires a Release
    -- Hook and a Tag Push Hook, and both map to the same key.
    run_key             TEXT    NOT NULL,
    sha                 TEXT    NOT NULL,
    ref                 TEXT    NOT NULL DEFAULT '',
    mr_iid              INTEGER NOT NULL DEFAULT 0,
    source_project_id   INTEGER NOT NULL,
    source_project_path TEXT    NOT NULL,
    actor               TEXT    NOT NULL DEFAULT '',
    title               TEXT    NOT NULL DEFAULT '',
    delivery_id         INTEGER NOT NULL,
    state               TEXT    NOT NULL,
    message             TEXT    NOT NULL DEFAULT '',
    config_file         TEXT    NOT NULL DEFAULT '',
    created_at          INTEGER NOT NULL,
    finished_at         INTEGER
);
CREATE UNIQUE INDEX runs_key ON runs (run_key);
CREATE INDEX runs_project ON runs (instance, project_id, id);
CREATE INDEX runs_mr ON runs (instance, project_id, mr_iid, id);

CREATE TABLE jobs (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs (id),
    job_type    TEXT    NOT NULL,
    job_index   INTEGER NOT NULL,
    package     TEXT    NOT NULL DEFAULT '',
    target      TEXT    NOT NULL DEFAULT '',
    identifier  TEXT    NOT NULL DEFAULT '',
    status_name TEXT    NOT NULL,
    state       TEXT    NOT NULL,
    description TEXT    NOT NULL DEFAULT '',
    spec        TEXT    NOT NULL DEFAULT '{}',
    created_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER
);
CREATE INDEX jobs_run ON jobs (run_id);

-- The latest desired state of each commit status, keyed by GitLab's own
-- identity of a status (project, sha, name). The reporter sends only the
-- latest; version > sent_version means there is something to send.
CREATE TABLE status_outbox (
    instance        TEXT    NOT NULL,
    project_id      INTEGER NOT NULL,
    sha             TEXT    NOT NULL,
    name            TEXT    NOT NULL,
    job_id          INTEGER NOT NULL,
    ref             TEXT    NOT NULL DEFAULT '',
    state           TEXT    NOT NULL,
    description     TEXT    NOT NULL DEFAULT '',
    target_url      TEXT    NOT NULL DEFAULT '',
    mr_iid          INTEGER NOT NULL DEFAULT 0,
    target_project_id INTEGER NOT NULL DEFAULT 0,
    version         INTEGER NOT NULL,
    sent_version    INTEGER NOT NULL DEFAULT 0,
    sent_state      TEXT    NOT NULL DEFAULT '',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    updated_at      INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, sha, name)
);
CREATE INDEX status_outbox_due ON status_outbox (next_attempt_at);

-- The external pipeline GitLab made for a SHA, reused for every status.
CREATE TABLE pipelines (
    instance    TEXT    NOT NULL,
    project_id  INTEGER NOT NULL,
    sha         TEXT    NOT NULL,
    pipeline_id INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, sha)
);

-- One-off things to say on GitLab (comments, replies, award emoji,
-- confidential setup issues) and comments kept up to date in place. Each is
-- retried with back-off until done; dedup_key keeps a retried planner from
-- saying the same thing twice.
CREATE TABLE forge_actions (
    id              INTEGER PRIMARY KEY,
    instance        TEXT    NOT NULL,
    kind            TEXT    NOT NULL,
    project_id      INTEGER NOT NULL,
    mr_iid          INTEGER NOT NULL DEFAULT 0,
    sha             TEXT    NOT NULL DEFAULT '',
    note_id         INTEGER NOT NULL DEFAULT 0,
    payload         TEXT    NOT NULL DEFAULT '{}',
    dedup_key       TEXT    NOT NULL,
    state           TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_at      INTEGER NOT NULL,
    done_at         INTEGER
);
CREATE UNIQUE INDEX forge_actions_dedup ON forge_actions (dedup_key);
CREATE INDEX forge_actions_due ON forge_actions (state, next_attempt_at);

-- Comments upbuild keeps updating in place (the per-MR summary, or the
-- results table when the bot cannot set statuses on a fork).
CREATE TABLE mr_comments (
    instance     TEXT    NOT NULL,
    project_id   INTEGER NOT NULL,
    mr_iid       INTEGER NOT NULL,
    purpose      TEXT    NOT NULL,
    note_id      INTEGER NOT NULL DEFAULT 0,
    body         TEXT    NOT NULL DEFAULT '',
    version      INTEGER NOT NULL DEFAULT 0,
    sent_version INTEGER NOT NULL DEFAULT 0,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (instance, project_id, mr_iid, purpose)
);

CREATE TABLE approvals (
    instance    TEXT    NOT NULL,
    project_id  INTEGER NOT NULL,
    mr_iid      INTEGER NOT NULL,
    sha         TEXT    NOT NULL,
    approved_by TEXT    NOT NULL,
    approved_at INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, mr_iid, sha)
);

-- +goose Down
DROP TABLE approvals;
DROP TABLE mr_comments;
DROP TABLE forge_actions;
DROP TABLE pipelines;
DROP TABLE status_outbox;
DROP TABLE jobs;
DROP TABLE runs;
