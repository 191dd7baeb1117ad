-- +goose Up
-- Pages find a project, and its recent deliveries, by path in any case.
CREATE INDEX runs_project_path ON runs (instance, lower(project_path), id);
CREATE INDEX deliveries_project_path_ci ON deliveries (instance, lower(project_path), id);
-- A project's runs filtered by trigger (releases are rare among pushes).
CREATE INDEX runs_trigger ON runs (instance, project_id, trigger, id);
-- The charts' live part: jobs finished, and deliveries received, since
-- the last rolled-up day. Both cover what the charts read, so no job row
-- is read (only its run), and no delivery row with its large body.
CREATE INDEX jobs_finished ON jobs (finished_at, run_id, state, status_name, started_at);
CREATE INDEX deliveries_received ON deliveries (instance, project_id, received_at, outcome);

-- The 90-day charts sum finished jobs and deliveries per day. An hour or
-- a day that ended more than a few minutes ago no longer changes
-- (finished_at and received_at are set once, to the time of the write), so
-- its sums are computed once and kept here: per day for the days before
-- today, per hour for today's hours (dropped when their day is rolled up);
-- only the last hour or so is summed live.
CREATE TABLE job_days (
    instance    TEXT    NOT NULL,
    project_id  INTEGER NOT NULL,
    day         INTEGER NOT NULL, -- days since 1970-01-01 UTC
    status_name TEXT    NOT NULL,
    finished    INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    timed       INTEGER NOT NULL,
    total_run   INTEGER NOT NULL, -- microseconds
    PRIMARY KEY (instance, project_id, day, status_name)
);
CREATE TABLE job_hours (
    instance    TEXT    NOT NULL,
    project_id  INTEGER NOT NULL,
    hour        INTEGER NOT NULL, -- hours since 1970-01-01 UTC
    status_name TEXT    NOT NULL,
    finished    INTEGER NOT NULL,
    passed      INTEGER NOT NULL,
    timed       INTEGER NOT NULL,
    total_run   INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, hour, status_name)
);
CREATE TABLE delivery_days (
    instance   TEXT    NOT NULL,
    project_id INTEGER NOT NULL,
    day        INTEGER NOT NULL,
    accepted   INTEGER NOT NULL,
    ignored    INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, day)
);
CREATE TABLE delivery_hours (
    instance   TEXT    NOT NULL,
    project_id INTEGER NOT NULL,
    hour       INTEGER NOT NULL,
    accepted   INTEGER NOT NULL,
    ignored    INTEGER NOT NULL,
    PRIMARY KEY (instance, project_id, hour)
);
-- Per project and series ("jobs/day", "deliveries/hour" ...): the periods
-- before through_day (a day or an hour number) are summed in the tables
-- above, from the first one a page asked for. claimed_until says one
-- request is summing periods until then (unix microseconds; 0 when none),
-- so that others wait instead of doing the same work.
CREATE TABLE day_rollups (
    instance      TEXT    NOT NULL,
    project_id    INTEGER NOT NULL,
    series        TEXT    NOT NULL,
    through_day   INTEGER NOT NULL,
    claimed_until INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (instance, project_id, series)
);

-- +goose Down
DROP TABLE day_rollups;
DROP TABLE delivery_hours;
DROP TABLE delivery_days;
DROP TABLE job_hours;
DROP TABLE job_days;
DROP INDEX deliveries_received;
DROP INDEX jobs_finished;
DROP INDEX runs_trigger;
DROP INDEX deliveries_project_path_ci;
DROP INDEX runs_project_path;
