-- +goose Up
-- The MR's target branch: the executor merges the source onto it, as Packit does.
ALTER TABLE runs ADD COLUMN target_branch TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE runs DROP COLUMN target_branch;
