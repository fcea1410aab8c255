package cli

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/warden-gw/warden/jit"
)

// grantJSON is a grant in `warden grants --json`, with the rotation its
// static credential owes, if any.
type grantJSON struct {
	jit.Grant
	Rotation *jit.Rotation `json:"rotation,omitempty"`
}

// rotationsByGrant reads every rotation by grant ID. A database written
// before rotations were recorded has no table: nothing is owed there that
// this listing could show.
func rotationsByGrant(ctx context.Context, db *sql.DB) (map[int64]jit.Rotation, error) {
	rs, err := jit.Rotations(ctx, db)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return map[int64]jit.Rotation{}, nil
		}
		return nil, err
	}
	out := make(map[int64]jit.Rotation, len(rs))
	for _, r := range rs {
		out[r.GrantID] = r
	}
	return out, nil
}

// rotationCell is the ROTATION column of a grant: "-" when it owes none.
func rotationCell(r jit.Rotation, ok bool) string {
	switch {
	case !ok:
		return "-"
	case r.State == jit.RotationDone:
		return "done"
	case r.Due():
		return "OWED"
	}
	return "owed at end"
}

// printOwedRotations lists the rotations owed by ended grants, the keys
// used in an emergency that are still valid. Text from hosts (errors that
// quote file names) is escaped.
func printOwedRotations(w io.Writer, rs map[int64]jit.Rotation, ids []int64) error {
	var owed []jit.Rotation
	for _, id := range ids {
		if r, ok := rs[id]; ok && r.Due() {
			owed = append(owed, r)
		}
	}
	if len(owed) == 0 {
		return nil
	}
	fmt.Fprintf(w, "\nRotation owed (%d): break-glass keys used by ended grants and not yet rotated\n", len(owed))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tTENANT\tROLE\tTARGET\tKV PATH\tSTATE\tATTEMPTS\tNEXT ATTEMPT\tLAST ERROR")
	for _, r := range owed {
		target := r.Login + "@" + r.Host
		if r.Host == "" {
			target = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", r.GrantID, r.Tenant, q(r.Role), q(target),
			q(r.KVPath), r.State, r.Attempts, rfc3339(r.NextAttemptAt), orDash(q(r.LastError)))
	}
	return tw.Flush()
}
