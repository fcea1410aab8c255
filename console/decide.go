package console

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Deciding in the browser: /requests (approve, deny), /grants (revoke),
// /exceptions and /evidence. Everything but the evidence packets runs
// through Deps.Commands, the SSH command interface run as the viewer: the
// console shows what `ssh gw requests --json` shows that person and acts
// with `ssh gw approve ID`, so it cannot decide or reveal more than SSH
// would (tenant scoping, approver rules, cooldowns, audit events included).
// Evidence packets have no SSH command; decide_evidence.go scopes them by
// the viewer's oversight, as `sessions` is scoped.

func (c *Console) mountDecide(m Mux) {
	m.Handle("GET /requests", c.viewer(c.requestsPage))
	m.Handle("POST /requests/{id}/approve", c.action(c.decideRequest("approve")))
	m.Handle("POST /requests/{id}/deny", c.action(c.decideRequest("deny")))
	m.Handle("GET /grants", c.viewer(c.grantsPage))
	m.Handle("POST /grants/{id}/revoke", c.action(c.revokeGrant))
	m.Handle("POST /grants/revoke", c.action(c.revokeGrant)) // by ID typed in (approvers)
	m.Handle("GET /exceptions", c.viewer(c.exceptionsPage))
	m.Handle("GET /evidence", c.viewer(c.evidencePage))
	m.Handle("GET /evidence/{tenant}/{file}", c.viewer(c.evidenceZip))
}

// commandRefusal is what a refused command's error tells the console; the
// gateway's CommandError has it.
type commandRefusal interface {
	ExitStatus() int
	Internal() bool
}

// outcome is the result of an action shown on the page that follows it: the
// command's own line, or the refusal line the SSH user would read.
type outcome struct {
	OK   bool
	Line string
}

// errNoCommands answers when the console was built without the gateway.
var errNoCommands = errors.New("console: no command interface")

// run runs `ssh gw ARGS...` as the viewer.
func (c *Console) run(ctx context.Context, v *Viewer, args ...string) ([]byte, error) {
	if c.d.Commands == nil {
		return nil, errNoCommands
	}
	return c.d.Commands.RunCommand(ctx, v.User, args)
}

// runJSON runs a listing with --json and decodes it into out.
func (c *Console) runJSON(ctx context.Context, v *Viewer, out any, args ...string) error {
	b, err := c.run(ctx, v, append(args, "--json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, out); err != nil {
		return errors.New("console: " + args[0] + " --json: " + err.Error())
	}
	return nil
}

// refusalStatus maps a failed command to the HTTP answer: a usage error is
// 400, a refusal 403 (one status for "not yours" and "no such ID", as the
// line is one), anything else 500 and a line that says only that.
func (c *Console) refusalStatus(err error, what string) (int, string) {
	var r commandRefusal
	switch {
	case errors.Is(err, errNoCommands):
		return http.StatusServiceUnavailable, "this console is not connected to the gateway's command interface"
	case errors.As(err, &r) && !r.Internal():
		if r.ExitStatus() == 2 {
			return http.StatusBadRequest, firstLine(err.Error())
		}
		return http.StatusForbidden, firstLine(err.Error())
	}
	c.log.Error("console: command failed", "what", what, "err", err)
	return http.StatusInternalServerError, "internal error; it was logged"
}

// failCommand renders the error page for a listing that could not run.
func (c *Console) failCommand(w http.ResponseWriter, r *http.Request, v *Viewer, err error, what string) {
	status, msg := c.refusalStatus(err, what)
	c.fail(w, r, v, status, msg)
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// left is a duration for people, to the second: "1h02m05s", "4m10s", "9s".
func left(d time.Duration) string {
	if d <= 0 {
		return "ended"
	}
	d = d.Truncate(time.Second)
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	switch {
	case h > 0:
		return fmt.Sprintf("%dh%02dm%02ds", h, m, sec)
	case m > 0:
		return fmt.Sprintf("%dm%02ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}

// stamp formats a time for a page.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}
