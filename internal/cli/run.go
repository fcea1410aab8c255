// Package cli implements the warden command line (CONTRACT §2): one file per
// subcommand. Every command prints errors as one line prefixed "warden: " and
// exits 0 on success, 1 on failure and 2 on a usage error.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/warden-gw/warden/recorder"
)

// Version is the program version, set at link time with
// -ldflags "-X github.com/warden-gw/warden/internal/cli.Version=...".
var Version = "dev"

// env carries the standard streams into a subcommand.
type env struct {
	stdout, stderr io.Writer
}

type subcommand struct {
	summary string
	run     func(e *env, args []string) error
}

func subcommands() map[string]subcommand {
	return map[string]subcommand{
		"serve":      {"run the gateway", runServe},
		"demo":       {"zero-setup demo: gateway, built-in CA, a demo host and demo users", runDemo},
		"policy":     {"policy check: validate a policy file", runPolicy},
		"ca":         {"print the active backend's CA public key (TrustedUserCAKeys line)", runCA},
		"vault":      {"vault setup: bootstrap Vault's SSH secrets engine for Warden", runVault},
		"sessions":   {"list recorded sessions", runSessions},
		"commands":   {"search the command log", runCommands},
		"play":       {"replay a recording in the terminal", runPlay},
		"audit":      {"audit verify: check the audit hash chain and recording digests", runAudit},
		"exceptions": {"exception register: list, add, close", runExceptions},
		"reconcile":  {"stale-admin reconciliation against the policy; --apply records the clean-up", runReconcile},
		"evidence":   {"write the signed monthly evidence packet of a tenant", runEvidence},
		"requests":   {"list elevation requests", runRequests},
		"grants":     {"list grants", runGrants},
		"identities": {"list users with their source (yaml or scim:DIRECTORY), state and groups", runIdentities},
		"migrate":    {"migrate --to postgres: copy the SQLite store (and recordings, to S3 when configured) into PostgreSQL", runMigrate},
		"reload":     {"reload the policy of the running gateway (SIGHUP) without ending sessions", runReload},
		"version":    {"print the version", runVersion},
	}
}

// errUsage marks a usage error (exit status 2).
var errUsage = errors.New("usage")

// usageError formats a usage error.
func usageError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errUsage, fmt.Sprintf(format, args...))
}

// errSilent is a failure that was already reported in full.
var errSilent = errors.New("failed")

// Run executes the command line args and returns the exit status.
func Run(args []string, stdout, stderr io.Writer) int {
	e := &env{stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sc, ok := subcommands()[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "warden: unknown command %q; run: warden --help\n", args[0])
		return 2
	}
	err := sc.run(e, args[1:])
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errSilent):
		return 1
	case errors.Is(err, errPolicyInvalid):
		return 2 // every error was printed with its file:line
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "warden: "+recorder.Quote(strings.TrimPrefix(err.Error(), "usage: ")))
		return 2
	}
	// Errors can carry stored or typed text: escaped like every listing.
	fmt.Fprintln(stderr, "warden: "+recorder.Quote(oneLine(err.Error())))
	return 1
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Warden: a privileged-access SSH gateway.\n\nUsage: warden COMMAND [flags]\n\nCommands:")
	cmds := subcommands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-9s %s\n", n, cmds[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'warden COMMAND --help' for a command's flags.")
}

// newFlags returns a FlagSet whose errors are returned, not printed twice.
func newFlags(e *env, name, synopsis string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fs.SetOutput(e.stdout)
		fmt.Fprintf(e.stdout, "Usage: warden %s\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, turning flag errors into usage errors. Flags may
// come after positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		fs.SetOutput(io.Discard)
		err := fs.Parse(args)
		if errors.Is(err, flag.ErrHelp) {
			fs.Usage()
			return nil, flag.ErrHelp
		}
		if err != nil {
			return nil, usageError("%v", err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func oneLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " (…)"
	}
	return s
}

func runVersion(e *env, args []string) error {
	fs := newFlags(e, "version", "version")
	if _, err := parseFlags(fs, args); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "warden "+Version)
	return nil
}
