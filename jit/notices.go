package jit

import (
	"fmt"
	"time"

	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

// The alerts sent to the Notifier. Text is one Slack line for people; what
// users typed is escaped, so a reason cannot ping a channel or hide a link.
// Names come from the policy, whose alphabet has no Slack control
// characters.

const clockLayout = "15:04:05Z"

// breakGlassMark starts every break-glass alert, so it stands out.
const breakGlassMark = ":rotating_light: BREAK-GLASS "

func requestFields(r Request) map[string]any {
	return map[string]any{
		"request_id": r.ID, "user": r.User, "role": r.Role, "tenant": r.Tenant,
		"duration": r.Duration.String(), "reason": r.Reason, "ticket": r.Ticket, "state": r.State,
	}
}

func grantFields(g Grant) map[string]any {
	return map[string]any{
		"grant_id": g.ID, "request_id": g.RequestID, "user": g.User, "role": g.Role, "tenant": g.Tenant,
		"starts_at": g.StartsAt, "expires_at": g.ExpiresAt,
	}
}

// why renders a reason and ticket as ": reason [ticket T]".
func why(reason, ticket string) string {
	s := ""
	if reason != "" {
		s = ": " + notify.Escape(reason)
	}
	if ticket != "" {
		s += " [ticket " + notify.Escape(ticket) + "]"
	}
	return s
}

func requestCreatedNotice(r Request, role *policy.Role) notify.Event {
	mark := ""
	if role.BreakGlass {
		mark = breakGlassMark
	}
	f := requestFields(r)
	f["break_glass"], f["approvals_needed"] = role.BreakGlass, approvalsNeeded(role)
	return notify.Event{
		Type: notify.TypeRequestCreated,
		Text: fmt.Sprintf("%s%s requests %s on %s for %s (request %d)%s",
			mark, r.User, r.Role, r.Tenant, shortDuration(r.Duration), r.ID, why(r.Reason, r.Ticket)),
		Fields: f,
	}
}

// requestDecidedNotice describes the latest decision on r.
func requestDecidedNotice(r Request, g *Grant, got, need int) notify.Event {
	d := r.Approvals[len(r.Approvals)-1]
	f := requestFields(r)
	f["approver"], f["decision"], f["comment"] = d.Approver, d.Verdict, d.Comment
	f["approvals"], f["approvals_needed"] = got, need
	head := fmt.Sprintf("%s %s request %d (%s, %s on %s)", d.Approver, d.Verdict, r.ID, r.User, r.Role, r.Tenant)
	var text string
	switch {
	case d.Verdict == VerdictDenied:
		text = head + why(d.Comment, "")
	case g != nil:
		f["grant_id"], f["expires_at"] = g.ID, g.ExpiresAt
		text = fmt.Sprintf("%s: grant %d until %s", head, g.ID, g.ExpiresAt.Format(clockLayout))
	default:
		text = fmt.Sprintf("%s: %d of %d approvals", head, got, need)
	}
	return notify.Event{Type: notify.TypeRequestDecided, Text: text, Fields: f}
}

func grantExpiringNotice(g Grant, now time.Time) notify.Event {
	return notify.Event{
		Type: notify.TypeGrantExpiring,
		Text: fmt.Sprintf("grant %d (%s, %s on %s) expires at %s, in %s",
			g.ID, g.User, g.Role, g.Tenant, g.ExpiresAt.Format(clockLayout), shortDuration(g.Remaining(now).Round(time.Second))),
		Fields: grantFields(g),
	}
}

// grantEndedNotice describes how g ended; actor and comment are who ended
// it and why, for revocations.
func grantEndedNotice(g Grant, actor, comment string) notify.Event {
	head := fmt.Sprintf("grant %d (%s, %s on %s)", g.ID, g.User, g.Role, g.Tenant)
	var text string
	switch g.EndReason {
	case EndExpired:
		text = fmt.Sprintf("%s expired at %s", head, g.EndedAt.Format(clockLayout))
	case EndDeprovisioned:
		text = head + " was ended: the policy no longer allows it"
	default:
		text = fmt.Sprintf("%s was %s by %s%s", head, g.EndReason, actor, why(comment, ""))
	}
	f := grantFields(g)
	f["ended_at"], f["end_reason"], f["actor"], f["comment"] = g.EndedAt, g.EndReason, actor, comment
	return notify.Event{Type: notify.TypeGrantEnded, Text: text, Fields: f}
}

func breakGlassUsedNotice(g Grant, sessionID, login, host string) notify.Event {
	f := grantFields(g)
	f["session_id"], f["login"], f["host"] = sessionID, login, host
	return notify.Event{
		Type: notify.TypeBreakGlassUsed,
		Text: fmt.Sprintf("%sgrant %d used: %s logged in as %s on %s (session %s)",
			breakGlassMark, g.ID, g.User, login, host, sessionID),
		Fields: f,
	}
}
