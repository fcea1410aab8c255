package evidence

import (
	"path/filepath"
	"strings"
	"testing"
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
