package audit

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Page sizes of SearchSessions.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Bounds on what a person may type into the session list's search boxes:
// longer input is refused, not cut, so no query runs on less than was asked.
const (
	maxContainsBytes = 1024
	maxPhraseWords   = 32
)

// SessionQuery selects a page of the session list. Zero fields do not
// filter; all that are set must hold.
type SessionQuery struct {
	User      string // exact Warden user name
	Host      string // host name, or TENANT/HOST (as in SessionFilter)
	Tenant    string // exact tenant
	Role      string // exact role
	EndReason string // exact sessions.end_reason, e.g. "exit", "killed"

	// Since and Until bound started_at: Since <= started_at < Until. A
	// zero time leaves that end open.
	Since, Until time.Time

	// Tenants is the asking person's scope: nil means every tenant, an
	// empty non-nil list means none (a viewer who oversees no tenant gets
	// an empty page, whatever else is asked).
	Tenants []string
	// IDs, when not nil, keeps only these sessions (the console passes the
	// live sessions' IDs for "live only"); an empty non-nil list keeps none.
	IDs []string

	// CommandContains keeps sessions with a logged command (any source:
	// shell lines, exec commands, file operations) that contains this text;
	// case-insensitive for ASCII letters. At most 1024 bytes.
	CommandContains string
	// OutputContains keeps sessions whose recording showed these words on
	// screen, in this order and next to each other (a phrase): the words
	// are runs of letters and digits, matched whole, case-insensitively and
	// without diacritics, through the output index (output_index.go).
	// Punctuation separates words and is otherwise ignored, so "DROP
	// TABLE;" finds "drop  table" and "drop-table"; a part of a word does
	// not match ("TABL" does not find "TABLE"). At most 32 words.
	OutputContains string

	// After is the Next of the previous page; "" asks for the first page.
	After string
	// Limit is the page size: DefaultPageSize when 0 or less, at most
	// MaxPageSize.
	Limit int
}

// SessionPage is one page of the session list, newest first.
type SessionPage struct {
	Sessions []Session
	// Next is the cursor of the following page for SessionQuery.After;
	// "" when this page is the last.
	Next string
}

// SearchSessions returns a page of the sessions that match q, ordered by
// started_at and then id, both descending. Pages are cut by the last row's
// (started_at, id) rather than by an offset, so a deep page costs what the
// first one does, and sessions that start while someone pages through the
// list neither repeat a row nor hide one. A malformed cursor or search text
// is an error matching ErrInvalid (the console's 400); nothing the user
// typed is ever part of the SQL text.
func (r *Reader) SearchSessions(ctx context.Context, q SessionQuery) (SessionPage, error) {
	if (q.Tenants != nil && len(q.Tenants) == 0) || (q.IDs != nil && len(q.IDs) == 0) {
		return SessionPage{}, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultPageSize
	}
	limit = min(limit, MaxPageSize)
	// OutputContains is reduced to its words (outputPhrase): NUL separates.
	for _, f := range append([]string{q.User, q.Host, q.Tenant, q.Role, q.EndReason, q.CommandContains}, append(q.Tenants, q.IDs...)...) {
		if err := r.d.checkSearch("search", f); err != nil {
			return SessionPage{}, err
		}
	}

	var where []string
	var args []any
	add := func(cond string, a ...any) { where, args = append(where, cond), append(args, a...) }
	if q.User != "" {
		add("s.user = ?", q.User)
	}
	if tenant, host, ok := strings.Cut(q.Host, "/"); ok {
		add("s.tenant = ? AND s.host = ?", tenant, host)
	} else if q.Host != "" {
		add("s.host = ?", q.Host)
	}
	if q.Tenant != "" {
		add("s.tenant = ?", q.Tenant)
	}
	if q.Role != "" {
		add("s.role = ?", q.Role)
	}
	if q.EndReason != "" {
		add("s.end_reason = ?", q.EndReason)
	}
	if !q.Since.IsZero() {
		since, err := formatTime(q.Since)
		if err != nil {
			return SessionPage{}, err
		}
		add("s.started_at >= ?", since)
	}
	if !q.Until.IsZero() {
		until, err := formatTime(q.Until)
		if err != nil {
			return SessionPage{}, err
		}
		add("s.started_at < ?", until)
	}
	if q.Tenants != nil {
		list, err := jsonList(q.Tenants)
		if err != nil {
			return SessionPage{}, err
		}
		add("s.tenant IN ("+r.d.jsonList+")", list)
	}
	if q.IDs != nil {
		list, err := jsonList(q.IDs)
		if err != nil {
			return SessionPage{}, err
		}
		add("s.id IN ("+r.d.jsonList+")", list)
	}
	if q.After != "" {
		started, id, err := decodeCursor(q.After)
		if err != nil {
			return SessionPage{}, err
		}
		// Written so that started_at alone bounds an index range; the
		// OR settles ties on the id.
		add("s.started_at <= ? AND (s.started_at < ? OR s.id < ?)", started, started, id)
	}
	var like string
	if q.CommandContains != "" {
		if len(q.CommandContains) > maxContainsBytes {
			return SessionPage{}, invalidf("command search longer than %d bytes", maxContainsBytes)
		}
		like = "%" + escapeLike(q.CommandContains) + "%"
	}
	if q.OutputContains != "" {
		words, err := outputPhrase(q.OutputContains)
		if err != nil {
			return SessionPage{}, err
		}
		add(`s.id IN (SELECT k.session_id FROM session_output_chunks k
			WHERE k.docid IN (SELECT docid FROM session_output_fts WHERE `+r.d.outputMatch+`))`, r.d.outputPattern(words))
	}
	if like == "" {
		return r.queryPage(ctx, "sessions", where, args, limit)
	}

	// "Command contains" is a substring, which no index can seek, and the
	// cheap plan depends on how many sessions match. When many do, walking
	// the sessions newest first and probing each one's commands fills a
	// page after a few dozen sessions; when few do, that walk would probe
	// every session, and one scan of the covering index
	// commands_session_command that collects the matching sessions is
	// cheaper. So the walk is tried on the newest probeWindow candidates
	// first, and the scan runs only when they did not fill the page.
	exists := `EXISTS (SELECT 1 FROM commands c WHERE c.session_id = s.id AND c.command ` + r.d.like + ` ? ESCAPE '\')`
	window := "(SELECT * FROM sessions s"
	if len(where) > 0 {
		window += " WHERE " + strings.Join(where, " AND ")
	}
	window += " ORDER BY s.started_at DESC, s.id DESC LIMIT ?)"
	wargs := append(append([]any{}, args...), probeWindow+1)
	page, n, err := r.probePage(ctx, window, wargs, exists, like, limit)
	if err != nil || page.Next != "" || n <= probeWindow {
		// A full page, or a window that held every candidate: done.
		return page, err
	}
	in := `s.id IN (SELECT c.session_id FROM commands c WHERE c.command ` + r.d.like + ` ? ESCAPE '\')`
	return r.queryPage(ctx, "sessions", append(where, in), append(args, like), limit)
}

// probeWindow is how many of the newest candidate sessions the command
// search probes one by one before it scans the command log instead.
const probeWindow = 1000

// probePage runs the page query over window, the newest candidates (at
// most probeWindow+1 of them), keeping those for which cond holds. It also
// returns how many candidates the window held.
func (r *Reader) probePage(ctx context.Context, window string, wargs []any, cond, like string, limit int) (SessionPage, int, error) {
	var n int
	if err := r.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+window+" w", wargs...).Scan(&n); err != nil {
		return SessionPage{}, 0, fmt.Errorf("audit: search sessions: %w", err)
	}
	page, err := r.queryPage(ctx, window, []string{cond}, append(append([]any{}, wargs...), like), limit)
	if n > probeWindow && page.Next == "" {
		// The window's last candidates may not be the list's last: the
		// page is not known to be complete.
		return SessionPage{}, n, err
	}
	return page, n, err
}

// queryPage selects up to limit sessions from source (a table or a
// subquery, aliased s) under the conditions where, newest first, with the
// cursor of the next page when there is one.
func (r *Reader) queryPage(ctx context.Context, source string, where []string, args []any, limit int) (SessionPage, error) {
	stmt := "SELECT " + prefixed("s.", sessionColumns) + " FROM " + source + " s"
	if len(where) > 0 {
		stmt += " WHERE " + strings.Join(where, " AND ")
	}
	// One row more than the page tells whether there is a next page.
	stmt += " ORDER BY s.started_at DESC, s.id DESC LIMIT ?"
	args = append(args, limit+1)
	rows, err := r.db.QueryContext(ctx, stmt, args...)
	if err != nil {
		return SessionPage{}, fmt.Errorf("audit: search sessions: %w", err)
	}
	defer rows.Close()
	var page SessionPage
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return SessionPage{}, err
		}
		page.Sessions = append(page.Sessions, sess)
	}
	if err := rows.Err(); err != nil {
		return SessionPage{}, fmt.Errorf("audit: search sessions: %w", err)
	}
	if len(page.Sessions) > limit {
		page.Sessions = page.Sessions[:limit]
		last := page.Sessions[limit-1]
		page.Next = encodeCursor(last.StartedAt, last.ID)
	}
	return page, nil
}

// prefixed qualifies each column of a comma-separated list.
func prefixed(prefix, cols string) string {
	parts := strings.Split(cols, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

// jsonList encodes a list for json_each: one bound parameter however many
// tenants or IDs, so no list can run into SQLite's limit on parameters.
func jsonList(list []string) (string, error) {
	b, err := json.Marshal(list)
	if err != nil {
		return "", invalidf("list: %v", err)
	}
	return string(b), nil
}

// escapeLike makes s a literal inside a LIKE pattern with ESCAPE '\'.
func escapeLike(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// cursorVersion starts every cursor, so that a later format can tell its
// own cursors from these.
const cursorVersion = "1."

// encodeCursor returns the opaque cursor after the row (started, id). It is
// not secret and not signed: a forged one only moves where a page starts,
// and every filter, the tenant scope included, still applies.
func encodeCursor(started time.Time, id string) string {
	s, _ := formatTime(started) // read from the database, so formattable
	return cursorVersion + base64.RawURLEncoding.EncodeToString([]byte(s+id))
}

// decodeCursor checks a cursor strictly: the version, base64url, a stored
// time's exact text and a session ID's alphabet. Anything else is an error
// matching ErrInvalid.
func decodeCursor(c string) (started, id string, err error) {
	bad := invalidf("bad page cursor: start again from the first page")
	rest, ok := strings.CutPrefix(c, cursorVersion)
	if !ok || len(c) > 512 {
		return "", "", bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(raw) <= len(timeLayout) {
		return "", "", bad
	}
	started, id = string(raw[:len(timeLayout)]), string(raw[len(timeLayout):])
	if _, err := parseTime(started); err != nil {
		return "", "", bad
	}
	if checkSessionID(id) != nil {
		return "", "", bad
	}
	return started, id, nil
}
