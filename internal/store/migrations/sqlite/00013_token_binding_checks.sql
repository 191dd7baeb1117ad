-- +goose Up
-- A token's first delivery for a project binds the project's ID as the
-- payload states it; the planner checks that ID with GitLab (its path is
-- the payload's and the token's scope covers it) before acting on it, and
-- records here that it did. Bindings from before this check are checked
-- again.
ALTER TABLE token_projects ADD COLUMN verified_at BIGINT;

-- +goose Down
ALTER TABLE token_projects DROP COLUMN verified_at;
