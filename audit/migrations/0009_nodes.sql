-- 0009_nodes: several gateways on one store (CONTRACT section 8, issue 12).
-- Each gateway has a node_id (config node_id, default the host name) and
-- records it on every session it starts; rows from before this migration
-- keep NULL. Times are RFC 3339 UTC text of fixed width, as in 0001_init,
-- so that they compare as text.
ALTER TABLE sessions ADD COLUMN node_id TEXT;
CREATE INDEX sessions_node_open ON sessions (node_id, ended_at);

-- One row per node that ever served on this store. `warden serve` sets
-- started_at when it starts, heartbeat_at every 5 seconds, and stopped_at
-- at a clean exit (cleared again when it starts). A node whose heartbeat is
-- older than 30 seconds is taken for dead: a survivor ends its open
-- sessions as interrupted (Store.ReapDeadNodes).
CREATE TABLE nodes (
    id           TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    stopped_at   TEXT
);
