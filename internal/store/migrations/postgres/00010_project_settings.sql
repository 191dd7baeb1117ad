-- +goose Up
-- Per-project overrides set on the settings page, merged over .packit.yaml
-- at plan time. One row per project, keyed by the numeric ID (paths change).
-- version counts saves, for optimistic concurrency on the form.
CREATE TABLE project_settings (
    instance   TEXT    NOT NULL,
    project_id BIGINT  NOT NULL,
    settings   TEXT    NOT NULL,
    version    BIGINT  NOT NULL DEFAULT 1,
    updated_by TEXT    NOT NULL DEFAULT '',
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (instance, project_id)
);

-- The .packit.yaml the planner last read on a project's default branch, so
-- the settings page can preview the merged config without asking GitLab.
CREATE TABLE project_configs (
    instance   TEXT    NOT NULL,
    project_id BIGINT  NOT NULL,
    ref        TEXT    NOT NULL,
    sha        TEXT    NOT NULL,
    file       TEXT    NOT NULL,
    content    TEXT    NOT NULL,
    repo_files TEXT    NOT NULL,
    seen_at    BIGINT  NOT NULL,
    PRIMARY KEY (instance, project_id)
);

-- +goose Down
DROP TABLE project_configs;
DROP TABLE project_settings;
