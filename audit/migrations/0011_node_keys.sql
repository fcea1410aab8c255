-- 0011_node_keys: the nodes of one cluster present one identity (issue
-- 12). Each `warden serve` records the SHA-256 fingerprints of the gateway
-- host key its clients see and of the CA public key its hosts trust. A node
-- whose keys differ from a live node's does not start: clients going
-- through a load balancer would see the host key change between
-- connections (and learn to accept that warning), and hosts would refuse
-- the certificates of the node with another CA. NULL: not recorded (rows
-- from before this migration), never compared.
ALTER TABLE nodes ADD COLUMN host_key TEXT;
ALTER TABLE nodes ADD COLUMN ca_key TEXT;
