package notify

import "strings"

// Event types Warden sends. Receivers may branch on them; new types may be
// added, so receivers should ignore types they do not know.
const (
	TypeRequestCreated = "request.created" // someone asked for a privileged role
	TypeRequestDecided = "request.decided" // an approver approved or denied a request
	TypeGrantExpiring  = "grant.expiring"  // a grant ends in five minutes
	TypeGrantEnded     = "grant.ended"     // a grant expired, was revoked or relinquished
	TypeBreakGlassUsed = "breakglass.used" // a break-glass grant opened its first session
	TypeRotationResult = "rotation.result" // a break-glass credential was rotated, or not
)

// Event is one notification.
type Event struct {
	// Type says what happened, e.g. TypeRequestCreated.
	Type string
	// Text is one human-readable line in Slack's mrkdwn. Text that came
	// from users (reasons, comments) must be passed through Escape first.
	Text string
	// Fields are the structured details (IDs, user, role, times). They must
	// be encodable as JSON; nil is sent as an empty object.
	Fields map[string]any
}

// slackEscaper replaces the three characters Slack gives meaning to.
var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// Escape makes s safe to embed in Event.Text. Slack reads <...> as a link or
// a mention, so a request reason of "<!channel>" would page everyone, and
// "<https://evil|ticket>" would disguise a link; escaped, they are shown as
// typed.
func Escape(s string) string { return slackEscaper.Replace(s) }
