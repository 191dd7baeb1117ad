-- +goose Up
-- Who did what to a project through upbuild, newest first on the page.
CREATE TABLE audit_log (
    id         INTEGER PRIMARY KEY,
    instance   TEXT    NOT NULL,
    project_id INTEGER  NOT NULL,
    actor      TEXT    NOT NULL,
    action     TEXT    NOT NULL,
    detail     TEXT    NOT NULL DEFAULT '',
    at         INTEGER  NOT NULL
);
CREATE INDEX audit_log_project ON audit_log (instance, project_id, id);

-- +goose Down
DROP INDEX audit_log_project;
DROP TABLE audit_log;
