package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/warden-gw/warden/recorder"
)

// `ssh -p 2222 GATEWAY console` (CONTRACT §7): a one-time link that signs
// the caller in to the browser console. The link is bound to this
// connection's identity, the user and the fingerprint of the key it
// authenticated with (or the key a sign-in binding names), and the
// console checks both again when the link is used. The link is a bearer
// secret until then: it is written to this channel only, never to the
// log or the audit chain (which hold its row number).

// consoleLinks issues console sign-in links (console.Console). nil
// refuses the command: the gateway has no HTTP listener.
type consoleLinks interface {
	IssueLink(ctx context.Context, user, fingerprint, clientAddr, localHost string) (url string, expires time.Time, err error)
}

func (s *Server) consoleCommands() map[string]command {
	return map[string]command{
		"console": {usage: "console", help: "print a one-time link that signs you in to the browser console", run: cmdConsole},
	}
}

func cmdConsole(ctx context.Context, e *cmdEnv, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if e.s.opt.ConsoleLinks == nil {
		return refusal("the browser console is not enabled on this gateway (http_listen is not set)")
	}
	if e.ident.fingerprint == "" {
		return refusal("the console needs a key-authenticated connection")
	}
	localHost, _, _ := net.SplitHostPort(e.ident.localAddr)
	link, expires, err := e.s.opt.ConsoleLinks.IssueLink(ctx, e.ident.user.Name, e.ident.fingerprint, e.ident.clientAddr, localHost)
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return err
		}
		return &userError{msg: "the console link could not be made; try again later", cause: err}
	}
	fmt.Fprintf(e.out, "Open this link in your browser to sign in to the Warden console as %s:\n\n    %s\n\n"+
		"It works once, until %s (5 minutes), and only for you: whoever opens it first is signed in as you, so do not share it.\n",
		recorder.Quote(e.ident.user.Name), link, expires.UTC().Format(time.RFC3339))
	return nil
}
