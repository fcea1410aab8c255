// Package pgtest runs a real PostgreSQL server for tests: Debian's
// postgresql package (server version 15), started from its binaries under
// /usr/lib/postgresql/15/bin with a data directory in a temporary
// directory, listening on a free loopback port with password
// authentication, and stopped when the tests are done.
//
// A test binary starts at most one server (Shared, from TestMain or on
// first use) and each test gets a fresh, empty database on it (Database),
// owned by a non-superuser role, so tests never see one another's rows and
// never depend on the order they run in.
//
// The server refuses to run as root, so when the tests run as root (CI) the
// data directory belongs to the postgres user and initdb, pg_ctl and the
// server run under runuser -u postgres. A missing binary is a test failure
// naming the Debian package to install, never a skip: a suite that silently
// skips its database has not tested it.
//
// Durability is off (fsync, synchronous_commit, full_page_writes): a test
// server's data dies with the test, and the machine is shared.
package pgtest
