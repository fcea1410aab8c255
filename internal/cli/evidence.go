package cli

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/policy"
)

const evidenceSynopsis = "evidence --tenant T --month YYYY-MM --out DIR [--data DIR] [-c warden.yaml] [--stale-after 90d]"

func runEvidence(e *env, args []string) error {
	fs := newFlags(e, "evidence", evidenceSynopsis)
	tenant := fs.String("tenant", "", "tenant whose packet to write (required)")
	month := fs.String("month", "", "month YYYY-MM, UTC (required)")
	out := fs.String("out", "", "packet directory; must not exist, be empty, or hold this very packet (required)")
	data := fs.String("data", "", "data directory (default: data_dir of the policy, else ./data)")
	cfgPath := fs.String("c", "", "policy that judges break-glass roles, stale admins and request TTLs (default: ./warden.yaml when present)")
	staleAfter := fs.String("stale-after", "90d", "stale-admin window: days (90d), weeks (12w) or a Go duration")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("evidence takes no arguments (got %q)", pos[0])
	}
	for _, f := range []struct{ name, v string }{{"tenant", *tenant}, {"month", *month}, {"out", *out}} {
		if f.v == "" {
			return usageError("evidence: --%s is required", f.name)
		}
	}
	m, err := evidence.ParseMonth(*month)
	if err != nil {
		return usageError("--month: %v", err)
	}
	window, err := evidence.ParseWindow(*staleAfter)
	if err != nil {
		return usageError("--stale-after: %v", err)
	}
	cfg, dir, err := policyAndData(*cfgPath, *data, false)
	if err != nil {
		return err
	}
	pk, err := evidence.Build(context.Background(), evidence.Options{DataDir: dir, Tenant: *tenant, Month: m,
		Out: *out, Policy: cfg, StaleAfter: window})
	if err != nil {
		return err
	}
	s := pk.Summary
	if pk.Reused {
		fmt.Fprintf(e.stdout, "%s already holds this packet; nothing written\n", pk.Dir)
	} else {
		fmt.Fprintf(e.stdout, "wrote %s: %d files\n", pk.Dir, len(pk.Files))
	}
	if s.Partial {
		fmt.Fprintf(e.stdout, "partial: %s is not over; the packet stops at %s\n", s.Month, s.PeriodEnd)
	}
	fmt.Fprintf(e.stdout, "evidence key %s; %d overdue item(s)\n", s.EvidenceKey, len(s.Overdue))
	fmt.Fprintf(e.stdout, "verify: cd %s && sha256sum -c %s && ssh-keygen -Y verify -f %s -I warden -n %s -s %s < %s\n",
		pk.Dir, evidence.ManifestName, evidence.AllowedSignersName, evidence.Namespace, evidence.SignatureName, evidence.ManifestName)
	return nil
}

// policyAndData loads the policy given with -c, or ./warden.yaml when -c is
// empty and that file exists (nil when neither, unless required), and
// resolves --data: the flag, else the policy's data_dir, else ./data.
func policyAndData(cfgPath, dataFlag string, required bool) (*policy.Config, string, error) {
	if cfgPath == "" {
		if _, err := os.Stat("warden.yaml"); err == nil {
			cfgPath = "warden.yaml"
		} else if required {
			return nil, "", usageError("no policy: pass -c warden.yaml")
		}
	}
	var cfg *policy.Config
	if cfgPath != "" {
		var err error
		if cfg, err = policy.Load(cfgPath); err != nil {
			var list *policy.ErrorList
			if errors.As(err, &list) {
				return nil, "", fmt.Errorf("%s is invalid (%d error(s)); run: warden policy check -c %s", cfgPath, len(*list), cfgPath)
			}
			return nil, "", err
		}
	}
	switch {
	case dataFlag != "":
		return cfg, dataFlag, nil
	case cfg != nil:
		return cfg, cfg.DataDir, nil
	}
	return cfg, "data", nil
}
