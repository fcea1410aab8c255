package evidence

import (
	"bytes"
	"fmt"
	"html/template"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxListRows keeps each list of the summary short enough for one printed
// page; the data files hold every row.
const maxListRows = 10

// view is the summary page, independent of its markup: summary.md and
// summary.html render the same view, so they cannot disagree.
type view struct {
	Title    string
	Lines    []string // introductory paragraphs
	Verify   string   // the auditor's commands, shown as code
	Sections []section
}

type section struct {
	Title  string
	Facts  [][2]string // label, value
	Header []string    // of Rows
	Rows   [][]string
	Empty  string // shown when the section has a Header but no Rows
	More   string // shown when Rows were cut short
}

// dateOf returns the date part of a stored time.
func dateOf(ts string) string {
	if len(ts) >= 10 {
		return ts[:10]
	}
	return ts
}

func fmtSeconds(s int64) string { return (time.Duration(s) * time.Second).String() }

// countsBy renders a map of counts in a fixed order, then any other keys
// sorted: "expired 5, revoked 2".
func countsBy(m map[string]int, order ...string) string {
	keys := slices.Clone(order)
	var extra []string
	for k := range m {
		if !slices.Contains(order, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	var parts []string
	for _, k := range append(keys, extra...) {
		if m[k] > 0 || slices.Contains(order, k) {
			parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
		}
	}
	return strings.Join(parts, ", ")
}

// display makes stored text fit for a summary cell: unprintable characters
// are shown escaped (a command line may hold terminal escapes), and long
// text is cut to keep the page to one sheet.
func display(s string, max int) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 || !utf8.ValidString(s) {
		s = strconv.QuoteToGraphic(s)
	}
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max-1]) + "…"
	}
	return s
}

// cut returns at most maxListRows rows and the note about the rest.
func cut(rows [][]string, file string) ([][]string, string) {
	if len(rows) <= maxListRows {
		return rows, ""
	}
	return rows[:maxListRows], fmt.Sprintf("… and %d more in %s.", len(rows)-maxListRows, file)
}

func buildView(s Summary, d *dataset) view {
	v := view{Title: fmt.Sprintf("Privileged-access evidence: %s, %s", s.Tenant, s.Month)}
	v.Lines = append(v.Lines, fmt.Sprintf("Period %s to %s (UTC). Tenant %s only. Requests, grants and sessions "+
		"are those open at some time in the period, wherever they began; approvals, commands and rotations those made in it.",
		s.PeriodStart, s.PeriodEnd, s.Tenant))
	if s.Partial {
		v.Lines = append(v.Lines, "PARTIAL: the month had not ended when this packet was built; figures stop at the period end above.")
	}
	if !s.WithPolicy {
		v.Lines = append(v.Lines, "Built without a policy: break-glass roles, stale admins, unexplained grants and request TTLs were not judged.")
	}
	v.Lines = append(v.Lines, "Signed with evidence key "+s.EvidenceKey+". This packet's allowed_signers proves nothing by "+
		"itself: verify against the key whose fingerprint your provider gave you through another channel.")
	v.Verify = "# 1. Pin the signing key through another channel than this packet: your provider sends you\n" +
		"#    the output of 'warden evidence key'; check its fingerprint with them (phone, portal), then:\n" +
		"echo '" + signerIdentity + " namespaces=\"" + Namespace + "\" ssh-ed25519 AAAA...(the pinned key)' > pinned_signers\n" +
		"# 2. Check the files and the signature against the pinned key, not against this packet's allowed_signers:\n" +
		"sha256sum -c " + ManifestName + "\n" +
		"ssh-keygen -Y verify -f pinned_signers -I " + signerIdentity + " -n " + Namespace + " -s " + SignatureName + " < " + ManifestName

	v.Sections = append(v.Sections, section{Title: "Elevation", Facts: [][2]string{
		{"Requests", fmt.Sprintf("%d (%s); %d created in the period", s.Requests,
			countsBy(s.RequestsByState, "approved", "denied", "pending"), s.RequestsCreated)},
		{"Approval decisions", fmt.Sprintf("%d approve, %d deny", s.Approvals, s.Denials)},
		{"Grants", fmt.Sprintf("%d (%s); %d started in the period", s.Grants,
			countsBy(s.GrantsByState, "expired", "revoked", "relinquished", "deprovisioned", "active"), s.GrantsStarted)},
		{"Grant duration", fmt.Sprintf("median %s, longest %s (grant %d)", fmtSeconds(s.GrantMedianSeconds),
			fmtSeconds(s.GrantLongestSeconds), s.GrantLongestID)},
	}})

	bg := section{Title: "Break-glass uses", Header: []string{"Grant", "User", "Role", "Started", "Approvers", "Rotation"}, Empty: "None."}
	for _, b := range s.BreakGlass {
		rot := b.Rotation
		if b.Error != "" {
			rot += ": " + b.Error
		}
		bg.Rows = append(bg.Rows, []string{itoa(b.GrantID), b.User, b.Role, b.StartsAt, strings.Join(b.Approvers, ", "), display(rot, 60)})
	}
	bg.Rows, bg.More = cut(bg.Rows, "grants.csv")
	v.Sections = append(v.Sections, bg)

	ps := section{Title: "Privileged sessions", Facts: [][2]string{
		{"Sessions", fmt.Sprintf("%d, of which privileged (under a grant) %d; %d started in the period", s.Sessions,
			s.PrivilegedSessions, s.SessionsStarted)},
		{"Longest privileged", fmt.Sprintf("%s (session %s)", fmtSeconds(s.PrivilegedLongestSeconds), s.PrivilegedLongestID)},
		{"Recordings", fmt.Sprintf("%d indexed with SHA-256, %d missing or altered", s.Recordings, s.RecordingProblems)},
	}, Header: []string{"User", "Privileged sessions", "Total time"}, Empty: "No privileged sessions."}
	for _, u := range s.PrivilegedByUser {
		ps.Rows = append(ps.Rows, []string{u.User, strconv.Itoa(u.Sessions), fmtSeconds(u.Seconds)})
	}
	ps.Rows, ps.More = cut(ps.Rows, "sessions.csv")
	v.Sections = append(v.Sections, ps)

	cs := section{Title: "Commands", Facts: [][2]string{
		{"Commands", fmt.Sprintf("%d run, %d denied (of %d logged)", s.CommandsAllowed, s.CommandsDenied, s.Commands)},
	}, Header: []string{"Time", "User", "Host", "Denied command", "Rule"}, Empty: "No command was denied."}
	for _, c := range d.commands {
		if c.Action == "denied" {
			cs.Rows = append(cs.Rows, []string{c.TS, c.User, c.Login + "@" + c.Host, display(c.Command, 60), display(opt(c.Rule), 30)})
		}
	}
	cs.Rows, cs.More = cut(cs.Rows, "commands.csv")
	v.Sections = append(v.Sections, cs)

	gs := section{Title: "Governance", Facts: [][2]string{
		{"Stale admins closed", fmt.Sprintf("%d flagged with an exception, %d grant(s) ended as deprovisioned (window %dd)",
			s.StaleAdminsFlagged, s.StaleAdminGrantsEnded, s.StaleAfterDays)},
		{"Exceptions", fmt.Sprintf("%d open, %d expired, %d closed in the period", s.ExceptionsOpen, s.ExceptionsExpired, s.ExceptionsClosed)},
	}, Header: []string{"Exception", "Owner", "Expires", "Status", "Reason", "Mitigations"}, Empty: "No open or expired exceptions."}
	for _, e := range d.exceptions {
		if e.Status == "closed" {
			continue
		}
		status := e.Status
		if e.Expired {
			status = "EXPIRED"
		}
		gs.Rows = append(gs.Rows, []string{itoa(e.ID), e.Owner, dateOf(e.ExpiresAt), status, display(e.Reason, 60), display(e.Controls, 80)})
	}
	gs.Rows, gs.More = cut(gs.Rows, "exceptions.csv")
	v.Sections = append(v.Sections, gs)

	od := section{Title: fmt.Sprintf("Overdue items (%d)", len(s.Overdue)), Header: []string{"Kind", "Subject", "Detail"}, Empty: "None."}
	for _, o := range s.Overdue {
		od.Rows = append(od.Rows, []string{o.Kind, display(o.Subject, 40), display(o.Detail, 100)})
	}
	od.Rows, od.More = cut(od.Rows, "summary.json")
	v.Sections = append(v.Sections, od)

	pv := section{Title: "Policies that judged this packet", Header: []string{"Policy SHA-256", "Grants", "Sessions", "Judged"},
		Empty: "None: no policy was recorded or given."}
	for _, p := range s.PolicyVersions {
		var what []string
		if p.EndOfPeriod {
			what = append(what, "end-of-period checks")
		}
		if p.Current {
			what = append(what, "CURRENT policy, for what had no recorded version")
		}
		pv.Rows = append(pv.Rows, []string{p.SHA256, strconv.Itoa(p.Grants), strconv.Itoa(p.Sessions), strings.Join(what, "; ")})
	}
	v.Sections = append(v.Sections, pv)

	v.Sections = append(v.Sections, lifecycleSection(d.lifecycle))

	head := s.AuditChainHead
	if head == "" {
		head = "(no events)"
	}
	v.Sections = append(v.Sections, section{Title: "Integrity", Facts: [][2]string{
		{"Audit chain head at period end", head},
		{"Data files", "requests, approvals, grants, sessions, commands, exceptions, recordings, rotation_events, lifecycle " +
			"(.csv and .json); summary.json; policy-SHA256.json per policy above"},
	}})
	return v
}

// markdown renders v as CommonMark. Every value is escaped, so text typed
// by the people being audited cannot turn into links, HTML or table cells.
func (v view) markdown() []byte {
	var b bytes.Buffer
	b.WriteString("# " + mdEscape(v.Title) + "\n\n")
	for _, l := range v.Lines {
		b.WriteString(mdEscape(l) + "\n\n")
	}
	b.WriteString("Verify:\n\n```\n" + v.Verify + "\n```\n")
	for _, s := range v.Sections {
		b.WriteString("\n## " + mdEscape(s.Title) + "\n\n")
		if len(s.Facts) > 0 {
			b.WriteString("| | |\n|---|---|\n")
			for _, f := range s.Facts {
				b.WriteString("| " + mdEscape(f[0]) + " | " + mdEscape(f[1]) + " |\n")
			}
			if s.Header != nil {
				b.WriteString("\n")
			}
		}
		if s.Header == nil {
			continue
		}
		if len(s.Rows) == 0 {
			b.WriteString(mdEscape(s.Empty) + "\n")
			continue
		}
		b.WriteString("|")
		for _, h := range s.Header {
			b.WriteString(" " + mdEscape(h) + " |")
		}
		b.WriteString("\n|" + strings.Repeat("---|", len(s.Header)) + "\n")
		for _, r := range s.Rows {
			b.WriteString("|")
			for _, c := range r {
				b.WriteString(" " + mdEscape(c) + " |")
			}
			b.WriteString("\n")
		}
		if s.More != "" {
			b.WriteString("\n" + mdEscape(s.More) + "\n")
		}
	}
	return b.Bytes()
}

// mdEscape backslash-escapes the characters that carry inline meaning in
// CommonMark and GitHub tables (emphasis, code, links, HTML, entities,
// strikethrough, cell separators), and those that GitHub's autolinks
// need: ':' (https://, mailto:), '.' (www., domains) and '@' (e-mail). A
// reason such as "see https://evil.example" typed by an audited admin
// must not become a link in the auditor's viewer. An escaped character is
// its own text to the parser, so no autolink rule can span it, and it
// renders as the plain character.
func mdEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|~&!#:.@", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// pageTemplate is the printable page. html/template escapes every value for
// its context; the Content-Security-Policy forbids scripts and remote
// loads, so even a mistake in escaping could not run code in an auditor's
// browser.
var pageTemplate = template.Must(template.New("summary").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{.Title}}</title>
<style>
@page { size: A4; margin: 12mm; }
body { font: 8.5pt/1.3 system-ui, sans-serif; color: #111; max-width: 186mm; margin: 0 auto; }
h1 { font-size: 13pt; margin: 0 0 4pt; }
h2 { font-size: 10pt; margin: 7pt 0 2pt; border-bottom: 1px solid #888; }
p { margin: 2pt 0; }
pre { font-size: 7.5pt; background: #f4f4f4; padding: 3pt; margin: 3pt 0; white-space: pre-wrap; }
table { border-collapse: collapse; width: 100%; margin: 2pt 0; page-break-inside: avoid; }
th, td { border: 1px solid #ccc; padding: 1pt 3pt; text-align: left; vertical-align: top; overflow-wrap: anywhere; }
th { background: #eee; }
table.facts th { width: 28%; background: none; }
</style>
</head>
<body>
<h1>{{.Title}}</h1>
{{range .Lines}}<p>{{.}}</p>
{{end}}<pre>{{.Verify}}</pre>
{{range .Sections}}<h2>{{.Title}}</h2>
{{if .Facts}}<table class="facts">
{{range .Facts}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>
{{end}}</table>
{{end}}{{if .Header}}{{if .Rows}}<table>
<tr>{{range .Header}}<th>{{.}}</th>{{end}}</tr>
{{range .Rows}}<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{end}}</table>
{{if .More}}<p>{{.More}}</p>
{{end}}{{else}}<p>{{.Empty}}</p>
{{end}}{{end}}{{end}}</body>
</html>
`))

func (v view) html() ([]byte, error) {
	var b bytes.Buffer
	if err := pageTemplate.Execute(&b, v); err != nil {
		return nil, fmt.Errorf("evidence: render summary.html: %w", err)
	}
	return b.Bytes(), nil
}
