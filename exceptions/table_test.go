package exceptions

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

func TestWriteTableFlagsExpiredEntries(t *testing.T) {
	r, clk := newRegister(t)
	ctx := context.Background()
	soon := sample()
	soon.ExpiresAt = t0.Add(time.Hour)
	mustAdd(t, r, soon)
	mustAdd(t, r, sample())
	clk.Set(t0.Add(2 * time.Hour))
	list, err := r.List(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, list); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "EXPIRED") {
		t.Fatalf("table:\n%s", buf.String())
	}
	if !strings.Contains(lines[1], "EXPIRED") || !strings.Contains(lines[1], "expired") {
		t.Fatalf("expired entry not flagged: %q", lines[1])
	}
	if strings.Contains(lines[2], "EXPIRED") || !strings.Contains(lines[2], " open ") {
		t.Fatalf("valid entry flagged: %q", lines[2])
	}
}

func TestWriteTableEscapesTamperedText(t *testing.T) {
	r, _ := newRegister(t)
	mustAdd(t, r, sample())
	// Someone with write access to warden.db plants terminal escapes and a
	// tab; the listing must show them inert and keep its columns.
	if err := r.Store.Update(context.Background(), func(tx *audit.Tx) error {
		_, err := tx.Exec(`UPDATE exceptions SET reason = ? WHERE id = 1`, "x\x1b]0;pwned\a\tcol")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	list, err := r.List(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteTable(&buf, list); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(buf.String(), "\x1b\a\t") || !strings.Contains(buf.String(), `\x1b]0;pwned\a\tcol`) {
		t.Fatalf("table not escaped: %q", buf.String())
	}
}
