package evidence

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/policy"
)

// Summary holds the headline numbers of a packet: what summary.md and
// summary.html show, and summary.json holds. Every number is computed from
// the packet's own data files, so an auditor can recount it.
type Summary struct {
	Tenant      string `json:"tenant"`
	Month       string `json:"month"`        // YYYY-MM
	PeriodStart string `json:"period_start"` // inclusive
	PeriodEnd   string `json:"period_end"`   // exclusive
	Partial     bool   `json:"partial"`      // the month was still running
	WithPolicy  bool   `json:"with_policy"`  // break-glass, staleness and TTLs were judged by a policy

	// Requests, grants and sessions count those open at some time in the
	// period, wherever they began; the *Created/*Started counts those that
	// began in it. So the two packets a midnight spans both show it.
	Requests        int            `json:"requests"`
	RequestsCreated int            `json:"requests_created"`
	RequestsByState map[string]int `json:"requests_by_state"` // state at the end of the period
	Approvals       int            `json:"approvals"`         // approve decisions in the period
	Denials         int            `json:"denials"`           // deny decisions in the period

	Grants              int            `json:"grants"`
	GrantsStarted       int            `json:"grants_started"`
	GrantsByState       map[string]int `json:"grants_by_state"`
	GrantMedianSeconds  int64          `json:"grant_median_seconds"`
	GrantLongestSeconds int64          `json:"grant_longest_seconds"`
	GrantLongestID      int64          `json:"grant_longest_id"`
	BreakGlass          []BreakGlass   `json:"break_glass"`

	Sessions                 int            `json:"sessions"`
	SessionsStarted          int            `json:"sessions_started"`
	PrivilegedSessions       int            `json:"privileged_sessions"` // with a grant_id
	PrivilegedLongestSeconds int64          `json:"privileged_longest_seconds"`
	PrivilegedLongestID      string         `json:"privileged_longest_id"`
	PrivilegedByUser         []UserSessions `json:"privileged_by_user"`
	Commands                 int            `json:"commands"`
	CommandsAllowed          int            `json:"commands_allowed"`
	CommandsDenied           int            `json:"commands_denied"`
	Recordings               int            `json:"recordings"`
	RecordingProblems        int            `json:"recording_problems"` // missing, altered, unreadable, unsafe path

	StaleAfterDays        int `json:"stale_after_days"`
	StaleAdminsFlagged    int `json:"stale_admins_flagged"`     // reconcile.stale_admin events in the period
	StaleAdminGrantsEnded int `json:"stale_admin_grants_ended"` // grants of the period ended as deprovisioned
	ExceptionsOpen        int `json:"exceptions_open"`          // at the end of the period
	ExceptionsExpired     int `json:"exceptions_expired"`
	ExceptionsClosed      int `json:"exceptions_closed"` // closed during the period

	Overdue       []OverdueItem  `json:"overdue"`
	OverdueByKind map[string]int `json:"overdue_by_kind"`
	// PolicyVersions are the policies that judged the packet (see
	// PolicyVersion); each has its extract in the packet.
	PolicyVersions []PolicyVersion `json:"policy_versions"`

	AuditChainHead string `json:"audit_chain_head"` // hash of the last audit event before the end
	EvidenceKey    string `json:"evidence_key"`     // SHA256 fingerprint of the signing key
}

// BreakGlass is one use of a break-glass role: a grant of it.
type BreakGlass struct {
	GrantID   int64    `json:"grant_id"`
	User      string   `json:"user"`
	Role      string   `json:"role"`
	StartsAt  string   `json:"starts_at"`
	Approvers []string `json:"approvers"` // who approved its request, sorted
	Rotation  string   `json:"rotation"`  // succeeded, failed, unknown, or pending
	Error     string   `json:"error,omitempty"`
}

// UserSessions is one user's privileged sessions in the period.
type UserSessions struct {
	User     string `json:"user"`
	Sessions int    `json:"sessions"`
	Seconds  int64  `json:"seconds"` // total of the finished ones
}

// Overdue item kinds, in the order they are listed.
const (
	OverdueException  = "expired-exception"
	OverdueStaleAdmin = "stale-admin"
	OverdueRotation   = "failed-rotation"
	OverdueRequest    = "pending-request"
	OverdueGrant      = "unexplained-grant"
	OverdueRecording  = "recording"
	OverdueTampered   = "tampered-row" // a row disagrees with the hash chain
)

var overdueOrder = []string{OverdueException, OverdueStaleAdmin, OverdueRotation, OverdueRotationOwed, OverdueRequest, OverdueGrant,
	OverdueRecording, OverdueTampered}

// OverdueItem is something that should have been dealt with by the end of
// the period and was not.
type OverdueItem struct {
	Kind    string `json:"kind"`
	Subject string `json:"subject"` // e.g. "exception 3", "user alice"
	Detail  string `json:"detail"`
}

// defaultRequestTTL is the policy's default request_ttl, used for requests
// whose role the policy no longer has.
const defaultRequestTTL = 24 * time.Hour

// summarize computes the headline numbers from d. rec is the
// reconciliation at the end of the period, nil without a policy.
func summarize(d *dataset, tenant string, p period, cfg *policy.Config, rec *Reconciliation, window time.Duration) Summary {
	s := Summary{
		Tenant: tenant, Month: p.start.Format("2006-01"), PeriodStart: p.startTxt, PeriodEnd: p.endTxt,
		Partial: p.partial, WithPolicy: cfg != nil, AuditChainHead: d.chainHead,
		StaleAfterDays:  int(window / (24 * time.Hour)),
		RequestsByState: map[string]int{}, GrantsByState: map[string]int{}, OverdueByKind: map[string]int{},
		BreakGlass: []BreakGlass{}, PrivilegedByUser: []UserSessions{},
	}
	s.Requests = len(d.requests)
	for _, r := range d.requests {
		s.RequestsByState[r.State]++
		if r.CreatedAt >= p.startTxt {
			s.RequestsCreated++
		}
	}
	for _, a := range d.approvals {
		switch decisionKind(a.Decision) {
		case "approve":
			s.Approvals++
		case "deny":
			s.Denials++
		}
	}
	summarizeGrants(&s, d)
	summarizeSessions(&s, d)
	for _, g := range d.grants {
		if g.StartsAt >= p.startTxt {
			s.GrantsStarted++
		}
	}
	for _, x := range d.sessions {
		if x.StartedAt >= p.startTxt {
			s.SessionsStarted++
		}
	}
	for _, c := range d.commands {
		s.Commands++
		if c.Action == "denied" {
			s.CommandsDenied++
		} else {
			s.CommandsAllowed++
		}
	}
	s.Recordings = len(d.recordings)
	for _, r := range d.recordings {
		if r.Status != "ok" && r.Status != "unfinished" {
			s.RecordingProblems++
		}
	}
	s.StaleAdminsFlagged = len(d.flagged)
	for _, e := range d.exceptions {
		switch e.Status {
		case "open":
			s.ExceptionsOpen++
		case "expired":
			s.ExceptionsExpired++
		case "closed":
			s.ExceptionsClosed++
		}
	}
	s.Overdue = overdue(&s, d, p, cfg, rec)
	return s
}

// decisionKind maps a stored approval decision to "approve" or "deny".
func decisionKind(d string) string {
	switch strings.ToLower(d) {
	case "approve", "approved":
		return "approve"
	case "deny", "denied":
		return "deny"
	}
	return ""
}

func summarizeGrants(s *Summary, d *dataset) {
	s.Grants = len(d.grants)
	var durations []int64
	for _, g := range d.grants {
		s.GrantsByState[g.State]++
		if g.State == "deprovisioned" {
			s.StaleAdminGrantsEnded++
		}
		durations = append(durations, g.DurationSeconds)
		if g.DurationSeconds > s.GrantLongestSeconds || s.GrantLongestID == 0 {
			s.GrantLongestSeconds, s.GrantLongestID = g.DurationSeconds, g.ID
		}
		if !g.BreakGlass {
			continue
		}
		bg := BreakGlass{GrantID: g.ID, User: g.User, Role: g.Role, StartsAt: g.StartsAt,
			Approvers: append([]string{}, d.approvers[g.ID]...)}
		if r, ok := rotationFor(d.rotations, g.ID); ok {
			bg.Rotation, bg.Error = r.Outcome, r.Error
		} else {
			bg.Rotation = "pending"
		}
		s.BreakGlass = append(s.BreakGlass, bg)
	}
	s.GrantMedianSeconds = median(durations)
}

func summarizeSessions(s *Summary, d *dataset) {
	s.Sessions = len(d.sessions)
	byUser := map[string]*UserSessions{}
	for _, x := range d.sessions {
		if !x.Privileged {
			continue
		}
		s.PrivilegedSessions++
		u := byUser[x.User]
		if u == nil {
			u = &UserSessions{User: x.User}
			byUser[x.User] = u
		}
		u.Sessions++
		if x.DurationSeconds != nil {
			u.Seconds += *x.DurationSeconds
			if *x.DurationSeconds > s.PrivilegedLongestSeconds || s.PrivilegedLongestID == "" {
				s.PrivilegedLongestSeconds, s.PrivilegedLongestID = *x.DurationSeconds, x.ID
			}
		}
	}
	for _, u := range byUser {
		s.PrivilegedByUser = append(s.PrivilegedByUser, *u)
	}
	slices.SortFunc(s.PrivilegedByUser, func(a, b UserSessions) int {
		return cmp.Or(cmp.Compare(b.Sessions, a.Sessions), strings.Compare(a.User, b.User))
	})
}

// median is the middle value, or the mean of the two middle values.
func median(v []int64) int64 {
	if len(v) == 0 {
		return 0
	}
	v = slices.Clone(v)
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

func overdue(s *Summary, d *dataset, p period, cfg *policy.Config, rec *Reconciliation) []OverdueItem {
	out := []OverdueItem{}
	add := func(kind, subject, format string, args ...any) {
		s.OverdueByKind[kind]++
		out = append(out, OverdueItem{Kind: kind, Subject: subject, Detail: fmt.Sprintf(format, args...)})
	}
	for _, e := range d.exceptions {
		if e.Expired {
			add(OverdueException, fmt.Sprintf("exception %d", e.ID), "owner %s; expired %s", e.Owner, e.ExpiresAt)
		}
	}
	if rec != nil {
		for _, st := range rec.Stale {
			last := "never activated"
			if !st.LastActivation.IsZero() {
				last = "last activation " + st.LastActivation.UTC().Format(time.DateOnly)
			}
			add(OverdueStaleAdmin, "user "+st.User, "eligible for %s; %s", strings.Join(st.Roles, ", "), last)
		}
		for _, g := range rec.Unexplained {
			add(OverdueGrant, fmt.Sprintf("grant %d", g.GrantID), "%s holds %s: %s", g.User, g.Role, g.Why)
		}
	}
	for _, r := range openFailures(d.rotations) {
		if d.owes(r.GrantID) {
			continue // listed once below, as owed
		}
		detail := "rotation failed at " + r.TS
		if r.Error != "" {
			detail += ": " + r.Error
		}
		add(OverdueRotation, "role "+r.Role, "%s", detail)
	}
	for _, o := range d.owedRotationItems() {
		add(o.Kind, o.Subject, "%s", o.Detail)
	}
	for _, r := range d.pending {
		ttl := defaultRequestTTL
		if cfg != nil {
			if role := cfg.Role(r.Role); role != nil && role.RequestTTL > 0 {
				ttl = role.RequestTTL.Std()
			}
		}
		if r.CreatedAt.Add(ttl).Before(p.end) {
			add(OverdueRequest, fmt.Sprintf("request %d", r.ID), "%s for %s, pending since %s (TTL %s)",
				r.User, r.Role, r.CreatedAt.UTC().Format(time.RFC3339), ttl)
		}
	}
	for _, r := range d.recordings {
		if r.Status != "ok" && r.Status != "unfinished" {
			add(OverdueRecording, r.Path, "session %s: %s", r.SessionID, r.Status)
		}
	}
	for _, m := range d.versionMismatch {
		add(OverdueTampered, fmt.Sprintf("grant %d", m.GrantID), "grants.policy_version is %q but the audit chain says %s; judged by the chain's",
			m.Row, m.Chain)
	}
	if d.prevHead != "" {
		add(OverdueTampered, "audit chain", "%s", d.prevHead)
	}
	for _, pr := range d.rowProblems {
		subject := fmt.Sprintf("request %d", pr.Request)
		if pr.Grant != 0 {
			subject = fmt.Sprintf("grant %d", pr.Grant)
		}
		add(OverdueTampered, subject, "%s", pr.Msg)
	}
	slices.SortStableFunc(out, func(a, b OverdueItem) int {
		return cmp.Compare(slices.Index(overdueOrder, a.Kind), slices.Index(overdueOrder, b.Kind))
	})
	return out
}
