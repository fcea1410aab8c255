package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

const reconcileSynopsis = "reconcile -c warden.yaml [--data DIR] [--stale-after 90d] [--tenant T] [--apply] [--json]"

// reconcileJSON is the stable --json form of a reconciliation.
type reconcileJSON struct {
	At            string            `json:"at"`
	StaleAfter    string            `json:"stale_after"`
	Applied       bool              `json:"applied"`
	Stale         []staleJSON       `json:"stale_admins"`
	Unexplained   []unexplainedJSON `json:"unexplained_grants"`
	Flagged       []int64           `json:"flagged_exceptions"`
	Deprovisioned []int64           `json:"deprovisioned_grants"`
	// With identity.directories: YAML users the IdP does not know, and
	// directory users it has deactivated (reconcile_identity.go).
	NoDirectory []string       `json:"yaml_users_without_directory"`
	Inactive    []identityJSON `json:"inactive_directory_users"`
	// RotationsOwed lists the deprovisioned grants whose static
	// credential is owed a rotation, which the gateway performs.
	RotationsOwed []int64 `json:"rotations_owed"`
}

type staleJSON struct {
	User           string   `json:"user"`
	Tenant         string   `json:"tenant"`
	Roles          []string `json:"roles"`
	LastActivation string   `json:"last_activation,omitempty"`
	ExceptionID    int64    `json:"exception_id,omitempty"`
}

type unexplainedJSON struct {
	GrantID   int64  `json:"grant_id"`
	User      string `json:"user"`
	Role      string `json:"role"`
	Tenant    string `json:"tenant"`
	ExpiresAt string `json:"expires_at"`
	Why       string `json:"why"`
}

func runReconcile(e *env, args []string) error {
	fs := newFlags(e, "reconcile", reconcileSynopsis)
	cfgPath := fs.String("c", "", "policy, the source of truth for eligibility (default: ./warden.yaml)")
	data := fs.String("data", "", "data directory (default: data_dir of the policy)")
	staleAfter := fs.String("stale-after", "90d", "window: days (90d), weeks (12w) or a Go duration")
	tenant := fs.String("tenant", "", "only this tenant")
	apply := fs.Bool("apply", false, "record the clean-up: end unexplained grants, flag stale admins with an exception")
	by := fs.String("by", "", "who applies (default: your login name)")
	asJSON := fs.Bool("json", false, "print a JSON object")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("reconcile takes no arguments (got %q)", pos[0])
	}
	window, err := evidence.ParseWindow(*staleAfter)
	if err != nil {
		return usageError("--stale-after: %v", err)
	}
	cfg, dir, err := policyAndData(*cfgPath, *data, true)
	if err != nil {
		return err
	}
	// Directory users are users too: the eligibility they hold is
	// reviewed, and their grants are explained, by the merged policy.
	cfg, review, err := withDirectory(cfg, dir)
	if err != nil {
		return err
	}
	if *tenant != "" && cfg.Tenant(*tenant) == nil {
		return fmt.Errorf("unknown tenant %q: not in %s", *tenant, cfg.Path)
	}
	opt := evidence.ReconcileOptions{StaleAfter: window, Tenant: *tenant}
	var rec *evidence.Reconciliation
	var owed []int64
	if *apply {
		if opt.Actor, err = actorName(*by); err != nil {
			return err
		}
		// The policy that decides what is ended is recorded; a dry run
		// writes nothing.
		recordPolicy(context.Background(), e, cfg, dir, evidence.UseReconcile)
		st, err := openExistingStore(context.Background(), cfg, dir) // never create a database to reconcile nothing
		if err != nil {
			return err
		}
		defer st.Close()
		if rec, err = evidence.ApplyReconcile(context.Background(), st, cfg, opt); err != nil {
			return err
		}
		// The grants ended here skip the gateway's end-of-grant step, but
		// a break-glass grant recorded its rotation when it started: the
		// row stays owed, and the gateway rotates it (at start, or at its
		// next sweep while running).
		if owed, err = owedOf(context.Background(), st, cfg, rec.Deprovisioned); err != nil {
			return err
		}
	} else {
		r, err := openCfgReader(context.Background(), cfg, dir) // store.go
		if err != nil {
			return err
		}
		defer r.Close()
		if rec, err = evidence.Reconcile(context.Background(), r.DB(), cfg, opt); err != nil {
			return err
		}
	}
	if *asJSON {
		j := toReconcileJSON(rec, *apply)
		j.NoDirectory, j.Inactive = reviewJSON(cfg, review)
		j.RotationsOwed = append(j.RotationsOwed, owed...)
		return printJSON(e.stdout, j)
	}
	if err := printReconciliation(e, rec, *apply); err != nil {
		return err
	}
	if len(owed) > 0 {
		fmt.Fprintf(e.stdout, "rotation owed: break-glass grant(s) %v used a static key; the gateway rotates it at its next start, or within %s while running (see warden grants)\n",
			owed, gateway.RotationSweep)
	}
	return printReview(e, cfg, review)
}

// owedOf returns those of ids whose grant owes a rotation. A grant that
// started before rotations were recorded gets its row now, from the
// policy, when its role names a static credential.
func owedOf(ctx context.Context, st *audit.Store, cfg *policy.Config, ids []int64) ([]int64, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	j, err := jit.New(jit.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		return nil, err
	}
	grants, err := jit.ListGrants(ctx, st.DB())
	if err != nil {
		return nil, err
	}
	var out []int64
	for _, g := range grants {
		if !slices.Contains(ids, g.ID) {
			continue
		}
		r, ok, err := j.EnsureRotation(ctx, g)
		if err != nil {
			return nil, err
		}
		if ok && r.Owed() {
			out = append(out, g.ID)
		}
	}
	slices.Sort(out)
	return out, nil
}

func toReconcileJSON(rec *evidence.Reconciliation, applied bool) reconcileJSON {
	j := reconcileJSON{At: rfc3339(rec.At), StaleAfter: evidence.FormatWindow(rec.StaleAfter), Applied: applied,
		Stale: []staleJSON{}, Unexplained: []unexplainedJSON{}, Flagged: []int64{}, Deprovisioned: []int64{}, RotationsOwed: []int64{}}
	for _, s := range rec.Stale {
		j.Stale = append(j.Stale, staleJSON{User: s.User, Tenant: s.Tenant, Roles: s.Roles,
			LastActivation: rfc3339(s.LastActivation), ExceptionID: s.ExceptionID})
	}
	for _, g := range rec.Unexplained {
		j.Unexplained = append(j.Unexplained, unexplainedJSON{GrantID: g.GrantID, User: g.User, Role: g.Role,
			Tenant: g.Tenant, ExpiresAt: rfc3339(g.ExpiresAt), Why: g.Why})
	}
	j.Flagged = append(j.Flagged, rec.Flagged...)
	j.Deprovisioned = append(j.Deprovisioned, rec.Deprovisioned...)
	return j
}

func printReconciliation(e *env, rec *evidence.Reconciliation, applied bool) error {
	w := evidence.FormatWindow(rec.StaleAfter)
	fmt.Fprintf(e.stdout, "Stale admins: eligible for a privileged role, no activation in %s (%d)\n", w, len(rec.Stale))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(rec.Stale) > 0 {
		fmt.Fprintln(tw, "TENANT\tUSER\tROLES\tLAST ACTIVATION\tEXCEPTION")
		for _, s := range rec.Stale {
			last, exc := "never", "-"
			if !s.LastActivation.IsZero() {
				last = s.LastActivation.UTC().Format(time.DateOnly)
			}
			if s.ExceptionID != 0 {
				exc = fmt.Sprint(s.ExceptionID)
			}
			roles := make([]string, len(s.Roles))
			for i, r := range s.Roles {
				roles[i] = q(r)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", q(s.Tenant), q(s.User), strings.Join(roles, ","), last, exc)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "\nUnexplained grants: active, but the policy would not give them (%d)\n", len(rec.Unexplained))
	if len(rec.Unexplained) > 0 {
		fmt.Fprintln(tw, "GRANT\tTENANT\tUSER\tROLE\tEXPIRES\tWHY")
		for _, g := range rec.Unexplained {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.GrantID, q(g.Tenant), q(g.User), q(g.Role),
				rfc3339(g.ExpiresAt), q(g.Why))
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case applied:
		fmt.Fprintf(e.stdout, "\napplied: %d grant(s) ended as deprovisioned %v, %d stale admin(s) flagged with exceptions %v\n",
			len(rec.Deprovisioned), rec.Deprovisioned, len(rec.Flagged), rec.Flagged)
		if len(rec.Deprovisioned) > 0 {
			fmt.Fprintln(e.stdout, "note: sessions already running under an ended grant are closed by the gateway, not by this command")
		}
	case len(rec.Unexplained) > 0 || unflagged(rec) > 0:
		fmt.Fprintln(e.stdout, "\nrun with --apply to record the clean-up")
	}
	return nil
}

func unflagged(rec *evidence.Reconciliation) int {
	n := 0
	for _, s := range rec.Stale {
		if s.ExceptionID == 0 {
			n++
		}
	}
	return n
}
