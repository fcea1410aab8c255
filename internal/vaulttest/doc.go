// Package vaulttest starts a real HashiCorp Vault for tests: the vaultdev
// binary built from testdata/vaultdev (an in-memory Vault v1.14.1 core with
// the SSH secrets engine and AppRole). Tests talk to it over HTTP exactly as
// Warden talks to a production Vault; nothing is faked.
//
// The binary is built once by `make vaultdev` into ~/.cache/warden/vaultdev
// (or wherever WARDEN_VAULTDEV points). When it is missing, Start fails the
// test with that instruction instead of skipping: a skipped Vault test
// would hide that the fail-closed path was never exercised.
package vaulttest
