package cli

import (
	"context"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// identityJSON is the stable --json form of one user of `warden identities`.
type identityJSON struct {
	User       string   `json:"user"`
	Source     string   `json:"source"` // "yaml" or "scim:DIRECTORY"
	State      string   `json:"state"`  // active, inactive or deleted
	Groups     []string `json:"groups"` // YAML groups, or the directory's groups
	Tenant     string   `json:"tenant,omitempty"`
	ExternalID string   `json:"external_id,omitempty"`
	Keys       int      `json:"keys"`
	UpdatedAt  string   `json:"updated_at,omitempty"`
}

// runIdentities lists every user Warden knows: the policy file's, then
// the directories' (tombstones included, so a leaver stays visible).
func runIdentities(e *env, args []string) error {
	fs := newFlags(e, "identities", "identities [-c warden.yaml] [--data DIR] [--json]")
	cfgPath := fs.String("c", "", "policy: its users and directories (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory (default: data_dir of the policy, else ./data)")
	asJSON := fs.Bool("json", false, "print a JSON array")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("identities takes no arguments (got %q)", pos[0])
	}
	cfg, dir, err := policyAndData(*cfgPath, *data, false)
	if err != nil {
		return err
	}
	list, err := identities(cfg, dir)
	if err != nil {
		return err
	}
	if *asJSON {
		return printJSON(e.stdout, list)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "USER\tSOURCE\tSTATE\tGROUPS\tTENANT\tKEYS\tEXTERNAL ID\tUPDATED")
	for _, u := range list {
		gs := make([]string, len(u.Groups))
		for i, g := range u.Groups {
			gs[i] = q(g)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", q(u.User), q(u.Source), u.State, orDash(strings.Join(gs, ",")),
			orDash(q(u.Tenant)), u.Keys, orDash(q(u.ExternalID)), orDash(u.UpdatedAt))
	}
	return tw.Flush()
}

func identities(cfg *policy.Config, dir string) ([]identityJSON, error) {
	list := []identityJSON{}
	if cfg != nil {
		for _, u := range cfg.Users {
			list = append(list, identityJSON{User: u.Name, Source: policy.SourceYAML, State: "active",
				Groups: append([]string{}, u.Groups...), Keys: len(u.Keys)})
		}
	}
	r, err := openCfgReader(context.Background(), cfg, dir) // store.go
	if err != nil {
		return nil, err
	}
	defer r.Close()
	users, _, err := identity.Load(context.Background(), r.DB())
	if err != nil {
		return nil, err
	}
	for _, u := range users {
		j := identityJSON{User: u.UserName, Source: u.Source(), State: u.State(), Groups: append([]string{}, u.Groups...),
			ExternalID: u.ExternalID, Keys: len(u.Keys), UpdatedAt: rfc3339(u.Updated)}
		if cfg != nil {
			if d := cfg.Directory(u.Directory); d != nil {
				j.Tenant = d.Tenant
			}
		}
		list = append(list, j)
	}
	return list, nil
}
