-- +goose Up
-- Which reporter is sending a status, and since when. A reporter that died
-- mid-send may have left a request GitLab has yet to apply; another reporter
-- waits out the request timeout before sending that status again, so the
-- late request cannot land after a newer state and move it backwards.
ALTER TABLE status_outbox ADD COLUMN sending_at BIGINT NOT NULL DEFAULT 0;
ALTER TABLE status_outbox ADD COLUMN sending_by TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE status_outbox DROP COLUMN sending_by;
ALTER TABLE status_outbox DROP COLUMN sending_at;
