package evidence

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// EventPolicyLoaded is the audit event of every policy load. Its subject is
// the policy's version (policy.Config.Version); its data holds "sha256",
// "path" and "use".
const EventPolicyLoaded = "policy.loaded"

// Uses of a loaded policy, the "use" of a policy.loaded event. Only a
// gateway's load puts a policy in force: the CLI reads a policy to judge
// or reconcile, which says nothing about what the gateway enforced.
const (
	UseGateway   = "gateway"   // warden serve, at start or on a reload
	UseEvidence  = "evidence"  // warden evidence, for rows with no recorded version
	UseReconcile = "reconcile" // warden reconcile
)

// RecordPolicy stores cfg's exact bytes under its version in
// policy_versions (once per version: the same bytes loaded again add no
// row) and appends a policy.loaded event naming the version, in one
// transaction. at is the time of the load; zero means now. A Config with
// no version (not made by policy.Load or Parse) is refused.
func RecordPolicy(ctx context.Context, st *audit.Store, cfg *policy.Config, use string, at time.Time) error {
	if cfg == nil || cfg.Version() == "" {
		return errors.New("evidence: record policy: the policy has no version (not loaded from a file)")
	}
	if at.IsZero() {
		at = time.Now()
	}
	ts, err := audit.Time(at)
	if err != nil {
		return fmt.Errorf("evidence: record policy: %w", err)
	}
	v := cfg.Version()
	err = st.Update(ctx, func(tx *audit.Tx) error {
		res, err := tx.Exec(`INSERT INTO policy_versions (sha256, content, path, first_loaded_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (sha256) DO NOTHING`, v, cfg.Source, cfg.Path, ts)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		return tx.Append(audit.Event{TS: at, Type: EventPolicyLoaded, Actor: "warden", Subject: "policy:" + v,
			Data: map[string]any{"sha256": v, "path": cfg.Path, "use": use, "new_version": n == 1}})
	})
	if err != nil {
		return fmt.Errorf("evidence: record policy %s: %w", v[:12], err)
	}
	return nil
}

// PolicyVersion is one policy that judged something in a packet.
type PolicyVersion struct {
	SHA256 string `json:"sha256"` // of the policy file's exact bytes
	File   string `json:"file"`   // the packet's extract of it: the tenant's roles and their groups
	Path   string `json:"path"`   // where it was loaded from
	// What it judged: grants and sessions that ran under it, the checks
	// made at the end of the period (stale admins, unexplained grants,
	// request TTLs) when it was the gateway's policy then.
	Grants      int  `json:"grants"`
	Sessions    int  `json:"sessions"`
	EndOfPeriod bool `json:"end_of_period"`
	// Current marks the policy given to the build, which judged what had
	// no recorded version: rows written before versions were recorded, or
	// a period end with no recorded gateway load before it.
	Current bool `json:"current"`
}

// rowQueryer is what *sql.Tx and *audit.Tx have in common for one row.
type rowQueryer interface {
	QueryRow(query string, args ...any) *sql.Row
}

// judges holds the policies a packet judges with, each parsed once.
type judges struct {
	current *policy.Config            // the build's policy; nil when none was given
	parsed  map[string]*policy.Config // recorded versions; nil value: unreadable
	paths   map[string]string
	end     *policy.Config // the gateway's policy at the end of the period
	endCur  bool           // end is the current policy: no recorded load before the end
	used    map[string]*PolicyVersion
}

func newJudges(current *policy.Config) *judges {
	return &judges{current: current, parsed: map[string]*policy.Config{}, paths: map[string]string{},
		used: map[string]*PolicyVersion{}}
}

// version returns the recorded policy of version v, parsed from its stored
// bytes, or nil when v is empty, unknown or no longer parses.
func (j *judges) version(q rowQueryer, v string) (*policy.Config, error) {
	if v == "" {
		return nil, nil
	}
	if c, ok := j.parsed[v]; ok {
		return c, nil
	}
	var content []byte
	var path sql.NullString
	err := q.QueryRow(`SELECT content, path FROM policy_versions WHERE sha256 = ?`, v).Scan(&content, &path)
	if errors.Is(err, sql.ErrNoRows) {
		j.parsed[v] = nil
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read policy version %s: %w", v, err)
	}
	name := path.String
	if name == "" {
		name = "warden.yaml"
	}
	// Parse, not Load: the files a policy names (known_hosts) may be
	// gone; only its roles and groups judge a packet. A version that no
	// longer parses (a later Warden refuses it) is judged as unrecorded.
	c, err := policy.Parse(content, name)
	if err != nil || c.Version() != v {
		c = nil
	}
	j.parsed[v], j.paths[v] = c, path.String
	return c, nil
}

// forRow returns the policy that judges a row recorded under version v:
// that version, else the current policy (current reports it).
func (j *judges) forRow(q rowQueryer, v string) (cfg *policy.Config, current bool, err error) {
	c, err := j.version(q, v)
	if err != nil || c != nil {
		return c, false, err
	}
	return j.current, j.current != nil, nil
}

// atEnd finds the policy the gateway had in force at the end of the
// period: the version of the last gateway load before it.
func (j *judges) atEnd(q rowQueryer, endTxt string) error {
	var v string
	err := q.QueryRow(`SELECT json_extract(data, '$.sha256') FROM audit_events
		WHERE type = ? AND ts < ? AND json_extract(data, '$.use') = ? ORDER BY seq DESC LIMIT 1`,
		EventPolicyLoaded, endTxt, UseGateway).Scan(&v)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("find the policy in force: %w", err)
	}
	c, err := j.version(q, v)
	if err != nil {
		return err
	}
	if c == nil {
		c, j.endCur = j.current, j.current != nil
	}
	j.end = c
	if u := j.use(c, j.endCur); u != nil {
		u.EndOfPeriod = true
	}
	return nil
}

// use notes that cfg judged something and returns its entry, or nil for
// no policy or one with no version.
func (j *judges) use(cfg *policy.Config, current bool) *PolicyVersion {
	if cfg == nil || cfg.Version() == "" {
		return nil
	}
	v := cfg.Version()
	u := j.used[v]
	if u == nil {
		path := j.paths[v]
		if path == "" {
			path = cfg.Path
		}
		u = &PolicyVersion{SHA256: v, File: policyFileName(v), Path: path}
		j.used[v] = u
	}
	u.Current = u.Current || current
	return u
}

// versions lists the policies used, by SHA-256.
func (j *judges) versions() []PolicyVersion {
	out := []PolicyVersion{}
	for _, u := range j.used {
		out = append(out, *u)
	}
	slices.SortFunc(out, func(a, b PolicyVersion) int {
		switch {
		case a.SHA256 < b.SHA256:
			return -1
		case a.SHA256 > b.SHA256:
			return 1
		}
		return 0
	})
	return out
}

func policyFileName(v string) string { return "policy-" + v + ".json" }

// policyExtract is what a packet shows of one policy version: the
// tenant's roles and the members of the groups they name, the facts that
// judged the packet. The whole file is not copied: it describes every
// tenant of the MSP, and a packet holds one tenant's records only. Its
// SHA-256 is given, so the MSP can show the full file to an auditor who
// asks, and the auditor can check it is the one that judged.
type policyExtract struct {
	SHA256 string        `json:"sha256"`
	Path   string        `json:"path"`
	Tenant string        `json:"tenant"`
	Roles  []roleExtract `json:"roles"`
	Groups []groupMember `json:"groups"`
}

type roleExtract struct {
	Name        string   `json:"name"`
	Privileged  bool     `json:"privileged"`
	BreakGlass  bool     `json:"break_glass"`
	Logins      []string `json:"logins"`
	Members     []string `json:"members"`
	Eligible    []string `json:"eligible"`
	Approvers   []string `json:"approvers"`
	Approvals   int      `json:"approvals"`
	MaxDuration string   `json:"max_duration"`
	RequestTTL  string   `json:"request_ttl"`
}

type groupMember struct {
	Group string   `json:"group"`
	Users []string `json:"users"`
}

// extract renders the packet's file for the policy of version v.
func extract(cfg *policy.Config, path, tenant string) ([]byte, error) {
	x := policyExtract{SHA256: cfg.Version(), Path: path, Tenant: tenant, Roles: []roleExtract{}, Groups: []groupMember{}}
	groups := map[string]bool{}
	for _, r := range cfg.Roles {
		if r.Tenant != tenant {
			continue
		}
		x.Roles = append(x.Roles, roleExtract{Name: r.Name, Privileged: r.Privileged, BreakGlass: r.BreakGlass,
			Logins: nonNil(r.Logins), Members: nonNil(r.Members), Eligible: nonNil(r.Eligible), Approvers: nonNil(r.Approvers),
			Approvals: r.Approvals, MaxDuration: r.MaxDuration.String(), RequestTTL: r.RequestTTL.String()})
		for _, g := range slices.Concat(r.Members, r.Eligible, r.Approvers) {
			groups[g] = true
		}
	}
	for g := range groups {
		m := groupMember{Group: g, Users: []string{}}
		for _, u := range cfg.Users {
			if slices.Contains(u.Groups, g) {
				m.Users = append(m.Users, u.Name)
			}
		}
		slices.Sort(m.Users)
		x.Groups = append(x.Groups, m)
	}
	slices.SortFunc(x.Groups, func(a, b groupMember) int {
		if a.Group < b.Group {
			return -1
		}
		return 1
	})
	b, err := json.MarshalIndent(x, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("evidence: encode policy %s: %w", cfg.Version(), err)
	}
	return append(b, '\n'), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// policyFiles renders the extract of every policy the packet used.
func (j *judges) policyFiles(tenant string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for v, u := range j.used {
		cfg := j.parsed[v]
		if cfg == nil {
			cfg = j.current
		}
		b, err := extract(cfg, u.Path, tenant)
		if err != nil {
			return nil, err
		}
		out[u.File] = b
	}
	return out, nil
}
