package evidence

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/storetest"
)

// TestAttackEditedRowsAreFlaggedInThePacket: someone who can write
// warden.db, but not the chain's past, edits the rows the packet reports as
// fact. An approver of the break-glass request is replaced (so the packet
// would name someone else as having approved the emergency), and a grant
// is stretched. The packet still lists the rows as stored, but each one
// whose row disagrees with its events (audit.CheckRows) is a tampered-row
// item, in the summary and the notification, without waiting for someone
// to run audit verify; another tenant's tampered row is not in it.
func TestAttackEditedRowsAreFlaggedInThePacket(t *testing.T) {
	w := october(t)
	clean := w.build(filepath.Join(t.TempDir(), "clean"))
	if n := clean.Summary.OverdueByKind[OverdueTampered]; n != 0 {
		t.Fatalf("untouched rows flagged: %+v", clean.Summary.Overdue)
	}
	w.exec(`UPDATE approvals SET approver = 'frank' WHERE request_id = 3 AND approver = 'erin'`)
	w.exec(`UPDATE grants SET expires_at = '2026-10-10T23:00:00.000000Z' WHERE id = 2`)
	w.exec(`UPDATE requests SET reason = 'routine' WHERE id = 10`) // beta's
	pk := w.build(filepath.Join(t.TempDir(), "tampered"))
	want := map[string]string{
		"request 3": `approvals row of "frank"`,
		"grant 2":   "grants.expires_at",
	}
	for _, it := range pk.Summary.Overdue {
		if it.Kind != OverdueTampered {
			continue
		}
		if w, ok := want[it.Subject]; ok && strings.Contains(it.Detail, w) {
			delete(want, it.Subject)
			continue
		}
		if it.Subject == "request 10" {
			t.Errorf("beta's request is in acme's packet: %+v", it)
		}
	}
	if len(want) != 0 {
		t.Fatalf("not flagged: %v; overdue %+v", want, pk.Summary.Overdue)
	}
}

// TestAttackChainCutSinceLastPacketIsFlagged: October's packet, written
// where the schedule writes it, recorded the chain's head. Someone who can
// write the database then removes the chain's newest events, October's
// head among them (the chain still links up: only its end is gone, which
// audit verify alone cannot see without an anchor). November's packet
// checks October's head against the chain and reports it missing; so it
// does when October's packet was altered to hide the old head.
func TestAttackChainCutSinceLastPacketIsFlagged(t *testing.T) {
	w := october(t)
	oct := w.build(PacketDir(w.dir, "acme", at("2026-10-01T00:00:00Z")))
	if oct.Summary.AuditChainHead == "" {
		t.Fatal("October's packet recorded no chain head")
	}
	w.clk.Set(at("2026-12-02T00:00:00Z"))
	nov := func() *Packet {
		pk, err := Build(w.ctx, Options{DataDir: w.dir, Backend: w.be, Tenant: "acme", Month: at("2026-11-01T00:00:00Z"),
			Out: filepath.Join(t.TempDir(), "nov"), Policy: w.cfg, Now: w.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return pk
	}
	chainItem := func(pk *Packet) string {
		for _, it := range pk.Summary.Overdue {
			if it.Kind == OverdueTampered && it.Subject == "audit chain" {
				return it.Detail
			}
		}
		return ""
	}
	if d := chainItem(nov()); d != "" {
		t.Fatalf("an intact chain flagged: %s", d)
	}

	// Cut the chain from October's head on, as the sqlite3 shell (or psql)
	// would, past the append-only triggers.
	drop := `DROP TRIGGER audit_events_no_delete`
	if storetest.Postgres() || w.be.Driver == audit.DriverPostgres {
		drop += ` ON audit_events`
	}
	w.exec(drop)
	w.exec(`DELETE FROM audit_events WHERE seq >= (SELECT seq FROM audit_events WHERE hash = ?)`, oct.Summary.AuditChainHead)
	if d := chainItem(nov()); !strings.Contains(d, oct.Summary.AuditChainHead) || !strings.Contains(d, "no longer holds") {
		t.Fatalf("a cut chain: %q, want October's head reported missing", d)
	}

	// Rewriting October's packet to name a head still there breaks its
	// signature, and that is reported instead of trusted.
	sj := filepath.Join(PacketDir(w.dir, "acme", at("2026-10-01T00:00:00Z")), "summary.json")
	b, err := os.ReadFile(sj)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sj, []byte(strings.Replace(string(b), oct.Summary.AuditChainHead, strings.Repeat("0", 64), 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if d := chainItem(nov()); !strings.Contains(d, "does not verify") {
		t.Fatalf("an altered previous packet: %q, want it reported", d)
	}
}
