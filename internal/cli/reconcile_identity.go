package cli

import (
	"context"
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// withDirectory merges the directory users of the database in dir into
// cfg and reviews them. Without identity.directories, or before the
// database exists, cfg comes back unchanged.
func withDirectory(cfg *policy.Config, dir string) (*policy.Config, identity.Review, error) {
	if len(cfg.Identity.Directories) == 0 {
		return cfg, identity.Review{}, nil
	}
	r, err := openCfgReader(context.Background(), cfg, dir) // store.go
	if errors.Is(err, audit.ErrNoDatabase) {
		return cfg, identity.Reviewed(cfg, nil), nil
	}
	if err != nil {
		return nil, identity.Review{}, err
	}
	defer r.Close()
	users, _, err := identity.Load(context.Background(), r.DB())
	if err != nil {
		return nil, identity.Review{}, err
	}
	merged, _ := identity.MergeUsers(cfg, users, nil)
	return merged, identity.Reviewed(cfg, users), nil
}

func reviewJSON(cfg *policy.Config, rv identity.Review) ([]string, []identityJSON) {
	nodir, inactive := append([]string{}, rv.Unmatched...), []identityJSON{}
	for _, u := range rv.Inactive {
		j := identityJSON{User: u.UserName, Source: u.Source(), State: u.State(), Groups: append([]string{}, u.Groups...),
			ExternalID: u.ExternalID, Keys: len(u.Keys), UpdatedAt: rfc3339(u.Updated)}
		if d := cfg.Directory(u.Directory); d != nil {
			j.Tenant = d.Tenant
		}
		inactive = append(inactive, j)
	}
	return nodir, inactive
}

func printReview(e *env, cfg *policy.Config, rv identity.Review) error {
	if len(cfg.Identity.Directories) == 0 {
		return nil
	}
	nodir, inactive := reviewJSON(cfg, rv)
	fmt.Fprintf(e.stdout, "\nPolicy-file users with no directory counterpart: no leaver process removes them (%d)\n", len(nodir))
	for _, n := range nodir {
		fmt.Fprintf(e.stdout, "  %s\n", q(n))
	}
	fmt.Fprintf(e.stdout, "\nDirectory users inactive in the IdP (%d)\n", len(inactive))
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(inactive) > 0 {
		fmt.Fprintln(tw, "USER\tSOURCE\tSINCE")
		for _, u := range inactive {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", q(u.User), q(u.Source), u.UpdatedAt)
		}
	}
	return tw.Flush()
}
