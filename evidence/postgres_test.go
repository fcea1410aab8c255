package evidence

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/storetest"
)

// TestMain reads the harness switch: WARDEN_STORE=postgres runs every
// test of the package on PostgreSQL, a database per data directory.
func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }

// The same month of data, written through the store once on SQLite and
// once on PostgreSQL, gives packets whose every file is byte-identical:
// the summary, the CSVs, the chain head, the manifest and its signature.
func TestPacketIsByteIdenticalOnSQLiteAndPostgres(t *testing.T) {
	signer, err := ssh.NewSignerFromKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	build := func(w *world) (*Packet, string) {
		out := filepath.Join(t.TempDir(), "packet")
		pk, err := Build(w.ctx, Options{DataDir: w.dir, Backend: w.be, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"),
			Out: out, Policy: w.cfg, Now: w.clk.Now, Signer: signer})
		if err != nil {
			t.Fatalf("Build (%q): %v", w.be.Driver, err)
		}
		return pk, out
	}
	lite, liteOut := build(october(t))
	pg, pgOut := build(octoberOn(t, audit.Backend{Driver: audit.DriverPostgres, DSN: storetest.Server.Database(t)}))

	if len(lite.Files) < 5 || !equalStrings(lite.Files, pg.Files) {
		t.Fatalf("files differ:\nsqlite   %v\npostgres %v", lite.Files, pg.Files)
	}
	for _, name := range lite.Files {
		a, err := os.ReadFile(filepath.Join(liteOut, name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(pgOut, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s differs:\n--- sqlite\n%s\n--- postgres\n%s", name, a, b)
		}
	}
	// Not vacuous: the packet holds the month's sessions and commands.
	if lite.Summary.AuditChainHead == "" || lite.Summary.AuditChainHead != pg.Summary.AuditChainHead {
		t.Fatalf("chain heads %q and %q", lite.Summary.AuditChainHead, pg.Summary.AuditChainHead)
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
