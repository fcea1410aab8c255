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

// mayGovern reports whether u may change the register: members of a role's
// approver groups, and auditors.
func mayGovern(pol *policy.Config, u *policy.User) bool {
	if u.InAny([]string{"auditors"}) {
		return true
	}
	for _, r := range pol.Roles {
		if u.InAny(r.Approvers) {
			return true
		}
	}
	return false
}

func cmdExceptions(ctx context.Context, e *cmdEnv, args []string) error {
	reg := e.s.opt.Exceptions
	if reg == nil {
		return errNoRegister
	}
	pos, o, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	_, expired := o["--expired"]
	_, all := o["--all"]
	list, err := reg.List(ctx, exceptions.Filter{ExpiredOnly: expired, IncludeClosed: all})
	if err != nil {
		return exceptionError(err)
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
	if !mayGovern(e.s.Policy(), e.ident.user) {
		return refusal("only approvers and auditors may change the exception register")
	}
	if args[0] == "close" {
		pos, o, err := options(args[1:], "--note")
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
		if strings.TrimSpace(o["--note"]) == "" {
			return fmt.Errorf("%w: --note TEXT is required to close an exception", errUsage)
		}
		x, err := reg.Close(ctx, id, e.ident.user.Name, o["--note"])
		if err != nil {
			return exceptionError(err)
		}
		fmt.Fprintf(e.out, "exception %d closed\n", x.ID)
		return nil
	}
	pos, o, err := options(args[1:], "--tenant", "--owner", "--reason", "--controls", "--expires")
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	for _, f := range []string{"--tenant", "--owner", "--reason", "--controls", "--expires"} {
		if strings.TrimSpace(o[f]) == "" {
			return fmt.Errorf("%w: %s is required", errUsage, f)
		}
	}
	if e.s.Policy().Tenant(o["--tenant"]) == nil {
		return refusal("unknown tenant %s", truncate(o["--tenant"], 64))
	}
	exp, err := exceptions.ParseExpiry(o["--expires"])
	if err != nil {
		return exceptionError(err)
	}
	x, err := reg.Add(ctx, exceptions.Exception{
		Tenant: o["--tenant"], Owner: o["--owner"], Reason: o["--reason"], Controls: o["--controls"],
		ExpiresAt: exp, CreatedBy: e.ident.user.Name,
	})
	if err != nil {
		return exceptionError(err)
	}
	fmt.Fprintf(e.out, "exception %d recorded for %s until %s\n", x.ID, x.Tenant, x.ExpiresAt.UTC().Format("2006-01-02"))
	return nil
}
