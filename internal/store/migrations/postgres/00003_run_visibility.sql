-- +goose Up
-- What the planner learned about the project and its wishes: visibility
-- (public, internal, private; '' when the payload did not say, treated as
-- private) and whether the MR wants one summary comment kept up to date.
ALTER TABLE runs ADD COLUMN visibility TEXT NOT NULL DEFAULT '';
ALTER TABLE runs ADD COLUMN summary_comment INTEGER NOT NULL DEFAULT 0;
-- The job's Packit notifications and other execution details live in jobs.spec.

-- +goose Down
ALTER TABLE runs DROP COLUMN summary_comment;
ALTER TABLE runs DROP COLUMN visibility;
