package evidence

import (
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// checkPrevHead is the anchor check of audit verify (--anchor), run by
// every packet against the one before it, so that nobody has to remember
// to keep a head and run it. Each packet records the chain's head at the
// end of its month (summary.json audit_chain_head), signed. If the
// previous month's packet of tenant lies where the schedule writes it
// (PacketDir) and that head is no longer in the chain, events up to it
// were removed or the chain was recomputed since: the packet says so. A
// previous packet that is there but does not verify as that tenant's
// packet of that month cannot vouch for anything, and is reported too,
// rather than skipped: whoever rewrote the chain could otherwise alter the
// old packet to silence the check. No packet there (none written yet, or
// written on another node of a cluster) is no finding.
//
// It returns the finding ("" for none); err is for failures to read the
// chain at all.
func checkPrevHead(tx *sql.Tx, dataDir, tenant string, month time.Time) (string, error) {
	prev := month.AddDate(0, -1, 0)
	dir := PacketDir(dataDir, tenant, prev)
	name := prev.Format("2006-01")
	if _, err := os.Stat(filepath.Join(dir, ManifestName)); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if _, err := VerifyPacketOf(dir, tenant, name); err != nil {
		return fmt.Sprintf("the packet of %s does not verify (%s): the chain head it recorded cannot be checked",
			name, strings.TrimPrefix(err.Error(), "evidence: ")), nil
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return "", fmt.Errorf("evidence: read the packet of %s: %w", name, err)
	}
	var s struct {
		Head string `json:"audit_chain_head"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return "", fmt.Errorf("evidence: read the packet of %s: %w", name, err)
	}
	if s.Head == "" {
		return "", nil // the chain was empty at the end of that month
	}
	var seq int64
	err = tx.QueryRow(`SELECT seq FROM audit_events WHERE hash = ?`, s.Head).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Sprintf("the chain no longer holds %s, its head at the end of %s as that month's packet recorded it: "+
			"events up to it were removed or the chain was rewritten since", s.Head, name), nil
	}
	if err != nil {
		return "", fmt.Errorf("evidence: look up the head of %s: %w", name, err)
	}
	return "", nil
}
