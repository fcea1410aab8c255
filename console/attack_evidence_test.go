package console

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/evidence"
)

// copyPacket replaces the packet directory dst with the files of src.
func copyPacket(t *testing.T, src, dst string) {
	t.Helper()
	if err := os.RemoveAll(dst); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttackEvidencePacketMovedIsNotGreen: a packet is signed as a whole,
// but the signature says nothing about where it lies. Someone who can write
// the data directory copies a clean packet over another month's (hiding a
// month with a break-glass use), or one tenant's over another's (with the
// shared evidence key, the signer is "the tenant's key" for both). The
// console must not show either as verified: the packet's own summary
// names its tenant and month, and they must be the ones it is listed as.
func TestAttackEvidencePacketMovedIsNotGreen(t *testing.T) {
	tc := newTestConsole(t)
	writePackets(t, tc)
	oct := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	sep := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	dd := tc.c.d.DataDir
	// acme's October packet stands in for globex's October, and for
	// acme's September.
	copyPacket(t, evidence.PacketDir(dd, "acme", oct), evidence.PacketDir(dd, "globex", oct))
	copyPacket(t, evidence.PacketDir(dd, "acme", oct), evidence.PacketDir(dd, "acme", sep))

	eve, _ := tc.signIn(t, "eve") // oversees both tenants
	_, body := get(t, eve, tc.srv.URL+"/evidence")
	for _, p := range []string{"globex/2026-10", "acme/2026-09"} {
		i := strings.Index(body, `data-warden-packet="`+p+`"`)
		if i < 0 {
			t.Fatalf("%s not listed:\n%s", p, body)
		}
		row := body[i:]
		if j := strings.Index(row[1:], `data-warden-packet=`); j > 0 {
			row = row[:j+1]
		}
		if !strings.Contains(row, `data-warden-check="bad"`) {
			t.Errorf("%s: a packet of acme/2026-10 placed there is not flagged:\n%s", p, row)
		}
	}
	// The real one is still green.
	i := strings.Index(body, `data-warden-packet="acme/2026-10"`)
	row := body[i:]
	if j := strings.Index(row[1:], `data-warden-packet=`); j > 0 {
		row = row[:j+1]
	}
	if !strings.Contains(row, `data-warden-check="ok"`) {
		t.Errorf("acme/2026-10 not green:\n%s", row)
	}
}
