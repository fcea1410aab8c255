package console

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/policy"
)

// /evidence: the monthly evidence packets the gateway wrote
// (evidence.schedule: monthly puts them in DATA/evidence/TENANT/YYYY-MM,
// evidence.PacketDir). Packets written elsewhere with `warden evidence
// --out DIR` are not on the gateway's disk and not listed.
//
// Scope: a packet belongs to one tenant; a viewer sees the packets of the
// tenants they oversee (approvers of a tenant's roles, its auditors, and
// the global auditors), as `ssh gw sessions` scopes sessions. Paths are
// built only from the policy's tenant names and a parsed month, never from
// a name read off the disk or the URL, and the answer for another tenant's
// packet is the same 404 as for one that does not exist.
//
// The signature check is evidence.VerifyPacketOf (every file in the
// manifest with its SHA-256, nothing else in the directory, the manifest's
// sshsig signature, and the summary naming the tenant and month the packet
// is listed as), and then the signing key is compared with the key the
// gateway's configuration names for the tenant.

// monthFile is a packet's download name, YYYY-MM.zip.
var monthFile = regexp.MustCompile(`^([0-9]{4}-[0-9]{2})\.zip$`)

type packetView struct {
	Tenant, Month string
	Download      string
	// Check is "ok" (green), "bad" (red), or "unknown" (the signature is
	// valid but the key could not be compared with the configured one).
	Check  string
	Detail string
}

type evidenceData struct {
	Dir     string
	Packets []packetView
	None    bool // the viewer oversees no tenant
}

func (c *Console) evidencePage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	pol := c.d.Policy()
	d := evidenceData{Dir: filepath.Join(c.d.DataDir, "evidence"), None: v.Oversight.None()}
	for _, t := range pol.Tenants {
		if !v.Oversight.Covers(t.Name) {
			continue
		}
		for _, month := range c.packetMonths(t.Name) {
			p := packetView{Tenant: t.Name, Month: month, Download: "/evidence/" + t.Name + "/" + month + ".zip"}
			p.Check, p.Detail = c.checkPacket(r.Context(), pol, t.Name, month, filepath.Join(d.Dir, t.Name, month))
			d.Packets = append(d.Packets, p)
		}
	}
	c.render(w, http.StatusOK, "evidence", v, "Evidence", d)
}

// packetMonths lists the months with a packet directory for tenant, newest
// first. Only names that parse as a month count.
func (c *Console) packetMonths(tenant string) []string {
	if !c.safeDir(filepath.Join("evidence", tenant)) {
		return nil
	}
	entries, err := os.ReadDir(filepath.Join(c.d.DataDir, "evidence", tenant))
	if err != nil {
		return nil
	}
	var months []string
	for _, e := range entries {
		if _, err := evidence.ParseMonth(e.Name()); err == nil && e.Type().IsDir() && len(e.Name()) == 7 {
			months = append(months, e.Name())
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(months)))
	return months
}

// safeDir reports whether rel, under the data directory, is a directory
// reached without a symbolic link on the way: a link planted there must
// not lead the console out of the evidence tree.
func (c *Console) safeDir(rel string) bool {
	p := c.d.DataDir
	for _, part := range strings.Split(filepath.Clean(rel), string(filepath.Separator)) {
		p = filepath.Join(p, part)
		st, err := os.Lstat(p)
		if err != nil || !st.IsDir() || st.Mode()&fs.ModeSymlink != 0 {
			return false
		}
	}
	return true
}

// checkPacket verifies the packet in dir and compares its signing key with
// the one configured for tenant.
func (c *Console) checkPacket(ctx context.Context, pol *policy.Config, tenant, month, dir string) (string, string) {
	// VerifyPacketOf, not VerifyPacket: a valid packet copied into another
	// month's or tenant's directory must not show green there.
	key, err := evidence.VerifyPacketOf(dir, tenant, month)
	if err != nil {
		return "bad", strings.TrimPrefix(err.Error(), "evidence: ")
	}
	got := ssh.FingerprintSHA256(key)
	keys := evidence.KeysFor(pol, c.d.DataDir, nil)
	if keys.VaultKV != "" {
		return "unknown", "signature valid; signed by " + got + "; the tenant's key is in Vault and was not compared here: compare it with the fingerprint you pinned"
	}
	// A file key is created on first use: look before asking for it, so
	// that showing a page never creates a signing key.
	if _, err := os.Lstat(keys.Where(tenant)); err != nil {
		return "bad", "signed by " + got + ", but this gateway has no evidence key for " + tenant
	}
	want, err := keys.Signer(ctx, tenant)
	if err != nil {
		c.log.Error("console: evidence key", "tenant", tenant, "err", err)
		return "unknown", "signature valid; signed by " + got + "; the tenant's key could not be read"
	}
	if w := ssh.FingerprintSHA256(want.PublicKey()); w != got {
		return "bad", "signed by " + got + ", not by the tenant's evidence key " + w
	}
	return "ok", "signature valid; every file matches the manifest; signed by the tenant's evidence key " + got
}

// evidenceZip serves a packet as a zip of its files.
func (c *Console) evidenceZip(w http.ResponseWriter, r *http.Request, v *Viewer) {
	tenant, file := r.PathValue("tenant"), r.PathValue("file")
	m := monthFile.FindStringSubmatch(file)
	pol := c.d.Policy()
	var reason string
	switch {
	case m == nil:
		reason = "not a packet name"
	case pol.Tenant(tenant) == nil:
		reason = "unknown tenant"
	case !v.Oversight.Covers(tenant):
		reason = "tenant not overseen"
	}
	var month string
	if reason == "" {
		month = m[1]
		if _, err := evidence.ParseMonth(month); err != nil {
			reason = "not a month"
		} else if !c.safeDir(filepath.Join("evidence", tenant, month)) {
			reason = "no such packet"
		}
	}
	if reason != "" {
		// Within the refusal budget: a viewer walking made-up packet names
		// must not grow the audit chain without bound.
		c.refuse(r.Context(), r, v, "evidence", reason+": "+Clean(truncate(tenant, 64))+"/"+Clean(truncate(file, 64)))
		c.fail(w, r, v, http.StatusNotFound, "no evidence packet of that name that you can see")
		return
	}
	if r.Method == http.MethodHead {
		// Headers only: nothing leaves the gateway, so nothing is
		// recorded as downloaded.
		w.Header().Set("Content-Type", "application/zip")
		return
	}
	b, err := zipPacket(filepath.Join(c.d.DataDir, "evidence", tenant, month))
	if err != nil {
		c.log.Error("console: evidence zip", "tenant", tenant, "month", month, "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "internal error; it was logged")
		return
	}
	c.auditEvent(r.Context(), "evidence.downloaded", v.User, "evidence/"+tenant+"/"+month, map[string]any{"via": "console", "bytes": len(b)})
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="warden-evidence-%s-%s.zip"`, tenant, month))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(b)
}

// zipPacket zips the regular files of a packet directory under a folder
// named like it. Anything else (a link, a subdirectory) is an error: a
// packet is flat, and VerifyPacket rejects the same.
func zipPacket(dir string) ([]byte, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	base := filepath.Base(dir)
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, errors.New("packet holds " + e.Name() + ", which is not a regular file")
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		f, err := zw.Create(base + "/" + e.Name())
		if err != nil {
			return nil, err
		}
		if _, err := f.Write(data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// auditEvent appends an event; a failure is logged, as the page's answer
// does not depend on it.
func (c *Console) auditEvent(ctx context.Context, typ, actor, subject string, data map[string]any) {
	if c.d.Store == nil {
		return
	}
	err := c.d.Store.Append(context.WithoutCancel(ctx), audit.Event{TS: c.d.Now().UTC(), Type: typ, Actor: actor, Subject: subject, Data: data})
	if err != nil {
		c.log.Error("console: audit event not written", "type", typ, "err", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
