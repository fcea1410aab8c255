// Package sshtest runs Debian's real OpenSSH programs for Warden's tests.
//
// Warden sits between stock OpenSSH clients and stock OpenSSH servers, so its
// end-to-end tests use the real thing on both sides instead of fakes:
//
//   - StartHost runs the real sshd on a free loopback port as a managed host
//     that trusts only the user CA keys a test gives it. Its VERBOSE log names
//     the key ID of every certificate it accepts, so a test can prove which
//     credential reached the host (Host.WaitLog).
//   - NewClient generates an ed25519 key with the real ssh-keygen and builds
//     ssh, scp and sftp command lines that use only that key and only the host
//     keys the test trusts (Client.TrustHost), with no user or system config.
//   - Client.StartPTY runs ssh -tt under a real pseudo-terminal so a test can
//     type, read (PTYSession.Expect) and resize like a person at a terminal.
//   - CA signs user and host certificates with golang.org/x/crypto/ssh.
//
// A missing binary fails the test with the Debian package to install; the
// helpers never skip, because a skipped end-to-end test proves nothing.
//
// Helpers that take a testing.TB report failures with t.Fatal and therefore
// must be called from the test's own goroutine.
package sshtest
