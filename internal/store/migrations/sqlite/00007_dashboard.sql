-- +goose Up
-- The dashboard lists public runs newest first, a project's runs by branch,
-- and a project's deliveries by numeric ID (paths change on rename).
CREATE INDEX runs_visibility ON runs (visibility, id);
CREATE INDEX runs_ref ON runs (instance, project_id, ref, id);
CREATE INDEX deliveries_project_id ON deliveries (instance, project_id, id);

-- +goose Down
DROP INDEX deliveries_project_id;
DROP INDEX runs_ref;
DROP INDEX runs_visibility;
