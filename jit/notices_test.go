package jit

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

func TestNoticeTexts(t *testing.T) {
	pol := mustPolicy(t)
	req := Request{ID: 17, User: "alice", Role: "prod-root", Tenant: "acme", Reason: "INC-1 <@U123> & co",
		Ticket: "<https://x|T>", Duration: 2 * time.Hour, State: StatePending, CreatedAt: t0}
	g := Grant{ID: 5, RequestID: 17, User: "alice", Role: "prod-root", Tenant: "acme",
		StartsAt: t0, ExpiresAt: t0.Add(2 * time.Hour)}
	approved := req
	approved.Approvals = []Decision{{Approver: "carol", Verdict: VerdictApproved, At: t0}}
	denied := req
	denied.Approvals = []Decision{{Approver: "erin", Verdict: VerdictDenied, Comment: "<!here> no", At: t0}}
	expired, revoked, deprov := g, g, g
	expired.EndReason, expired.EndedAt = EndExpired, g.ExpiresAt
	revoked.EndReason, revoked.EndedAt = EndRevoked, t0.Add(time.Minute)
	deprov.EndReason = EndDeprovisioned

	tests := []struct {
		name     string
		ev       notify.Event
		typ      string
		wantText string
	}{
		{"created escapes what users typed", requestCreatedNotice(req, pol.Role("prod-root")), notify.TypeRequestCreated,
			"alice requests prod-root on acme for 2h (request 17): INC-1 &lt;@U123&gt; &amp; co [ticket &lt;https://x|T&gt;]"},
		{"partial approval", requestDecidedNotice(approved, nil, 1, 2), notify.TypeRequestDecided,
			"carol approved request 17 (alice, prod-root on acme): 1 of 2 approvals"},
		{"final approval", requestDecidedNotice(approved, &g, 1, 1), notify.TypeRequestDecided,
			"carol approved request 17 (alice, prod-root on acme): grant 5 until 11:00:00Z"},
		{"denial", requestDecidedNotice(denied, nil, 0, 1), notify.TypeRequestDecided,
			"erin denied request 17 (alice, prod-root on acme): &lt;!here&gt; no"},
		{"expiring", grantExpiringNotice(g, t0.Add(115*time.Minute)), notify.TypeGrantExpiring,
			"grant 5 (alice, prod-root on acme) expires at 11:00:00Z, in 5m"},
		{"expired", grantEndedNotice(expired, "warden", ""), notify.TypeGrantEnded,
			"grant 5 (alice, prod-root on acme) expired at 11:00:00Z"},
		{"revoked", grantEndedNotice(revoked, "carol", "<b>"), notify.TypeGrantEnded,
			"grant 5 (alice, prod-root on acme) was revoked by carol: &lt;b&gt;"},
		{"deprovisioned", grantEndedNotice(deprov, "warden", ""), notify.TypeGrantEnded,
			"grant 5 (alice, prod-root on acme) was ended: the policy no longer allows it"},
		{"break-glass use", breakGlassUsedNotice(g, "abc", "root", "web01"), notify.TypeBreakGlassUsed,
			":rotating_light: BREAK-GLASS grant 5 used: alice logged in as root on web01 (session abc)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.ev.Type != tc.typ || tc.ev.Text != tc.wantText {
				t.Errorf("got %s %q\nwant %s %q", tc.ev.Type, tc.ev.Text, tc.typ, tc.wantText)
			}
			if tc.ev.Fields["grant_id"] == nil && tc.ev.Fields["request_id"] == nil {
				t.Errorf("fields carry no ID: %v", tc.ev.Fields)
			}
		})
	}
	// Structured fields keep the raw text; only the human line is escaped.
	if f := requestCreatedNotice(req, pol.Role("prod-root")).Fields; f["reason"] != req.Reason || f["ticket"] != req.Ticket {
		t.Errorf("fields %v", f)
	}
}
