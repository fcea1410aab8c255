package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/warden-gw/warden/policy"
)

// errPolicyInvalid is the exit-2 outcome of policy check (CONTRACT §2).
var errPolicyInvalid = errors.New("policy invalid")

func runPolicy(e *env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: warden policy check -c warden.yaml")
			return nil
		}
		return usageError("usage: warden policy check -c warden.yaml")
	}
	fs := newFlags(e, "policy check", "policy check -c warden.yaml")
	cfgPath := fs.String("c", "warden.yaml", "policy file to check")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("policy check takes no arguments (got %q)", pos[0])
	}
	cfg, err := policy.Load(*cfgPath)
	if err != nil {
		var list *policy.ErrorList
		if errors.As(err, &list) {
			for _, pe := range *list {
				fmt.Fprintln(e.stderr, pe.Error())
			}
			fmt.Fprintf(e.stderr, "warden: %s: %d error(s)\n", *cfgPath, len(*list))
			return fmt.Errorf("%w: %w", errUsage, errPolicyInvalid)
		}
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d tenants, %d hosts, %d users, %d groups, %d roles)\n",
		*cfgPath, len(cfg.Tenants), countHosts(cfg), len(cfg.Users), len(cfg.Groups), len(cfg.Roles))
	selectorNotes(e, cfg)
	return nil
}

// selectorNotes tells, for every role whose hosts selector gives both names
// and labels, that a host must match both and which hosts that leaves: an
// author who expected the union sees at once that the role reaches fewer.
func selectorNotes(e *env, cfg *policy.Config) {
	for _, r := range cfg.Roles {
		if len(r.Hosts.Names) == 0 || len(r.Hosts.Labels) == 0 {
			continue
		}
		var names []string
		for _, h := range cfg.HostsOf(r) {
			names = append(names, h.Name)
		}
		fmt.Fprintf(e.stdout, "note: role %s: a host must match both names and labels; it selects %s\n",
			r.Name, strings.Join(names, ", "))
	}
}

func countHosts(cfg *policy.Config) int {
	n := 0
	for _, t := range cfg.Tenants {
		n += len(t.Hosts)
	}
	return n
}
