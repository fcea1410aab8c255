-- 0010_node_instance: one node_id per running gateway (issue 12). Each
-- `warden serve` records the host it runs on and a random token drawn when
-- the process starts. At start a node refuses a node_id whose row has a
-- fresh heartbeat, no stopped_at and another host (another live gateway
-- configured with the same node_id); the same host with another token is
-- this host restarting after a crash, and is allowed. The heartbeat
-- reports a row whose token is not its own (node.duplicate). Rows from
-- before this migration keep NULL: an unknown host, never taken for this
-- one.
ALTER TABLE nodes ADD COLUMN host TEXT;
ALTER TABLE nodes ADD COLUMN instance TEXT;
