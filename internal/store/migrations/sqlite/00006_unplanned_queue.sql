-- +goose Up
-- Deliveries waiting for the planner, as a narrow table of their IDs.
-- Marking a delivery planned used to update deliveries.planned_at, which
-- rewrites the whole row (body and all, overflow pages included); deleting
-- a one-column row costs a fraction of that, and intake writes less too.
CREATE TABLE unplanned_deliveries (
    delivery_id INTEGER PRIMARY KEY
);
INSERT INTO unplanned_deliveries (delivery_id)
    SELECT id FROM deliveries WHERE planned_at IS NULL AND outcome = 'accepted';
DROP INDEX deliveries_unplanned;

-- +goose Down
CREATE INDEX deliveries_unplanned ON deliveries (id) WHERE planned_at IS NULL AND outcome = 'accepted';
DROP TABLE unplanned_deliveries;
