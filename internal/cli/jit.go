package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/jit"
)

// openList parses the flags of a plain list command (-c, --data, --json)
// and opens the store read-only: the configured one (store.driver) with
// -c FILE or ./warden.yaml, a SQLite database with --data DIR alone.
func openList(e *env, name string, args []string) (*audit.Reader, bool, error) {
	fs := newFlags(e, name, name+" [-c FILE | --data DIR] [--json]")
	cfgPath := fs.String("c", "", "policy whose store (store.driver, data_dir) to read (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return nil, false, err
	}
	if len(pos) > 0 {
		return nil, false, usageError("%s takes no arguments (got %q)", name, pos[0])
	}
	r, _, err := openStoreReader(*cfgPath, *data) // store.go
	return r, *asJSON, err
}

func runRequests(e *env, args []string) error {
	r, asJSON, err := openList(e, "requests", args)
	if err != nil {
		return err
	}
	defer r.Close()
	list, err := jit.ListRequests(context.Background(), r.DB())
	if err != nil {
		return err
	}
	if asJSON {
		return printJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tUSER\tROLE\tTENANT\tFOR\tCREATED\tDECIDED\tAPPROVALS\tTICKET\tREASON")
	for _, r := range list {
		var ds []string
		for _, d := range r.Approvals {
			ds = append(ds, q(d.Approver)+":"+q(d.Verdict))
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, q(r.State), q(r.User), q(r.Role), q(r.Tenant),
			r.Duration, rfc3339(r.CreatedAt), orDash(rfc3339(r.DecidedAt)), orDash(strings.Join(ds, ",")),
			orDash(q(r.Ticket)), q(r.Reason))
	}
	return tw.Flush()
}

func runGrants(e *env, args []string) error {
	r, asJSON, err := openList(e, "grants", args)
	if err != nil {
		return err
	}
	defer r.Close()
	list, err := jit.ListGrants(context.Background(), r.DB())
	if err != nil {
		return err
	}
	rots, err := rotationsByGrant(context.Background(), r.DB())
	if err != nil {
		return err
	}
	if asJSON {
		out := make([]grantJSON, 0, len(list))
		for _, g := range list {
			j := grantJSON{Grant: g}
			if rot, ok := rots[g.ID]; ok {
				j.Rotation = &rot
			}
			out = append(out, j)
		}
		return printJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tREQUEST\tUSER\tROLE\tTENANT\tSTARTS\tEXPIRES\tENDED\tEND\tROTATION")
	now := time.Now()
	ids := make([]int64, 0, len(list))
	for _, g := range list {
		end := g.EndReason
		if end == "" && g.Active(now) {
			end = "active"
		}
		rot, ok := rots[g.ID]
		fmt.Fprintf(tw, "%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.ID, g.RequestID, q(g.User), q(g.Role), q(g.Tenant),
			rfc3339(g.StartsAt), rfc3339(g.ExpiresAt), orDash(rfc3339(g.EndedAt)), orDash(q(end)), rotationCell(rot, ok))
		ids = append(ids, g.ID)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return printOwedRotations(e.stdout, rots, ids)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
