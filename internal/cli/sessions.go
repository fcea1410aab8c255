package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"regexp"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/recorder"
)

// sessionJSON is the stable --json form of a session (CONTRACT §5 columns).
type sessionJSON struct {
	ID              string `json:"id"`
	User            string `json:"user"`
	Login           string `json:"login"`
	Host            string `json:"host"`
	Tenant          string `json:"tenant"`
	Role            string `json:"role"`
	GrantID         *int64 `json:"grant_id"`
	ClientAddr      string `json:"client_addr"`
	StartedAt       string `json:"started_at"`
	EndedAt         string `json:"ended_at,omitempty"`
	EndReason       string `json:"end_reason,omitempty"`
	ExitStatus      *int   `json:"exit_status"`
	RecordingPath   string `json:"recording_path,omitempty"`
	RecordingSHA256 string `json:"recording_sha256,omitempty"`
	BytesIn         int64  `json:"bytes_in"`
	BytesOut        int64  `json:"bytes_out"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func toSessionJSON(s audit.Session) sessionJSON {
	j := sessionJSON{
		ID: s.ID, User: s.User, Login: s.Login, Host: s.Host, Tenant: s.Tenant, Role: s.Role,
		ClientAddr: s.ClientAddr, StartedAt: rfc3339(s.StartedAt), EndedAt: rfc3339(s.EndedAt),
		EndReason: s.EndReason, ExitStatus: s.ExitStatus, RecordingPath: s.RecordingPath,
		RecordingSHA256: s.RecordingSHA256, BytesIn: s.BytesIn, BytesOut: s.BytesOut,
	}
	if s.GrantID != 0 {
		g := s.GrantID
		j.GrantID = &g
	}
	return j
}

func runSessions(e *env, args []string) error {
	fs := newFlags(e, "sessions", "sessions [-c FILE | --data DIR] [--user U] [--host H] [--since T] [--json]")
	cfgPath := fs.String("c", "", "policy whose store (store.driver, data_dir) to read (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory of a SQLite store (default: data_dir of ./warden.yaml, else ./data)")
	user := fs.String("user", "", "only sessions of this user")
	host := fs.String("host", "", "only sessions to this host")
	since := fs.String("since", "", "only sessions started since T (RFC 3339 time, YYYY-MM-DD, or a duration like 24h)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("sessions takes no arguments (got %q)", pos[0])
	}
	f := audit.SessionFilter{User: *user, Host: *host}
	if *since != "" {
		if f.Since, err = parseSince(*since, time.Now()); err != nil {
			return err
		}
	}
	r, _, err := openStoreReader(*cfgPath, *data)
	if err != nil {
		return err
	}
	defer r.Close()
	list, err := r.Sessions(context.Background(), f)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]sessionJSON, 0, len(list))
		for _, s := range list {
			out = append(out, toSessionJSON(s))
		}
		return printJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tUSER\tTARGET\tROLE\tDURATION\tEND\tEXIT")
	for _, s := range list {
		dur, end, exit := "live", "-", "-"
		if !s.EndedAt.IsZero() {
			dur = s.EndedAt.Sub(s.StartedAt).Round(time.Second).String()
			end = s.EndReason
		}
		if s.ExitStatus != nil {
			exit = fmt.Sprint(*s.ExitStatus)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s/%s\t%s\t%s\t%s\t%s\n", q(s.ID), rfc3339(s.StartedAt), q(s.User),
			q(s.Login), q(s.Tenant), q(s.Host), q(s.Role), dur, q(end), exit)
	}
	return tw.Flush()
}

// commandJSON is the stable --json form of a command log row.
type commandJSON struct {
	ID        int64  `json:"id"`
	SessionID string `json:"session_id"`
	TS        string `json:"ts"`
	User      string `json:"user"`
	Login     string `json:"login"`
	Host      string `json:"host"`
	Tenant    string `json:"tenant"`
	Source    string `json:"source"`
	Command   string `json:"command"`
	Action    string `json:"action"`
	Rule      string `json:"rule,omitempty"`
	// Offset is seconds into the session's recording; absent when the
	// row has none (commands.offset NULL).
	Offset *float64 `json:"offset,omitempty"`
}

func runCommands(e *env, args []string) error {
	fs := newFlags(e, "commands", "commands [-c FILE | --data DIR] [--session ID] [--grep RE] [--json]")
	cfgPath := fs.String("c", "", "policy whose store (store.driver, data_dir) to read (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory of a SQLite store (default: data_dir of ./warden.yaml, else ./data)")
	sid := fs.String("session", "", "only commands of this session")
	grep := fs.String("grep", "", "only commands matching this regular expression (Go RE2 syntax)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("commands takes no arguments (got %q)", pos[0])
	}
	f := audit.CommandFilter{SessionID: *sid}
	if *grep != "" {
		if f.Grep, err = regexp.Compile(*grep); err != nil {
			return usageError("--grep: %v", err)
		}
	}
	r, _, err := openStoreReader(*cfgPath, *data)
	if err != nil {
		return err
	}
	defer r.Close()
	list, err := r.Commands(context.Background(), f)
	if err != nil {
		return err
	}
	if *asJSON {
		out := make([]commandJSON, 0, len(list))
		for _, c := range list {
			out = append(out, commandJSON{ID: c.ID, SessionID: c.SessionID, TS: rfc3339(c.TS), User: c.User,
				Login: c.Login, Host: c.Host, Tenant: c.Tenant, Source: c.Source, Command: c.Command,
				Action: c.Action, Rule: c.Rule, Offset: c.Offset})
		}
		return printJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tSESSION\tUSER\tTARGET\tSOURCE\tACTION\tCOMMAND")
	for _, c := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s\t%s\t%s\t%s\n", rfc3339(c.TS), q(c.SessionID), q(c.User), q(c.Login), q(c.Host),
			q(c.Source), q(c.Action), q(c.Command))
	}
	return tw.Flush()
}

// q is recorder.Quote, the one escaping of values shown on a terminal: a
// logged command or any other stored text may hold escape sequences, C1
// controls or bidi overrides, and the database file can be edited, so every
// value of every table goes through it.
func q(s string) string { return recorder.Quote(s) }

func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, usageError("--since %q: want an RFC 3339 time, YYYY-MM-DD, or a duration like 24h", s)
}

// openReader opens the store of --data DIR (SQLite), else of ./warden.yaml
// when present (its data_dir and store), else ./data.
func openReader(flagData string) (*audit.Reader, error) {
	r, _, err := openStoreReader("", flagData) // store.go
	return r, err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
