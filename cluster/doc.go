// Package cluster is how the gateways sharing one store tell each other
// things at once (issue 12, CONTRACT §8): a kill, a grant that ended, a
// directory change, a live view's frames. It is a push, never a poll.
//
// A [Bus] delivers small messages on named topics to every node,
// this one included. [Local] is the bus of a node alone on its store
// (SQLite, the embedded default): it delivers in-process. On PostgreSQL
// the bus is LISTEN/NOTIFY through github.com/jackc/pgxlisten (postgres.go),
// so node-to-node traffic is carried by the database connection every node
// already has (TLS and credentials as its DSN says). PostgreSQL checks no
// privilege for NOTIFY or LISTEN, so the credentials do not authenticate a
// message: with Options.Key each one carries an HMAC (sign.go).
//
// A message may be missed while a node's listening connection is down. A
// subscriber must therefore never rely on messages alone: each registers
// a resync (Bus.OnResync), run after every (re)connection, that reads
// again from the store whatever it depends on.
//
// [Leader] runs a job on exactly one node of the cluster at a time
// (evidence schedule, grant and request expiry). [Alone] is the leader of
// a node alone; on PostgreSQL, [Postgres] takes a session-level advisory
// lock per job name ([LeaderKey]) on a connection of its own, which the
// server releases when the node stops, dies or loses its connection.
//
// The files, in the order a message travels:
//
//	bus.go              the Bus interface, topic and payload rules, Local
//	postgres.go         Open, Publish (pg_notify), Subscribe, the delivery goroutine
//	postgres_listen.go  the listening connection: pgxlisten, reconnection, LISTEN/UNLISTEN, resync
//	leader.go           the Leader interface, Alone
//	postgres_leader.go  Lead on PostgreSQL: advisory locks, terms, hand-over
//
// Concurrency of Postgres: one goroutine owns the listening connection
// and queues what arrives; one delivers the queue to the subscribers in
// order and runs the resyncs; Publish and each Lead use connections of
// their own. Close ends all of them and waits.
package cluster
