package console

import (
	"context"
	"database/sql"

	"github.com/warden-gw/warden/audit"
)

// commandOffset is where cm sits in its recording, when stored (rows
// older than migration 0007, and file operations, have none).
func commandOffset(cm audit.Command) (float64, bool) {
	if cm.Offset == nil {
		return 0, false
	}
	return *cm.Offset, true
}

// checkSession lists what disagrees among ended session id's recording
// file, its row, its command rows and its chained session.end event
// (audit.Reader.CheckSession); none means the badge is green.
func (c *Console) checkSession(ctx context.Context, id string) ([]string, error) {
	chk, err := c.d.Store.CheckSession(ctx, c.d.DataDir, id)
	if err != nil {
		return nil, err
	}
	if chk.Match {
		return nil, nil
	}
	if len(chk.Problems) == 0 {
		// Not matching must never render green, whatever the reason.
		return []string{"the recording, the session row and the audit chain do not agree"}, nil
	}
	return chk.Problems, nil
}

// policyVersion reads sessions.policy_version, which audit.Session
// carries when written but its readers do not fill in.
func (c *Console) policyVersion(ctx context.Context, id string) (string, error) {
	var v sql.NullString
	err := c.d.Store.DB().QueryRowContext(ctx, `SELECT policy_version FROM sessions WHERE id = ?`, id).Scan(&v)
	return v.String, err
}
