// Package jit is Warden's just-in-time elevation: privileged roles carry no
// standing access, so a user asks for one (Request), someone else approves
// (Approve), and the access ends on time (Run), even mid-session.
//
// # Lifecycle
//
//	request:  pending ─┬─ approved ──> grant: running ─┬─ expired
//	                   ├─ denied                       ├─ revoked       (by an approver)
//	                   ├─ cancelled  (by the requester)├─ relinquished  (by its owner)
//	                   └─ expired    (request_ttl)     └─ deprovisioned (policy no longer allows it)
//
// A directory change (package identity) ends grants through Deprovision and
// cancels the pending requests it makes ineligible (CancelIneligible), with
// the directory as actor.
//
// The grant's window starts at the final approval, not at request time,
// and lasts the requested duration. Nothing is deleted: requests, approvals
// and grants stay in the tables of CONTRACT.md section 5 after they end,
// and every step appends an audit event (request.created,
// approval.recorded, request.approved, grant.started, grant.expired, ...;
// see the Event constants) in the same transaction as the row it changes.
//
// # Rules
//
// Each decision is checked against the policy as it is at that moment
// (Options.Policy), not as it was when the request was made:
//
//   - only users in a role's eligible groups may request it, and only
//     privileged roles can be requested;
//   - the duration is positive and at most the role's max_duration, and
//     never above one hour for break-glass roles;
//   - a reason (at most 1 KiB) and a ticket (at most 128 bytes) are
//     required when the role says so, always a reason for break-glass;
//     both must be printable single-line text;
//   - nobody decides their own request; an approver must be in one of the
//     role's approver groups and decides a request once;
//   - a request needs the role's number of approvals from distinct
//     approvers, and at least two for break-glass; one denial ends it;
//   - a closed, expired or unknown request cannot be decided;
//   - a deny holds: the same user may not request the same role again for
//     its deny_cooldown (default 1h), or, for break-glass, until an
//     approver other than that user clears it (ClearDenial, audited as
//     denial.cleared); see cooldown.go;
//   - nor does asking and withdrawing: after 3 requests for a role that
//     ended cancelled or expired within an hour, the next waits until the
//     oldest is an hour old (withdrawnHold in request.go), so approvers
//     cannot be flooded until one approves by mistake.
//
// Refusals are *Error values whose Msg is one line for the user; they match
// ErrNotFound, ErrForbidden, ErrInvalid or ErrState. Any other error is
// internal and stays in the log.
//
// # Concurrency
//
// Every write runs in the audit store's single writer goroutine
// (audit.Store.Update), which re-reads the request or grant and checks its
// state inside the transaction. Two approvers approving at the same moment
// are therefore applied one after the other: the first completes the
// request, the second finds it approved. The UNIQUE(request_id, approver)
// constraint backs the one-decision rule in the schema as well.
//
// # Time
//
// Run keeps a min-heap of the next deadlines (request TTLs, grant expiries,
// the "expires in five minutes" warning) and sleeps until the earliest; it
// never polls the database. At start it loads the deadlines of pending
// requests and running grants, so a restart keeps them, and handles at once
// any that passed while the gateway was down. The clock (Options.Now) and
// the timer (Options.Until) are injected, so tests drive expiry exactly.
// When a grant ends, the OnGrantEnd callbacks run after the end is
// committed; the gateway uses them to close the grant's live sessions.
//
// In a cluster (gateways sharing a PostgreSQL store) only the leader runs
// Run, so that each deadline is acted on once. A request or grant created
// on another gateway reaches the leader's timetable through OnChange (the
// gateway publishes on the cluster bus) and Resync (the leader re-reads
// the pending requests and running grants); a deadline queued twice is
// harmless, as each job re-reads its row in the writer.
//
// # Rotations
//
// A grant of a role with a static credential (credential.vault_kv) owes a
// rotation of that key. The final approval records it in table rotations,
// in the transaction that starts the grant, with the host and login the
// policy names then (rotations.go), so a later policy cannot skip it. The
// gateway's rotation worker performs it once the grant has ended, however
// it ended, and records each attempt here (BeginRotationAttempt before,
// FinishRotationAttempt after, with the rotation.result event), so that
// an attempt cut short by a crash is retried after a restart.
//
// Enforcement does not depend on Run being on time: ActiveGrant admits a
// session only inside the grant's window and only while the current
// policy still allows the grant, and the gateway ends each session at the
// grant's expiry by its own deadline. RecordUse, which the gateway calls
// when a session starts, checks the grant once more inside the writer's
// transaction and refuses one that has ended.
package jit
