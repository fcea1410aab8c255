package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/policy"
)

const evidenceSynopsis = "evidence --tenant T --month YYYY-MM --out DIR [--data DIR] [-c warden.yaml] [--stale-after 90d]\n" +
	"       warden evidence key [-c warden.yaml | --data DIR] [--tenant T]"

func runEvidence(e *env, args []string) error {
	if len(args) > 0 && args[0] == "key" {
		return runEvidenceKey(e, args[1:])
	}
	fs := newFlags(e, "evidence", evidenceSynopsis)
	tenant := fs.String("tenant", "", "tenant whose packet to write (required)")
	month := fs.String("month", "", "month YYYY-MM, UTC (required)")
	out := fs.String("out", "", "packet directory; must not exist, be empty, or hold this very packet (required)")
	data := fs.String("data", "", "data directory (default: data_dir of the policy, else ./data)")
	cfgPath := fs.String("c", "", "current policy: names the tenants and where the signing keys are, and judges what has no recorded policy version (default: ./warden.yaml when present)")
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
	recs, _, err := cliRecordings(*cfgPath, *data) // recordings.store: s3 reads from the object store
	if err != nil {
		return err
	}
	backend, err := backendOf(cfg) // store.go: the policy's store, as recordPolicy writes
	if err != nil {
		return err
	}
	ctx := context.Background()
	recordPolicy(ctx, e, cfg, dir, evidence.UseEvidence)
	pk, err := evidence.Build(ctx, evidence.Options{DataDir: dir, Backend: backend, Tenant: *tenant, Month: m,
		Out: *out, Policy: cfg, StaleAfter: window, Keys: evidenceKeys(cfg, dir, e), Recordings: recs})
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
	fmt.Fprintf(e.stdout, "verify: cd %s && sha256sum -c %s && ssh-keygen -Y verify -f PINNED_SIGNERS -I warden -n %s -s %s < %s\n",
		pk.Dir, evidence.ManifestName, evidence.Namespace, evidence.SignatureName, evidence.ManifestName)
	fmt.Fprintln(e.stdout, "  (PINNED_SIGNERS: the line of 'warden evidence key' the auditor got from you by another channel, not the packet's allowed_signers)")
	return nil
}

const evidenceKeySynopsis = "evidence key [-c warden.yaml | --data DIR] [--tenant T]"

// runEvidenceKey prints the signing key's fingerprint, as ssh-keygen -lf
// prints it, and its allowed_signers line: what the MSP gives the auditor
// through a channel other than the packet, for the auditor to pin.
func runEvidenceKey(e *env, args []string) error {
	fs := newFlags(e, "evidence key", evidenceKeySynopsis)
	cfgPath := fs.String("c", "", "policy whose evidence section says where the keys are (default: ./warden.yaml when present)")
	data := fs.String("data", "", "data directory (default: data_dir of the policy, else ./data)")
	tenant := fs.String("tenant", "", "tenant whose key to print (required with evidence.key_per_tenant)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("evidence key takes no arguments (got %q)", pos[0])
	}
	cfg, dir, err := policyAndData(*cfgPath, *data, false)
	if err != nil {
		return err
	}
	keys := evidenceKeys(cfg, dir, e)
	if keys.PerTenant && *tenant == "" {
		return usageError("evidence key: --tenant is required: evidence.key_per_tenant gives each tenant its own key")
	}
	if *tenant != "" && cfg != nil && cfg.Tenant(*tenant) == nil {
		return fmt.Errorf("unknown tenant %q: not in %s", *tenant, cfg.Path)
	}
	if keys.VaultKV == "" {
		// A file key is created on first use; not in a directory that a
		// typo in --data named.
		if st, err := os.Stat(dir); err != nil || !st.IsDir() {
			return fmt.Errorf("data directory %s does not exist", dir)
		}
	}
	signer, err := keys.Signer(context.Background(), *tenant)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, evidence.FingerprintLine(signer.PublicKey()))
	fmt.Fprintln(e.stdout, evidence.AllowedSigners(signer.PublicKey()))
	return nil
}

// evidenceKeys returns where cfg keeps the evidence signing keys. A key in
// Vault is read with a fresh login each time: packets are monthly.
func evidenceKeys(cfg *policy.Config, dir string, e *env) *evidence.Keys {
	if cfg == nil {
		return evidence.KeysFor(nil, dir, nil)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return evidence.KeysFor(cfg, dir, serveKeyFetcher(cfg, log))
}

// recordPolicy stores the version of the policy a CLI command read (issue
// 13: every load is recorded), when there is a database to store it in.
// Failing to is a warning: the command only reads, and an auditor may run
// it on a read-only copy.
func recordPolicy(ctx context.Context, e *env, cfg *policy.Config, dir, use string) {
	if cfg == nil {
		return
	}
	st, err := openExistingStore(ctx, cfg, dir) // never create a database to record a policy in
	if err != nil {
		return
	}
	err = evidence.RecordPolicy(ctx, st, cfg, use, time.Time{})
	st.Close()
	if err != nil {
		fmt.Fprintf(e.stderr, "warden: warning: policy version %s not recorded: %s\n", cfg.Version(), oneLine(err.Error()))
	}
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
