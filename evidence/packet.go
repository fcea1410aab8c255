package evidence

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

// ErrUnknownTenant is matched by errors about a tenant that neither the
// policy nor the database knows.
var ErrUnknownTenant = errors.New("evidence: unknown tenant")

// ErrOutputTaken is matched by errors about an output directory that
// already holds a different packet or other files. A packet is never
// overwritten: the one an auditor received must stay the one on disk.
var ErrOutputTaken = errors.New("evidence: output directory is taken")

// KeyName is the evidence signing key's file in the data directory.
const KeyName = "evidence_ed25519"

// Options configures Build.
type Options struct {
	DataDir string // holds warden.db, recordings/ and the evidence key
	// Backend is the store's database; the zero value is warden.db in
	// DataDir (config store.driver).
	Backend audit.Backend
	Tenant  string    // the tenant whose rows the packet holds; no other tenant's
	Month   time.Time // first instant of the month, UTC (see ParseMonth)
	Out     string    // the packet directory; must not exist, be empty, or hold this very packet
	// Policy is the current policy. Each grant is judged by the policy it
	// was granted under, and the end-of-period checks (stale admins,
	// unexplained grants, request TTLs) by the gateway's policy at the end
	// of the period, both read from the database; Policy judges only what
	// has no recorded version (rows from before versions were recorded),
	// and the packet says so. nil leaves those verdicts out.
	Policy     *policy.Config
	StaleAfter time.Duration // stale-admin window; 0 means DefaultStaleAfter

	// Now is the clock; nil means time.Now. It decides whether the month
	// is over (a packet of the month in progress is marked partial).
	Now func() time.Time
	// Signer signs the manifest; nil means the tenant's key from Keys.
	Signer ssh.Signer
	// Keys finds the tenant's signing key (per tenant, in Vault); nil
	// means the ed25519 key at DataDir/evidence_ed25519, created (mode
	// 0600, atomically) on first use.
	Keys *Keys
	// Recordings is where recordings are re-hashed from
	// (recordings.store); nil means the files under DataDir.
	Recordings recstore.Store
}

// Packet describes a packet that Build wrote or found already written.
type Packet struct {
	Dir     string
	Files   []string // every file of the packet, sorted
	Summary Summary
	Reused  bool // Out already held this exact packet; nothing was written
}

// tenantRE is the policy's alphabet for tenant names; a tenant name
// becomes a directory name under DATA/evidence.
var tenantRE = regexp.MustCompile(`^[a-z_][a-zA-Z0-9._-]{0,63}$`)

// Build writes the evidence packet of one tenant and month to opt.Out.
//
// It reads the database in one read-only snapshot, so the gateway keeps
// running. It writes into a temporary directory beside Out and renames it
// into place, so a failure never leaves a half-written packet that looks
// complete. For a finished month the same inputs give byte-identical files
// (Ed25519 signatures are deterministic too), so building twice into the
// same Out is a no-op that reports Reused.
func Build(ctx context.Context, opt Options) (*Packet, error) {
	if !tenantRE.MatchString(opt.Tenant) {
		return nil, fmt.Errorf("%w %q: not a valid tenant name", ErrUnknownTenant, opt.Tenant)
	}
	if !opt.Month.Equal(monthStart(opt.Month)) {
		return nil, fmt.Errorf("%w: %s is not the first instant of a month", ErrBadMonth, opt.Month)
	}
	if opt.Out == "" {
		return nil, errors.New("evidence: no output directory")
	}
	now := time.Now
	if opt.Now != nil {
		now = opt.Now
	}
	at := now()
	if opt.Month.After(at) {
		return nil, fmt.Errorf("%w: %s has not begun", ErrFutureMonth, opt.Month.Format("2006-01"))
	}
	window := opt.StaleAfter
	if window <= 0 {
		window = DefaultStaleAfter
	}
	p, err := newPeriod(opt.Month, at)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	d, rec, j, err := read(ctx, opt, p, window)
	if err != nil {
		return nil, err
	}
	signer := opt.Signer
	if signer == nil {
		keys := Keys{DataDir: opt.DataDir}
		if opt.Keys != nil {
			keys = *opt.Keys
			if keys.DataDir == "" {
				keys.DataDir = opt.DataDir
			}
		}
		if signer, err = keys.Signer(ctx, opt.Tenant); err != nil {
			return nil, err
		}
	}
	s := summarize(d, opt.Tenant, p, j.end, rec, window)
	s.WithPolicy = j.end != nil || len(j.used) > 0
	s.PolicyVersions = j.versions()
	s.EvidenceKey = ssh.FingerprintSHA256(signer.PublicKey())
	files, err := render(s, d)
	if err != nil {
		return nil, err
	}
	pf, err := j.policyFiles(opt.Tenant)
	if err != nil {
		return nil, err
	}
	maps.Copy(files, pf)
	if err := seal(files, signer); err != nil {
		return nil, err
	}
	reused, err := writePacket(opt.Out, files)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	return &Packet{Dir: opt.Out, Files: names, Summary: s, Reused: reused}, nil
}

// read collects the packet's data, the policies that judge it, and the
// reconciliation at the period's end when there is a policy, from one
// read-only snapshot.
func read(ctx context.Context, opt Options, p period, window time.Duration) (*dataset, *Reconciliation, *judges, error) {
	r, err := audit.OpenReader(ctx, opt.DataDir, opt.Backend)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("evidence: %w", err)
	}
	defer r.Close()
	tx, err := r.BeginSnapshot(ctx)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("evidence: read: %w", err)
	}
	defer tx.Rollback()
	j := newJudges(opt.Policy)
	if err := j.atEnd(tx, p.endTxt); err != nil {
		return nil, nil, nil, fmt.Errorf("evidence: %w", err)
	}
	// Directory users count at the end as the directory had them then.
	if j.end, err = directoryAt(tx, j.end, p.endTxt); err != nil {
		return nil, nil, nil, fmt.Errorf("evidence: directory users: %w", err)
	}
	if err := checkTenant(tx, opt.Tenant, opt.Policy, j.end); err != nil {
		return nil, nil, nil, err
	}
	recs := opt.Recordings
	if recs == nil {
		recs = recstore.Local{Dir: opt.DataDir}
	}
	d, err := collect(tx, recs, opt.Tenant, p, j)
	if err != nil {
		return nil, nil, nil, err
	}
	if d.prevHead, err = checkPrevHead(tx, opt.DataDir, opt.Tenant, opt.Month); err != nil {
		return nil, nil, nil, err
	}
	var rec *Reconciliation
	if j.end != nil {
		if rec, err = assess(tx, j.end, opt.Tenant, p.end, window); err != nil {
			return nil, nil, nil, err
		}
	}
	return d, rec, j, nil
}

// checkTenant accepts a tenant the policy names or the database has rows
// for: a tenant dropped from the policy still gets its last packets.
func checkTenant(tx *sql.Tx, tenant string, cfg, atEnd *policy.Config) error {
	if cfg != nil && cfg.Tenant(tenant) != nil || atEnd != nil && atEnd.Tenant(tenant) != nil {
		return nil
	}
	for _, table := range []string{"sessions", "requests", "grants", "exceptions"} {
		var found bool
		// The table name is one of the constants above, never input.
		if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM `+table+` WHERE tenant = ?)`, tenant).Scan(&found); err != nil {
			return fmt.Errorf("evidence: look up tenant: %w", err)
		}
		if found {
			return nil
		}
	}
	if cfg == nil {
		return fmt.Errorf("%w %q: no records of it (pass the policy with -c to name a tenant without records)", ErrUnknownTenant, tenant)
	}
	return fmt.Errorf("%w %q: not in the policy and no records of it", ErrUnknownTenant, tenant)
}

// dataFiles are the packet's data sets, each written as .csv and .json.
func render(s Summary, d *dataset) (map[string][]byte, error) {
	files := map[string][]byte{}
	add := func(name string, c, j []byte, err error) error {
		if err != nil {
			return fmt.Errorf("evidence: encode %s: %w", name, err)
		}
		files[name+".csv"], files[name+".json"] = c, j
		return nil
	}
	for _, err := range []error{
		add(encodeNamed("requests", requestHeader, d.requests)),
		add(encodeNamed("approvals", approvalHeader, d.approvals)),
		add(encodeNamed("grants", grantHeader, d.grants)),
		add(encodeNamed("sessions", sessionHeader, d.sessions)),
		add(encodeNamed("commands", commandHeader, d.commands)),
		add(encodeNamed("exceptions", exceptionHeader, d.exceptions)),
		add(encodeNamed("recordings", recordingHeader, d.recordings)),
		add(encodeNamed("rotation_events", rotationHeader, d.rotationEvents)),
		add(encodeNamed("lifecycle", lifecycleHeader, d.lifecycle)),
	} {
		if err != nil {
			return nil, err
		}
	}
	sj, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence: encode summary.json: %w", err)
	}
	files["summary.json"] = append(sj, '\n')
	v := buildView(s, d)
	files["summary.md"] = v.markdown()
	if files["summary.html"], err = v.html(); err != nil {
		return nil, err
	}
	return files, nil
}

func encodeNamed[T csvRow](name string, header []string, rows []T) (string, []byte, []byte, error) {
	c, j, err := encodeTable(header, rows)
	return name, c, j, err
}
