package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/policy"
)

// exceptionCommands are the exception register over SSH, the same
// operations as `warden exceptions` on the box:
//
//	exceptions [--expired] [--all] [--json]
//	exception add --tenant T --owner U --reason R --controls C --expires YYYY-MM-DD
//	exception close ID --note TEXT
func (s *Server) exceptionCommands() map[string]command {
	return map[string]command{
		"exceptions": {usage: "exceptions [--expired] [--all] [--json]", help: "the exception register (expired entries flagged)", run: cmdExceptions},
		"exception":  {usage: "exception add --tenant T --owner U --reason R --controls C --expires YYYY-MM-DD | exception close ID --note TEXT", help: "record or close an exception (approvers, auditors)", run: cmdException},
	}
}

// errNoRegister answers exception commands on a gateway run without one.
var errNoRegister = &userError{msg: "the exception register is not enabled on this gateway"}

func exceptionError(err error) error {
	switch {
	case errors.Is(err, exceptions.ErrInvalid), errors.Is(err, exceptions.ErrNotFound), errors.Is(err, exceptions.ErrAlreadyClosed):
		return &userError{msg: strings.TrimPrefix(err.Error(), "exceptions: ")}
	}
	return internalError("exception register", err)
}

// noException is the one answer to an exception ID the caller may not act
// on, whether it belongs to another tenant or does not exist.
func noException(id int64, cause string) error {
	return &userError{msg: fmt.Sprintf("no exception %d that you can act on", id), cause: errors.New(cause)}
}

// noTenant is the one answer to a tenant the caller does not oversee,
// whether it exists or not: tenant names are client names.
func noTenant(name string) error {
	return refusal("no tenant %s that you oversee", truncate(name, 64))
}

// governor returns the tenants whose register the caller may change: those
// they oversee as an approver or auditor.
func (e *cmdEnv) governor() (policy.Oversight, error) {
	pol := e.s.Policy()
	o := pol.OversightOf(pol.User(e.ident.user.Name))
	if o.None() {
		return o, refusal("only approvers and auditors may change the exception register")
	}
	return o, nil
}

func cmdExceptions(ctx context.Context, e *cmdEnv, args []string) error {
	reg := e.s.opt.Exceptions
	if reg == nil {
		return errNoRegister
	}
	pos, opt, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	_, expired := opt["--expired"]
	_, all := opt["--all"]
	found, err := reg.List(ctx, exceptions.Filter{ExpiredOnly: expired, IncludeClosed: all})
	if err != nil {
		return exceptionError(err)
	}
	// Only the tenants the caller oversees; someone who oversees none sees
	// an empty register.
	pol := e.s.Policy()
	o := pol.OversightOf(pol.User(e.ident.user.Name))
	var list []exceptions.Exception
	for _, x := range found {
		if o.Covers(x.Tenant) {
			list = append(list, x)
		}
	}
	if e.json {
		if list == nil {
			list = []exceptions.Exception{}
		}
		return writeJSON(e.out, list)
	}
	return exceptions.WriteTable(e.out, list)
}

func cmdException(ctx context.Context, e *cmdEnv, args []string) error {
	reg := e.s.opt.Exceptions
	if reg == nil {
		return errNoRegister
	}
	if len(args) == 0 || args[0] != "add" && args[0] != "close" {
		return fmt.Errorf("%w: exception add ... or exception close ID --note TEXT", errUsage)
	}
	o, err := e.governor()
	if err != nil {
		return err
	}
	if args[0] == "close" {
		pos, opt, err := options(args[1:], "--note")
		if err != nil {
			return err
		}
		if len(pos) != 1 {
			return fmt.Errorf("%w: give one exception ID", errUsage)
		}
		id, err := exceptions.ParseID(pos[0])
		if err != nil {
			return fmt.Errorf("%w: exception ID %q is not a positive integer", errUsage, truncate(pos[0], 32))
		}
		if strings.TrimSpace(opt["--note"]) == "" {
			return fmt.Errorf("%w: --note TEXT is required to close an exception", errUsage)
		}
		// The tenant of an entry never changes, so checking it before
		// closing is not a race.
		x, err := reg.Get(ctx, id)
		switch {
		case errors.Is(err, exceptions.ErrNotFound):
			return noException(id, "does not exist")
		case err != nil:
			return exceptionError(err)
		case !o.Covers(x.Tenant):
			return noException(id, "tenant "+x.Tenant+" not overseen")
		}
		if x, err = reg.Close(ctx, id, e.ident.user.Name, opt["--note"]); err != nil {
			return exceptionError(err)
		}
		fmt.Fprintf(e.out, "exception %d closed\n", x.ID)
		return nil
	}
	pos, opt, err := options(args[1:], "--tenant", "--owner", "--reason", "--controls", "--expires")
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	for _, f := range []string{"--tenant", "--owner", "--reason", "--controls", "--expires"} {
		if strings.TrimSpace(opt[f]) == "" {
			return fmt.Errorf("%w: %s is required", errUsage, f)
		}
	}
	if e.s.Policy().Tenant(opt["--tenant"]) == nil || !o.Covers(opt["--tenant"]) {
		return noTenant(opt["--tenant"])
	}
	exp, err := exceptions.ParseExpiry(opt["--expires"])
	if err != nil {
		return exceptionError(err)
	}
	x, err := reg.Add(ctx, exceptions.Exception{
		Tenant: opt["--tenant"], Owner: opt["--owner"], Reason: opt["--reason"], Controls: opt["--controls"],
		ExpiresAt: exp, CreatedBy: e.ident.user.Name,
	})
	if err != nil {
		return exceptionError(err)
	}
	fmt.Fprintf(e.out, "exception %d recorded for %s until %s\n", x.ID, x.Tenant, x.ExpiresAt.UTC().Format("2006-01-02"))
	return nil
}
