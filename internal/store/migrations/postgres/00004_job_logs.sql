-- +goose Up
-- A job's log, one row per line as the job produced it. seq starts at 1 and
-- has no gaps, so a reader resumes with "seq > last seen".
CREATE TABLE job_log_lines (
    job_id     BIGINT  NOT NULL,
    seq        BIGINT  NOT NULL,
    line       TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Per-job bookkeeping of the log, so a writer that starts again (a retried
-- job) continues the numbering and the size cap where the last one stopped.
CREATE TABLE job_logs (
    job_id     BIGINT PRIMARY KEY,
    last_seq   BIGINT  NOT NULL,
    bytes      BIGINT  NOT NULL,
    truncated  BIGINT  NOT NULL DEFAULT 0,
    updated_at BIGINT  NOT NULL
);

-- Files a job produced, by name; the content lives in a blob store under blob_key.
CREATE TABLE job_artifacts (
    job_id     BIGINT  NOT NULL,
    name       TEXT    NOT NULL,
    blob_key   TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    sha256     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (job_id, name)
);

-- The database-backed blob store: one row per blob, its content in chunks.
-- upload_id changes on every Put, so a new version's chunks are written
-- beside the old ones and swapped in by one small transaction.
CREATE TABLE blobs (
    blob_key   TEXT    PRIMARY KEY,
    upload_id  TEXT    NOT NULL,
    size       BIGINT  NOT NULL,
    sha256     TEXT    NOT NULL,
    created_at BIGINT  NOT NULL
);
CREATE TABLE blob_chunks (
    upload_id  TEXT    NOT NULL,
    seq        BIGINT  NOT NULL,
    data       BYTEA   NOT NULL,
    created_at BIGINT  NOT NULL,
    PRIMARY KEY (upload_id, seq)
);

-- +goose Down
DROP TABLE blob_chunks;
DROP TABLE blobs;
DROP TABLE job_artifacts;
DROP TABLE job_logs;
DROP TABLE job_log_lines;
