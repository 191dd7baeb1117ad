-- +goose Up
-- Per-project overrides set on the settings page, merged over .packit.yaml
-- at plan time. One row per project, keyed by the numeric ID (paths change).
CREATE TABLE project_settings (
    instance   TEXT    NOT NULL,
    project_id BIGINT  NOT NULL,
    settings   TEXT    NOT NULL,
    version    BIGINT  NOT NULL DEFAULT 1,
    updated_by TEXT    NOT NULL DEFAULT '',
    updated_at BIGINT  NOT NULL,
    PRIMARY KEY (instance, project_id)
);

-- +goose Down
DROP TABLE project_settings;
