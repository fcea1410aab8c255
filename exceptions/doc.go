// Package exceptions keeps Warden's exception register: the documented,
// owned and time-limited departures from policy that an MSP must be able to
// show its clients (issue 5). Each entry names a tenant, an owner, the reason,
// the compensating controls that stand in for the suspended control, and the
// date it lapses.
//
// Entries live in the exceptions table of DATA/warden.db (migration
// 0002_exceptions). They are never deleted: Close records who closed an entry,
// when and why, so that the evidence packet of any month can show what was
// open then. Every change is written through the audit store's single writer
// together with its audit event (exception.added, exception.closed), so the
// register and the hash chain cannot disagree.
//
// An entry is expired when it is still open and its expiry has passed. An
// expired entry is not closed by time: someone must look at it and either
// close it or record a new one, so expired entries are flagged wherever they
// are listed (the EXPIRED column of WriteTable, "expired": true in JSON) and
// reported as overdue items in the evidence packet.
//
// Everything that reaches the register is validated first: tenant, owner
// and actor names use the policy's name alphabet, and free text must be
// printable (no control or bidirectional-override characters, which could
// make an auditor's terminal or report show something other than what is
// stored) and of bounded length.
package exceptions
