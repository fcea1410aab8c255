package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"
)

// Command sources: how a command reached the host.
const (
	SourceExec  = "exec"  // ssh HOST COMMAND
	SourceShell = "shell" // a line typed in an interactive shell
	SourceSFTP  = "sftp"  // an SFTP operation
	SourceSCP   = "scp"   // a legacy scp transfer
)

// Command actions: what the gateway did with a command.
const (
	ActionAllowed = "allowed"
	ActionDenied  = "denied"
)

// Command is one entry of the command log (table commands).
type Command struct {
	ID        int64     // assigned by the database; ignored by LogCommand
	SessionID string    // the session it ran in; the session row must exist
	TS        time.Time // zero means now
	User      string
	Login     string
	Host      string
	Tenant    string
	Source    string // one of the Source constants
	Command   string // the command line, stored verbatim
	Action    string // one of the Action constants
	Rule      string // the policy rule that decided, if any
	// Offset is where the command sits in the session's recording:
	// seconds from the cast's start on the clock of its events, taken
	// when the command was logged, so the player can seek to it. Nil
	// when there is no recording to seek in (a file transfer, a failed
	// cast, rows older than migration 0007); stored as NULL. It is not
	// part of the session.end seal: it places a marker, it proves nothing.
	Offset *float64
}

// ErrSessionEnded is matched (with errors.Is) by the error of LogCommand for
// a session that has ended.
var ErrSessionEnded = errors.New("audit: session already ended")

// LogCommand appends c to the command log and returns once it is committed.
// Source and Action must be one of the constants above; the session must
// already have been started and not yet ended: its session.end event holds
// the digest of its command rows (see EndSession), and a row added after it
// would be evidence the chain does not cover.
func (s *Store) LogCommand(ctx context.Context, c Command) error {
	if err := checkSessionID(c.SessionID); err != nil {
		return err
	}
	what := "log command of session " + c.SessionID
	switch c.Source {
	case SourceExec, SourceShell, SourceSFTP, SourceSCP:
	default:
		return invalidf("%s: source %q: want exec, shell, sftp or scp", what, c.Source)
	}
	switch c.Action {
	case ActionAllowed, ActionDenied:
	default:
		return invalidf("%s: action %q: want allowed or denied", what, c.Action)
	}
	if err := checkRequired(what, "command", c.Command, "user", c.User, "login", c.Login, "host", c.Host, "tenant", c.Tenant); err != nil {
		return err
	}
	ts, err := stampOrNow(c.TS, s.now)
	if err != nil {
		return err
	}
	var offset sql.NullFloat64
	if c.Offset != nil {
		if o := *c.Offset; math.IsNaN(o) || math.IsInf(o, 0) || o < 0 {
			return invalidf("%s: offset %v: want a finite number of seconds, not negative", what, o)
		}
		offset = sql.NullFloat64{Float64: *c.Offset, Valid: true}
	}
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		var ended sql.NullString
		err := tx.QueryRow(`SELECT ended_at FROM sessions WHERE id = ?`, c.SessionID).Scan(&ended)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return notFoundf("%s: no such session", what)
		case err != nil:
			return fmt.Errorf("audit: %s: %w", what, err)
		case ended.Valid:
			return fmt.Errorf("audit: %s: %w", what, ErrSessionEnded)
		}
		_, err = tx.Exec(`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action, rule, offset)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			c.SessionID, ts, c.User, c.Login, c.Host, c.Tenant, c.Source, c.Command, c.Action, nullString(c.Rule), offset)
		if isForeignKeyErr(err) {
			return notFoundf("%s: no such session", what)
		}
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		return nil
	})
}
