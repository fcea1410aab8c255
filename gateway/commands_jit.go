package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// elevation is the just-in-time workflow the command interface drives and
// the session path consults; *jit.Service satisfies it.
type elevation interface {
	Request(ctx context.Context, user *policy.User, role string, d time.Duration, reason, ticket string) (jit.Request, error)
	Approve(ctx context.Context, approver *policy.User, id int64, comment string) (jit.Request, *jit.Grant, error)
	Deny(ctx context.Context, approver *policy.User, id int64, reason string) (jit.Request, error)
	Cancel(ctx context.Context, user *policy.User, id int64) (jit.Request, error)
	Revoke(ctx context.Context, actor *policy.User, grantID int64, reason string) (jit.Grant, error)
	Requests(ctx context.Context, viewer *policy.User, pendingOnly bool) ([]jit.Request, error)
	Grants(ctx context.Context, user string, activeOnly bool) ([]jit.Grant, error)
	ActiveGrants(ctx context.Context) ([]jit.Grant, error)
	ActiveGrant(ctx context.Context, user, role string) (jit.Grant, bool, error)
	RecordUse(ctx context.Context, grantID int64, sessionID, login, host string) (bool, error)
}

func (s *Server) jitCommands() map[string]command {
	return map[string]command{
		"request":  {usage: "request ROLE --for DURATION --reason TEXT [--ticket ID]", help: "ask for a privileged role; prints the request ID", run: cmdRequest},
		"requests": {usage: "requests [--pending] [--json]", help: "your requests, and those you may decide", run: cmdRequests},
		"approve":  {usage: "approve ID [--comment TEXT]", help: "approve a request", run: cmdApprove},
		"deny":     {usage: "deny ID --reason TEXT", help: "deny a request", run: cmdDeny},
		"cancel":   {usage: "cancel ID", help: "withdraw your pending request", run: cmdCancel},
		"grants":   {usage: "grants [--all] [--json]", help: "your active grants with time left; --all: everyone's, in the tenants you oversee", run: cmdGrants},
		"revoke":   {usage: "revoke GRANT_ID [--reason TEXT]", help: "end a grant now (yours: relinquish; as approver: revoke)", run: cmdRevoke},
	}
}

// jitError turns a workflow refusal into the line the user sees; anything
// else is internal and stays in the log.
func jitError(err error) error {
	if msg, ok := jit.UserMessage(err); ok {
		return &userError{msg: msg}
	}
	return internalError("elevation", err)
}

// errNoJIT answers elevation commands on a gateway run without a workflow.
var errNoJIT = &userError{msg: "just-in-time elevation is not enabled on this gateway"}

func (e *cmdEnv) jit() (elevation, error) {
	if e.s.opt.JIT == nil {
		return nil, errNoJIT
	}
	return e.s.opt.JIT, nil
}

// boolFlags are the flags that take no value.
var boolFlags = map[string]bool{"--pending": true, "--expired": true, "--all": true, "--live": true}

// options splits args into positional arguments and --flag VALUE pairs;
// valued names the flags that take a value, every other flag is boolean.
func options(args []string, valued ...string) ([]string, map[string]string, error) {
	takes := map[string]bool{}
	for _, v := range valued {
		takes[v] = true
	}
	var pos []string
	opts := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "--") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(a, "=")
		if !takes[name] {
			if boolFlags[name] && !hasVal {
				opts[name] = "true"
				continue
			}
			return nil, nil, fmt.Errorf("%w: unknown flag %q", errUsage, truncate(name, 32))
		}
		if !hasVal {
			if i+1 >= len(args) {
				return nil, nil, fmt.Errorf("%w: %s needs a value", errUsage, name)
			}
			i++
			val = args[i]
		}
		if _, dup := opts[name]; dup {
			return nil, nil, fmt.Errorf("%w: %s given twice", errUsage, name)
		}
		opts[name] = val
	}
	return pos, opts, nil
}

// idCommand is the start of a command on one ID: the workflow, the ID and
// the flags (valued names those that take a value).
func (e *cmdEnv) idCommand(args []string, what string, valued ...string) (elevation, int64, map[string]string, error) {
	j, err := e.jit()
	if err != nil {
		return nil, 0, nil, err
	}
	pos, o, err := options(args, valued...)
	if err != nil {
		return nil, 0, nil, err
	}
	id, err := oneID(pos, what)
	return j, id, o, err
}

// oneID takes exactly one positional ID.
func oneID(pos []string, what string) (int64, error) {
	if len(pos) != 1 {
		return 0, fmt.Errorf("%w: give one %s", errUsage, what)
	}
	id, err := jit.ParseID(pos[0])
	if err != nil {
		return 0, fmt.Errorf("%w: %s %q is not a positive integer", errUsage, what, truncate(pos[0], 32))
	}
	return id, nil
}

func cmdRequest(ctx context.Context, e *cmdEnv, args []string) error {
	j, err := e.jit()
	if err != nil {
		return err
	}
	pos, o, err := options(args, "--for", "--reason", "--ticket")
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: give one ROLE", errUsage)
	}
	if o["--for"] == "" {
		return fmt.Errorf("%w: --for DURATION is required (e.g. --for 1h)", errUsage)
	}
	d, err := jit.ParseDuration(o["--for"])
	if err != nil {
		return jitError(err)
	}
	r, err := j.Request(ctx, e.ident.user, pos[0], d, o["--reason"], o["--ticket"])
	if err != nil {
		return jitError(err)
	}
	if e.json {
		return writeJSON(e.out, r)
	}
	fmt.Fprintf(e.out, "request %d opened: %s for %s; an approver runs: ssh gw approve %d\n", r.ID, r.Role, shortDuration(r.Duration), r.ID)
	return nil
}

func cmdRequests(ctx context.Context, e *cmdEnv, args []string) error {
	j, err := e.jit()
	if err != nil {
		return err
	}
	pos, o, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	list, err := j.Requests(ctx, e.ident.user, o["--pending"] != "")
	if err != nil {
		return jitError(err)
	}
	if e.json {
		if list == nil {
			list = []jit.Request{}
		}
		return writeJSON(e.out, list)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tUSER\tROLE\tFOR\tCREATED\tAPPROVALS\tREASON")
	for _, r := range list {
		var approvers []string
		for _, d := range r.Approvals {
			approvers = append(approvers, d.Approver+":"+d.Verdict)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.State, r.User, r.Role, shortDuration(r.Duration),
			r.CreatedAt.UTC().Format(time.RFC3339), joinOrNone(approvers), truncate(r.Reason, 60))
	}
	return tw.Flush()
}

func cmdApprove(ctx context.Context, e *cmdEnv, args []string) error {
	j, id, o, err := e.idCommand(args, "request ID", "--comment")
	if err != nil {
		return err
	}
	r, g, err := j.Approve(ctx, e.ident.user, id, o["--comment"])
	if err != nil {
		return e.requestError(ctx, j, id, err, false)
	}
	if e.json {
		return writeJSON(e.out, struct {
			Request jit.Request `json:"request"`
			Grant   *jit.Grant  `json:"grant"`
		}{r, g})
	}
	if g != nil {
		fmt.Fprintf(e.out, "request %d approved: grant %d for %s on %s until %s\n", r.ID, g.ID, g.User, g.Role, g.ExpiresAt.UTC().Format(time.RFC3339))
		return nil
	}
	fmt.Fprintf(e.out, "approval of request %d recorded; it needs more approvals\n", r.ID)
	return nil
}

func cmdDeny(ctx context.Context, e *cmdEnv, args []string) error {
	j, id, o, err := e.idCommand(args, "request ID", "--reason")
	if err != nil {
		return err
	}
	if strings.TrimSpace(o["--reason"]) == "" {
		return fmt.Errorf("%w: --reason TEXT is required to deny", errUsage)
	}
	r, err := j.Deny(ctx, e.ident.user, id, o["--reason"])
	if err != nil {
		return e.requestError(ctx, j, id, err, false)
	}
	fmt.Fprintf(e.out, "request %d denied\n", r.ID)
	return nil
}

func cmdCancel(ctx context.Context, e *cmdEnv, args []string) error {
	j, id, _, err := e.idCommand(args, "request ID")
	if err != nil {
		return err
	}
	r, err := j.Cancel(ctx, e.ident.user, id)
	if err != nil {
		return e.requestError(ctx, j, id, err, true)
	}
	fmt.Fprintf(e.out, "request %d cancelled\n", r.ID)
	return nil
}

type grantOut struct {
	jit.Grant
	SecondsLeft int64 `json:"seconds_left"`
}

func cmdGrants(ctx context.Context, e *cmdEnv, args []string) error {
	j, err := e.jit()
	if err != nil {
		return err
	}
	pos, o, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	if o["--all"] != "" {
		return cmdGrantsAll(ctx, e, j)
	}
	list, err := j.Grants(ctx, e.ident.user.Name, true)
	if err != nil {
		return jitError(err)
	}
	now := e.s.now()
	out := []grantOut{}
	for _, g := range list {
		out = append(out, grantOut{Grant: g, SecondsLeft: int64(g.Remaining(now) / time.Second)})
	}
	if e.json {
		return writeJSON(e.out, out)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tROLE\tTENANT\tEXPIRES\tLEFT")
	for _, g := range out {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\n", g.ID, g.Role, g.Tenant, g.ExpiresAt.UTC().Format(time.RFC3339),
			(time.Duration(g.SecondsLeft) * time.Second).String())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return e.s.printOwedRotations(ctx, e.out, e.ident.user)
}

// cmdGrantsAll is `grants --all`: every user's active grants in the
// tenants the caller oversees (policy.Config.OversightOf: approvers of a
// tenant's roles, its auditors, the global auditors), so that overseers
// see who holds what now and approvers can revoke it. Someone who
// oversees no tenant gets the oversight refusal, which names no grant;
// grants of other tenants are left out, not refused, so the listing
// reveals nothing of them.
func cmdGrantsAll(ctx context.Context, e *cmdEnv, j elevation) error {
	pol := e.s.Policy()
	o := pol.OversightOf(pol.User(e.ident.user.Name))
	if o.None() {
		return refusal("only approvers and auditors may list other users' grants")
	}
	list, err := j.ActiveGrants(ctx)
	if err != nil {
		return jitError(err)
	}
	now := e.s.now()
	out := []grantOut{}
	for _, g := range list {
		if o.Covers(g.Tenant) {
			out = append(out, grantOut{Grant: g, SecondsLeft: int64(g.Remaining(now) / time.Second)})
		}
	}
	if e.json {
		return writeJSON(e.out, out)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "GRANT\tUSER\tROLE\tTENANT\tEXPIRES\tLEFT")
	for _, g := range out {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", g.ID, recorder.Quote(g.User), recorder.Quote(g.Role), recorder.Quote(g.Tenant), g.ExpiresAt.UTC().Format(time.RFC3339),
			(time.Duration(g.SecondsLeft) * time.Second).String())
	}
	return tw.Flush()
}

func cmdRevoke(ctx context.Context, e *cmdEnv, args []string) error {
	j, id, o, err := e.idCommand(args, "grant ID", "--reason")
	if err != nil {
		return err
	}
	// Sessions live before the revocation count as closed by it, even if
	// the workflow's OnGrantEnd callback ends them before we look again.
	before := e.s.live.ofGrant(id)
	g, err := j.Revoke(ctx, e.ident.user, id, o["--reason"])
	if err != nil {
		// Revoke checks who may act before it reveals anything about the
		// grant, so "not found" and "not yours" are the same answer.
		if errors.Is(err, jit.ErrNotFound) || errors.Is(err, jit.ErrForbidden) {
			return noObject("grant", id, err)
		}
		return jitError(err)
	}
	closed := map[string]bool{}
	for _, sid := range append(before, e.s.live.cancelGrant(g.ID, errGrantRevoked)...) {
		closed[sid] = true
	}
	fmt.Fprintf(e.out, "grant %d %s; %d live session(s) closed\n", g.ID, g.EndReason, len(closed))
	return nil
}

// noObject is the one answer to a request or grant ID the caller may not
// act on: the same bytes whether it exists or not, so that nobody learns
// of another user's or another client's requests and grants, their owner
// or their role. cause goes to the audit event only.
func noObject(what string, id int64, cause error) error {
	return &userError{msg: fmt.Sprintf("no %s %d that you can act on", what, id), cause: cause}
}

// requestError is jitError for a command on request id: a refusal about a
// request the caller may not act on (not theirs to decide or cancel) is
// noObject, whatever the workflow said, because its message may name the
// request's role or state. mine says whether the caller acts as the
// requester (cancel) rather than as an approver (approve, deny).
func (e *cmdEnv) requestError(ctx context.Context, j elevation, id int64, err error, mine bool) error {
	if _, ok := jit.UserMessage(err); !ok {
		return jitError(err)
	}
	// Requests lists the caller's own requests and those they may decide.
	// It runs for a missing request too, so that the time of the answer
	// does not tell a foreign request from a missing one either.
	visible, lerr := j.Requests(ctx, e.ident.user, false)
	if lerr != nil {
		return internalError("list requests", lerr)
	}
	if errors.Is(err, jit.ErrNotFound) {
		return noObject("request", id, err)
	}
	for _, r := range visible {
		// An approver may be told why they cannot decide a request they
		// see anyway, and a requester why their own cannot be decided by
		// them ("you cannot approve your own request"); only the requester
		// may be told about cancelling it.
		if r.ID == id && (!mine || r.User == e.ident.user.Name) {
			return jitError(err)
		}
	}
	return noObject("request", id, err)
}
