// Package evidence turns what Warden recorded into proof that an auditor
// can check without trusting the MSP: the signed monthly evidence packet,
// the stale-admin reconciliation that feeds it, and the monthly schedule
// that writes it (issue 5).
//
// # The packet
//
// Build writes one tenant's month to a directory:
//
//	summary.md, summary.html   one printable page of headline numbers
//	summary.json               the same numbers, for machines
//	requests, approvals, grants, sessions, commands, exceptions, recordings
//	                           .csv and .json each: the rows behind the numbers
//	allowed_signers            the evidence key, for ssh-keygen -Y verify
//	MANIFEST.sha256            sha256sum listing of every file above, sorted
//	MANIFEST.sha256.sig        sshsig signature of the manifest
//
// An auditor checks it with stock tools:
//
//	sha256sum -c MANIFEST.sha256
//	ssh-keygen -Y verify -f allowed_signers -I warden -n warden-evidence \
//	    -s MANIFEST.sha256.sig < MANIFEST.sha256
//
// and compares the key fingerprint in the summary with the one the MSP
// published: allowed_signers only says which key signed, not that the key
// is the MSP's.
//
// The signature is the sshsig format of OpenSSH (PROTOCOL.sshsig), made here
// with golang.org/x/crypto/ssh: the key signs "SSHSIG" || string(namespace)
// || string("") || string("sha512") || string(SHA-512(manifest)), with the
// namespace "warden-evidence". The key is an ed25519 key kept in
// DATA/evidence_ed25519 (mode 0600), created on first use.
//
// # What a month holds
//
// Months are calendar months in UTC, [1st 00:00, next 1st 00:00). A row
// belongs to the month of the event that creates it: requests by
// created_at, approvals by ts, grants by starts_at, sessions by started_at,
// commands by ts. Exceptions appear in every month in which they were in
// force. Only the tenant's rows are read; approvals are joined to their
// request's tenant.
//
// Every value is shown as it stood at the end of the month. A grant revoked
// on the 2nd is "active" in the previous month's packet, a request decided
// after the end is "pending", a session still running shows no end. So a
// finished month always gives the same packet: byte-identical data files,
// stable ordering, no wall-clock time in any file, and, since Ed25519
// signatures are deterministic, the same signature. A packet of the month
// in progress covers up to the time it is built and says "PARTIAL".
//
// A request's state is the stored one (package jit: pending, approved,
// denied, cancelled, expired), except that a request decided after the end
// is shown pending. Approval decisions "approved" (or "approve") and
// "denied" (or "deny") are counted as approvals and denials.
//
// Recordings are indexed, not copied: the index gives each session's
// recording path and SHA-256, and the status found by re-hashing the file
// when the packet was built.
//
// # Reconciliation
//
// Reconcile compares the database with the policy: users eligible for a
// privileged role who have not activated any grant in that tenant within a
// window (90 days by default), and active grants the policy no longer
// explains. ApplyReconcile ends the latter (end_reason "deprovisioned") and,
// because the policy file is the source of truth for eligibility, records an
// exception for each stale administrator (reason "stale admin: no
// activation in 90d", 30 days), with audit events reconcile.stale_admin and
// grant.deprovisioned. The packet counts both as stale admins closed.
//
// # Schedule
//
// RunMonthly writes last month's packet for every tenant on the 1st, under
// DATA/evidence/TENANT/YYYY-MM, and posts one notification per tenant that
// lists its overdue items: expired exceptions, stale admins, failed
// rotations, rotations still owed by ended break-glass grants (table
// rotations, read in rotations.go), pending requests past their TTL,
// unexplained grants and recordings that no longer match their digest.
package evidence
