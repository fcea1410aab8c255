package evidence

import (
	"bytes"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
)

// The data files of a packet. Each is written as NAME.csv and NAME.json
// with the same columns: the columns of the table in CONTRACT.md section 5,
// in its order, then a few derived columns. Values are as they stood at the
// end of the period (see doc.go), times in the stored RFC 3339 UTC text.

type requestRow struct {
	ID        int64   `json:"id"`
	User      string  `json:"user"`
	Role      string  `json:"role"`
	Tenant    string  `json:"tenant"`
	Reason    *string `json:"reason"`
	Ticket    *string `json:"ticket"`
	Duration  string  `json:"duration"`
	State     string  `json:"state"` // at the end of the period
	CreatedAt string  `json:"created_at"`
	DecidedAt *string `json:"decided_at"`
}

var requestHeader = []string{"id", "user", "role", "tenant", "reason", "ticket", "duration", "state", "created_at", "decided_at"}

func (r requestRow) csv() []string {
	return []string{itoa(r.ID), cell(r.User), cell(r.Role), cell(r.Tenant), optCell(r.Reason), optCell(r.Ticket),
		cell(r.Duration), cell(r.State), cell(r.CreatedAt), optCell(r.DecidedAt)}
}

type approvalRow struct {
	RequestID int64   `json:"request_id"`
	Approver  string  `json:"approver"`
	Decision  string  `json:"decision"`
	Comment   *string `json:"comment"`
	TS        string  `json:"ts"`
	Role      string  `json:"role"` // of the request, for reading without a join
}

var approvalHeader = []string{"request_id", "approver", "decision", "comment", "ts", "role"}

func (a approvalRow) csv() []string {
	return []string{itoa(a.RequestID), cell(a.Approver), cell(a.Decision), optCell(a.Comment), cell(a.TS), cell(a.Role)}
}

type grantRow struct {
	ID              int64   `json:"id"`
	RequestID       *int64  `json:"request_id"`
	User            string  `json:"user"`
	Role            string  `json:"role"`
	Tenant          string  `json:"tenant"`
	StartsAt        string  `json:"starts_at"`
	ExpiresAt       string  `json:"expires_at"`
	EndedAt         *string `json:"ended_at"`
	EndReason       *string `json:"end_reason"`
	State           string  `json:"state"`             // active, or how it ended
	DurationSeconds int64   `json:"duration_seconds"`  // ended_at (else expires_at) minus starts_at
	BreakGlass      bool    `json:"break_glass"`       // by the policy in JudgedBy
	PolicyVersion   string  `json:"policy_version"`    // recorded with the grant; "" before versions were recorded
	JudgedBy        string  `json:"judged_by"`         // SHA-256 of the policy that judged it; "" for none
	JudgedByCurrent bool    `json:"judged_by_current"` // no usable recorded version: the build's policy judged it
}

var grantHeader = []string{"id", "request_id", "user", "role", "tenant", "starts_at", "expires_at", "ended_at",
	"end_reason", "state", "duration_seconds", "break_glass", "policy_version", "judged_by", "judged_by_current"}

func (g grantRow) csv() []string {
	return []string{itoa(g.ID), optInt(g.RequestID), cell(g.User), cell(g.Role), cell(g.Tenant), cell(g.StartsAt), cell(g.ExpiresAt),
		optCell(g.EndedAt), optCell(g.EndReason), cell(g.State), itoa(g.DurationSeconds), strconv.FormatBool(g.BreakGlass),
		cell(g.PolicyVersion), cell(g.JudgedBy), strconv.FormatBool(g.JudgedByCurrent)}
}

type sessionRow struct {
	ID              string  `json:"id"`
	User            string  `json:"user"`
	Login           string  `json:"login"`
	Host            string  `json:"host"`
	Tenant          string  `json:"tenant"`
	Role            *string `json:"role"`
	GrantID         *int64  `json:"grant_id"`
	ClientAddr      *string `json:"client_addr"`
	StartedAt       string  `json:"started_at"`
	EndedAt         *string `json:"ended_at"`
	EndReason       *string `json:"end_reason"`
	ExitStatus      *int64  `json:"exit_status"`
	RecordingPath   *string `json:"recording_path"`
	RecordingSHA256 *string `json:"recording_sha256"`
	BytesIn         int64   `json:"bytes_in"`
	BytesOut        int64   `json:"bytes_out"`
	Privileged      bool    `json:"privileged"`       // ran under a grant
	DurationSeconds *int64  `json:"duration_seconds"` // null while live at the end of the period
	PolicyVersion   string  `json:"policy_version"`   // of the policy that admitted it; "" before versions were recorded
}

var sessionHeader = []string{"id", "user", "login", "host", "tenant", "role", "grant_id", "client_addr", "started_at",
	"ended_at", "end_reason", "exit_status", "recording_path", "recording_sha256", "bytes_in", "bytes_out",
	"privileged", "duration_seconds", "policy_version"}

func (s sessionRow) csv() []string {
	return []string{cell(s.ID), cell(s.User), cell(s.Login), cell(s.Host), cell(s.Tenant), optCell(s.Role),
		optInt(s.GrantID), optCell(s.ClientAddr), cell(s.StartedAt), optCell(s.EndedAt), optCell(s.EndReason), optInt(s.ExitStatus),
		optCell(s.RecordingPath), optCell(s.RecordingSHA256), itoa(s.BytesIn), itoa(s.BytesOut),
		strconv.FormatBool(s.Privileged), optInt(s.DurationSeconds), cell(s.PolicyVersion)}
}

type commandRow struct {
	ID        int64   `json:"id"`
	SessionID string  `json:"session_id"`
	TS        string  `json:"ts"`
	User      string  `json:"user"`
	Login     string  `json:"login"`
	Host      string  `json:"host"`
	Tenant    string  `json:"tenant"`
	Source    string  `json:"source"`
	Command   string  `json:"command"`
	Action    string  `json:"action"`
	Rule      *string `json:"rule"`
}

var commandHeader = []string{"id", "session_id", "ts", "user", "login", "host", "tenant", "source", "command", "action", "rule"}

func (c commandRow) csv() []string {
	return []string{itoa(c.ID), cell(c.SessionID), cell(c.TS), cell(c.User), cell(c.Login), cell(c.Host), cell(c.Tenant),
		cell(c.Source), cell(c.Command), cell(c.Action), optCell(c.Rule)}
}

type exceptionRow struct {
	ID        int64   `json:"id"`
	Tenant    string  `json:"tenant"`
	Owner     string  `json:"owner"`
	Reason    string  `json:"reason"`
	Controls  string  `json:"controls"`
	ExpiresAt string  `json:"expires_at"`
	CreatedBy string  `json:"created_by"`
	CreatedAt string  `json:"created_at"`
	ClosedAt  *string `json:"closed_at"`
	ClosedBy  *string `json:"closed_by"`
	CloseNote *string `json:"close_note"`
	Status    string  `json:"status"`  // open, expired or closed at the end of the period
	Expired   bool    `json:"expired"` // open with its expiry passed
}

var exceptionHeader = []string{"id", "tenant", "owner", "reason", "controls", "expires_at", "created_by", "created_at",
	"closed_at", "closed_by", "close_note", "status", "expired"}

func (e exceptionRow) csv() []string {
	return []string{itoa(e.ID), cell(e.Tenant), cell(e.Owner), cell(e.Reason), cell(e.Controls), cell(e.ExpiresAt),
		cell(e.CreatedBy), cell(e.CreatedAt), optCell(e.ClosedAt), optCell(e.ClosedBy), optCell(e.CloseNote), e.Status,
		strconv.FormatBool(e.Expired)}
}

// recordingRow indexes one session recording. Status is what re-hashing the
// file found when the packet was built: ok, mismatch, missing, unsafe-path
// (a path that leaves the data directory; not opened), or unfinished (no
// digest yet at the end of the period).
type recordingRow struct {
	SessionID string `json:"session_id"`
	User      string `json:"user"`
	Host      string `json:"host"`
	StartedAt string `json:"started_at"`
	Path      string `json:"path"`
	SHA256    string `json:"sha256"`
	Size      int64  `json:"size"`
	Status    string `json:"status"`
}

var recordingHeader = []string{"session_id", "user", "host", "started_at", "path", "sha256", "size", "status"}

func (r recordingRow) csv() []string {
	return []string{cell(r.SessionID), cell(r.User), cell(r.Host), cell(r.StartedAt), cell(r.Path), cell(r.SHA256),
		itoa(r.Size), r.Status}
}

// rotationRow is one rotation.result audit event of the period: a
// break-glass credential rotated (or not) after its grant ended. The
// event is in the packet of the month of its time, even when its grant
// ended in the month before.
type rotationRow struct {
	Seq     int64  `json:"seq"` // of the audit event
	TS      string `json:"ts"`
	GrantID int64  `json:"grant_id"`
	Role    string `json:"role"`
	Outcome string `json:"outcome"` // succeeded, failed or unknown
	Error   string `json:"error"`
}

var rotationHeader = []string{"seq", "ts", "grant_id", "role", "outcome", "error"}

func (r rotationRow) csv() []string {
	return []string{itoa(r.Seq), cell(r.TS), itoa(r.GrantID), cell(r.Role), r.Outcome, cell(r.Error)}
}

// csvRow is a row that renders itself as CSV cells.
type csvRow interface{ csv() []string }

// encodeTable renders rows as CSV (with header) and as a JSON array with one
// object per line, so that large files stay diffable and streamable.
func encodeTable[T csvRow](header []string, rows []T) (csvData, jsonData []byte, err error) {
	var cb bytes.Buffer
	w := csv.NewWriter(&cb)
	if err := w.Write(header); err != nil {
		return nil, nil, err
	}
	for _, r := range rows {
		if err := w.Write(r.csv()); err != nil {
			return nil, nil, err
		}
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return nil, nil, err
	}
	var jb bytes.Buffer
	jb.WriteString("[")
	enc := json.NewEncoder(&jb)
	enc.SetEscapeHTML(false)
	for i, r := range rows {
		if i > 0 {
			jb.WriteString(",")
		}
		jb.WriteString("\n")
		if err := enc.Encode(r); err != nil {
			return nil, nil, err
		}
		jb.Truncate(jb.Len() - 1) // Encode's newline; the separator comes first
	}
	if len(rows) > 0 {
		jb.WriteString("\n")
	}
	jb.WriteString("]\n")
	return cb.Bytes(), jb.Bytes(), nil
}

// cell guards a text value against spreadsheet formula injection: auditors
// open CSV files in spreadsheet programs, which run a cell starting with
// '=', '+', '-', '@' (or a tab or CR) as a formula, and command lines and
// reasons are typed by the people being audited. Such a value gets a
// leading apostrophe, the OWASP-recommended neutraliser; the JSON file keeps
// the exact value. Every text cell passes through it, times included, since
// anyone who can write warden.db can put anything in any column.
func cell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func optCell(p *string) string {
	if p == nil {
		return ""
	}
	return cell(*p)
}

// opt renders an optional value as is, for display.
func opt(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func optInt(p *int64) string {
	if p == nil {
		return ""
	}
	return itoa(*p)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func nullStr(ns sql.NullString) *string {
	if !ns.Valid {
		return nil
	}
	s := ns.String
	return &s
}

func nullInt(ni sql.NullInt64) *int64 {
	if !ni.Valid {
		return nil
	}
	n := ni.Int64
	return &n
}
