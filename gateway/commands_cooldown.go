package gateway

import (
	"context"
	"fmt"
	"strings"

	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

// After a deny, the requester may not ask for the same role again for the
// role's deny_cooldown, or, for break-glass, until an approver clears the
// denial (jit/cooldown.go). This file is the approver's side of that:
//
//	ssh -p 2222 gw clear-denial ROLE --user USER --reason TEXT

// denialClearer lifts a denial's hold; *jit.Service satisfies it. It is
// asked of Options.JIT by type assertion, so the elevation interface, and
// the fakes that satisfy it, need not change.
type denialClearer interface {
	ClearDenial(ctx context.Context, approver *policy.User, user, role, reason string) (jit.Denial, error)
}

// clearDenialCommand is the command-interface entry of clear-denial.
var clearDenialCommand = command{
	usage: "clear-denial ROLE --user USER --reason TEXT",
	help:  "approvers: let USER request ROLE again before the denial's cooldown ends (break-glass: at all)",
	run:   cmdClearDenial,
}

func cmdClearDenial(ctx context.Context, e *cmdEnv, args []string) error {
	j, err := e.jit()
	if err != nil {
		return err
	}
	c, ok := j.(denialClearer)
	if !ok {
		return errNoJIT
	}
	pos, o, err := options(args, "--user", "--reason")
	if err != nil {
		return err
	}
	switch {
	case len(pos) != 1:
		return fmt.Errorf("%w: give one ROLE", errUsage)
	case o["--user"] == "":
		return fmt.Errorf("%w: --user USER is required: whose denial to clear", errUsage)
	case strings.TrimSpace(o["--reason"]) == "":
		return fmt.Errorf("%w: --reason TEXT is required to clear a denial", errUsage)
	}
	d, err := c.ClearDenial(ctx, e.ident.user, o["--user"], pos[0], o["--reason"])
	if err != nil {
		return jitError(err)
	}
	if e.json {
		return writeJSON(e.out, d)
	}
	fmt.Fprintf(e.out, "denial of request %d cleared: %s may request %s again\n", d.RequestID, d.User, d.Role)
	return nil
}
