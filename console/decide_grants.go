package console

import (
	"net/http"
	"time"
)

// /grants and /exceptions: `ssh gw grants --json` and `ssh gw exceptions
// --json` as the viewer, with time left computed by the console's clock
// when the page is drawn, and expired exceptions flagged.

// grantJSON is one entry of `grants --json`.
type grantJSON struct {
	ID        int64     `json:"id"`
	RequestID int64     `json:"request_id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Tenant    string    `json:"tenant"`
	StartsAt  time.Time `json:"starts_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

type grantView struct {
	grantJSON
	Started, Expires, Left string
}

type grantsData struct {
	Result *outcome
	Grants []grantView
	// Approver is set for a viewer who oversees a tenant: they may also
	// revoke a grant of a role they approve by its ID, as over SSH.
	Approver bool
	// Overseen is `ssh gw grants --all`: everyone's active grants in the
	// tenants the viewer oversees (approvers and auditors); nil for
	// someone who oversees none.
	Overseen []oversightGrant
}

// oversightGrant is one row of the overseen grants. CanRevoke marks the
// grants of roles the viewer approves, which get a revoke button; the
// command decides either way.
type oversightGrant struct {
	grantView
	CanRevoke bool
}

func (c *Console) grantsPage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	c.showGrants(w, r, v, http.StatusOK, nil)
}

func (c *Console) showGrants(w http.ResponseWriter, r *http.Request, v *Viewer, status int, res *outcome) {
	var list []grantJSON
	if err := c.runJSON(r.Context(), v, &list, "grants"); err != nil {
		if res != nil {
			c.fail(w, r, v, status, res.Line)
			return
		}
		c.failCommand(w, r, v, err, "grants")
		return
	}
	now := c.d.Now()
	d := grantsData{Result: res, Approver: !v.Oversight.None()}
	for _, g := range list {
		d.Grants = append(d.Grants, viewGrant(g, now))
	}
	if !v.Oversight.None() {
		var all []grantJSON
		if err := c.runJSON(r.Context(), v, &all, "grants", "--all"); err != nil {
			if res != nil {
				c.fail(w, r, v, status, res.Line)
				return
			}
			c.failCommand(w, r, v, err, "grants --all")
			return
		}
		pol := c.d.Policy()
		u := pol.User(v.User)
		d.Overseen = []oversightGrant{}
		for _, g := range all {
			role := pol.Role(g.Role)
			d.Overseen = append(d.Overseen, oversightGrant{grantView: viewGrant(g, now),
				CanRevoke: role != nil && u.InAnyFor(role, role.Approvers)})
		}
	}
	c.render(w, status, "grants", v, "Grants", d)
}

func viewGrant(g grantJSON, now time.Time) grantView {
	return grantView{grantJSON: g, Started: stamp(g.StartsAt), Expires: stamp(g.ExpiresAt), Left: left(g.ExpiresAt.Sub(now))}
}

// revokeGrant runs `revoke ID [--reason R]` as the viewer: their own grant
// is relinquished, an approver's revocation of another's is recorded as
// revoked, and anyone else gets the same line as for an unknown ID.
func (c *Console) revokeGrant(w http.ResponseWriter, r *http.Request, v *Viewer) {
	id := r.PathValue("id")
	if id == "" {
		id = r.PostFormValue("grant")
	}
	args := []string{"revoke", id}
	if reason := r.PostFormValue("reason"); reason != "" {
		args = append(args, "--reason", reason)
	}
	out, err := c.run(r.Context(), v, args...)
	if err != nil {
		status, msg := c.refusalStatus(err, "revoke")
		c.showGrants(w, r, v, status, &outcome{Line: msg})
		return
	}
	c.showGrants(w, r, v, http.StatusOK, &outcome{OK: true, Line: firstLine(string(out))})
}

// exceptionJSON is one entry of `exceptions --json`.
type exceptionJSON struct {
	ID        int64  `json:"id"`
	Tenant    string `json:"tenant"`
	Owner     string `json:"owner"`
	Reason    string `json:"reason"`
	Controls  string `json:"controls"`
	ExpiresAt string `json:"expires_at"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	ClosedAt  string `json:"closed_at"`
	ClosedBy  string `json:"closed_by"`
	CloseNote string `json:"close_note"`
	Status    string `json:"status"`
	Expired   bool   `json:"expired"`
}

type exceptionsData struct {
	Show string // "open" (default), "expired" or "all"
	List []exceptionJSON
}

func (c *Console) exceptionsPage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	show := r.URL.Query().Get("show")
	args := []string{"exceptions"}
	switch show {
	case "", "open":
		show = "open"
	case "expired":
		args = append(args, "--expired")
	case "all":
		args = append(args, "--all")
	default:
		c.refuse(r.Context(), r, v, "exceptions", "bad filter: show must be open, expired or all")
		c.fail(w, r, v, http.StatusBadRequest, "show must be open, expired or all")
		return
	}
	var list []exceptionJSON
	if err := c.runJSON(r.Context(), v, &list, args...); err != nil {
		c.failCommand(w, r, v, err, "exceptions")
		return
	}
	c.render(w, http.StatusOK, "exceptions", v, "Exceptions", exceptionsData{Show: show, List: list})
}
