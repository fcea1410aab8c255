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
//	requests, approvals, grants, sessions, commands, exceptions, recordings,
//	rotation_events, lifecycle .csv and .json each: the rows behind the numbers
//	                           (lifecycle: directory joiners, movers and
//	                           leavers and the seconds until access was
//	                           removed; see lifecycle.go)
//	policy-SHA256.json         per policy that judged the packet: its tenant's
//	                           roles and their groups' members (see below)
//	allowed_signers            the evidence key, for ssh-keygen -Y verify
//	MANIFEST.sha256            sha256sum listing of every file above, sorted
//	MANIFEST.sha256.sig        sshsig signature of the manifest
//
// An auditor checks it with stock tools, against a key pinned beforehand:
// the MSP gives them the output of "warden evidence key" (the key's
// fingerprint, as ssh-keygen -lf prints it, and its allowed_signers line)
// through a channel other than the packet, and they verify with that line,
// never with the packet's own allowed_signers, which anyone who rewrites a
// packet rewrites too:
//
//	sha256sum -c MANIFEST.sha256
//	ssh-keygen -Y verify -f pinned_signers -I warden -n warden-evidence \
//	    -s MANIFEST.sha256.sig < MANIFEST.sha256
//
// The signature is the sshsig format of OpenSSH (PROTOCOL.sshsig), made here
// with golang.org/x/crypto/ssh: the key signs "SSHSIG" || string(namespace)
// || string("") || string("sha512") || string(SHA-512(manifest)), with the
// namespace "warden-evidence". The key (keys.go) is an ed25519 key kept in
// DATA/evidence_ed25519 (mode 0600), created on first use; with
// evidence.key_per_tenant each tenant has its own, DATA/evidence-keys/
// TENANT_ed25519, so one tenant's pinned key does not verify another's
// packets; with evidence.signing_key.vault_kv the key is read from Vault KV
// v2 (field private_key, per tenant at PATH/TENANT) and never touches disk.
//
// # What a month holds
//
// Months are calendar months in UTC, [1st 00:00, next 1st 00:00). Periods
// are overlaps, so that nothing that happened falls between two packets:
// a request, grant or session is in every month it was open in (begun
// before the end, not over before the start: a session from 23:58 on the
// 31st to 00:10 is in both months), an event in the month of its time
// (approvals, commands, rotation.result events). A recording is re-hashed
// in the packet of the month in which its session ended; before that it is
// "unfinished". Exceptions appear in every month in which they were in
// force. Only the tenant's rows are read; approvals are joined to their
// request's tenant.
//
// # Which policy judges
//
// Whether a grant was break-glass, who is a stale admin, which grants the
// policy no longer explains and when a request is overdue depend on the
// policy, which changes. Every policy load is recorded (policies.go): the
// gateway at start (and any reload), and the CLI when evidence or
// reconcile --apply read one, store its exact bytes under their SHA-256 in
// policy_versions and append a policy.loaded event; sessions and grants
// record the version they ran under. A packet judges each grant by its own
// version, and the end-of-period checks by the gateway's policy at the
// end (its last load before the end). The policy given to Build (the
// current one) judges only what has no recorded version, rows from before
// versions were recorded, and the packet marks them (judged_by_current) and
// says so. A grant's version is also in the hash chain (its request.approved
// event); where the row says otherwise the chain's version judges and the
// packet lists a tampered-row item. So a packet rebuilt after a role is
// renamed or loses break_glass is the same packet. Each policy used is listed with its hash
// in summary.json and summary.md, and its extract is in the manifest: the
// tenant's roles and their groups' members, not the whole file, which
// describes every tenant of the MSP (a packet holds one tenant's records).
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
// summary.md escapes everything typed by the people being audited,
// including the ':', '.' and '@' that GitHub's autolinks need, so a
// reason like "see https://evil.example" is not a link in the auditor's
// viewer; summary.html is escaped by html/template under a CSP that allows
// no script.
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
// unexplained grants, recordings that no longer match their digest, and
// rows that disagree with the hash chain: a grant's policy version, and
// every listed request, approval and grant that audit.CheckRows (the row
// checks of audit verify) finds at odds with its events, and the previous
// month's chain head gone from the chain (prevhead.go).
package evidence
