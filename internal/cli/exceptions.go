package cli

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
)

const exceptionsSynopsis = "exceptions [-c warden.yaml | --data DIR] [--tenant T] [--expired] [--all] [--json]\n" +
	"       warden exceptions add --tenant T --owner U --reason R --controls C --expires YYYY-MM-DD [--by NAME] [--data DIR] [-c warden.yaml]\n" +
	"       warden exceptions close ID --note TEXT [--by NAME] [--data DIR] [-c warden.yaml]"

func runExceptions(e *env, args []string) error {
	if len(args) > 0 {
		switch args[0] {
		case "add":
			return runExceptionAdd(e, args[1:])
		case "close":
			return runExceptionClose(e, args[1:])
		}
	}
	fs := newFlags(e, "exceptions", exceptionsSynopsis)
	cfgPath := fs.String("c", "", "policy whose store (store.driver, data_dir) to read (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	tenant := fs.String("tenant", "", "only this tenant's exceptions")
	expired := fs.Bool("expired", false, "only open exceptions whose expiry has passed")
	all := fs.Bool("all", false, "include closed exceptions")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("exceptions: unknown subcommand %q (want add or close)", pos[0])
	}
	r, _, err := openStoreReader(*cfgPath, *data) // store.go
	if err != nil {
		return err
	}
	defer r.Close()
	reg := &exceptions.Register{DB: r.DB()}
	list, err := reg.List(context.Background(), exceptions.Filter{Tenant: *tenant, ExpiredOnly: *expired, IncludeClosed: *all})
	if err != nil {
		return err
	}
	if *asJSON {
		if list == nil {
			list = []exceptions.Exception{}
		}
		return printJSON(e.stdout, list)
	}
	return exceptions.WriteTable(e.stdout, list)
}

func runExceptionAdd(e *env, args []string) error {
	fs := newFlags(e, "exceptions add", exceptionsSynopsis)
	data := fs.String("data", "", "data directory (default: data_dir of the policy, else ./data)")
	cfgPath := fs.String("c", "", "policy whose tenants are valid (default: ./warden.yaml when present)")
	tenant := fs.String("tenant", "", "tenant the exception applies to (required)")
	owner := fs.String("owner", "", "user who answers for it (required)")
	reason := fs.String("reason", "", "why the control is suspended (required)")
	controls := fs.String("controls", "", "compensating controls (required)")
	expires := fs.String("expires", "", "expiry date YYYY-MM-DD; it lapses at 00:00 UTC that day (required)")
	by := fs.String("by", "", "who records it (default: your login name)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("exceptions add takes no arguments (got %q)", pos[0])
	}
	for _, f := range []struct{ name, v string }{{"tenant", *tenant}, {"owner", *owner}, {"reason", *reason},
		{"controls", *controls}, {"expires", *expires}} {
		if f.v == "" {
			return usageError("exceptions add: --%s is required", f.name)
		}
	}
	exp, err := exceptions.ParseExpiry(*expires)
	if err != nil {
		return usageError("--expires: %v", err)
	}
	cfg, dir, err := policyAndData(*cfgPath, *data, false)
	if err != nil {
		return err
	}
	if cfg != nil && cfg.Tenant(*tenant) == nil {
		return fmt.Errorf("unknown tenant %q: not in %s", *tenant, cfg.Path)
	}
	actor, err := actorName(*by)
	if err != nil {
		return err
	}
	// The configured store (store.driver): with PostgreSQL, an exception
	// written to a local SQLite file would be one no node or auditor sees.
	b, err := backendOf(cfg) // store.go
	if err != nil {
		return err
	}
	st, err := audit.Open(context.Background(), dir, audit.Options{Backend: b})
	if err != nil {
		return err
	}
	defer st.Close()
	reg := &exceptions.Register{Store: st, DB: st.DB()}
	x, err := reg.Add(context.Background(), exceptions.Exception{Tenant: *tenant, Owner: *owner, Reason: *reason,
		Controls: *controls, ExpiresAt: exp, CreatedBy: actor})
	if err != nil {
		return invalidAsUsage(err)
	}
	fmt.Fprintln(e.stdout, x.ID)
	return nil
}

func runExceptionClose(e *env, args []string) error {
	fs := newFlags(e, "exceptions close", exceptionsSynopsis)
	cfgPath := fs.String("c", "", "policy whose store (store.driver, data_dir) to write (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	note := fs.String("note", "", "how it was resolved (required)")
	by := fs.String("by", "", "who closes it (default: your login name)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("usage: warden exceptions close ID --note TEXT")
	}
	id, err := exceptions.ParseID(pos[0])
	if err != nil {
		return usageError("%v", err)
	}
	if *note == "" {
		return usageError("exceptions close: --note is required")
	}
	actor, err := actorName(*by)
	if err != nil {
		return err
	}
	cfg, dir, err := storePolicy(*cfgPath, *data) // store.go
	if err != nil {
		return err
	}
	// Never create a database just to find the ID missing from it.
	st, err := openExistingStore(context.Background(), cfg, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	reg := &exceptions.Register{Store: st, DB: st.DB()}
	x, err := reg.Close(context.Background(), id, actor, *note)
	if err != nil {
		return invalidAsUsage(err)
	}
	fmt.Fprintf(e.stdout, "exception %d closed at %s\n", x.ID, x.ClosedAt.UTC().Format(time.RFC3339))
	return nil
}

// actorName is the name recorded as having acted: --by, else the login
// name of whoever runs the command, which must be a valid policy-style
// name (the register refuses others).
func actorName(by string) (string, error) {
	if by != "" {
		return by, nil
	}
	u, err := user.Current()
	if err != nil {
		return "", fmt.Errorf("cannot tell who you are (%v); pass --by NAME", err)
	}
	return u.Username, nil
}

// invalidAsUsage makes a refused value (a bad name, overlong text) a usage
// error, exit status 2, like a bad flag.
func invalidAsUsage(err error) error {
	if errors.Is(err, exceptions.ErrInvalid) {
		return usageError("%v", err)
	}
	return err
}
