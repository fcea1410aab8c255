package audit

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenReadOnlyWithoutDatabase(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	_, err := OpenReadOnly(dir)
	abs, _ := filepath.Abs(filepath.Join(dir, DBName))
	want := "audit: no database at " + abs
	if onPostgres() {
		want = "audit: no Warden tables in the PostgreSQL database (warden serve creates them)"
	}
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("OpenReadOnly created %s: %v", dir, err)
	}
	if _, err := Verify(context.Background(), dir); err == nil || !strings.Contains(err.Error(), "no database at") && !strings.Contains(err.Error(), "no Warden tables") {
		t.Fatalf("Verify without database: %v", err)
	}
}

func TestReaderListsWhatAClosedStoreWrote(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	mustStart(t, s, testSession("S1"))
	if err := s.LogCommand(ctx, testCommand("S1", "id", t0)); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(ctx, Event{Type: "session.start", Subject: "S1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Sessions(ctx, SessionFilter{User: "alice"}); err != nil || len(got) != 1 || got[0].ID != "S1" {
		t.Errorf("Sessions = %+v, %v", got, err)
	}
	if got, err := r.Session(ctx, "S1"); err != nil || got.Host != "web01" {
		t.Errorf("Session = %+v, %v", got, err)
	}
	if got, err := r.Commands(ctx, CommandFilter{SessionID: "S1"}); err != nil || len(got) != 1 || got[0].Command != "id" {
		t.Errorf("Commands = %+v, %v", got, err)
	}
	if got, err := r.Events(ctx, 0, 0); err != nil || len(got) != 1 || got[0].Subject != "S1" {
		t.Errorf("Events = %+v, %v", got, err)
	}
	if _, err := r.DB().Exec(`DELETE FROM commands`); err == nil {
		t.Error("the read-only Reader deleted rows")
	}
}

func TestReadsReportCorruptTimes(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustStart(t, s, testSession("S1"))
	if _, err := rawDB(t, dir).Exec(`UPDATE sessions SET started_at = 'yesterday'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(context.Background(), "S1"); err == nil || !strings.Contains(err.Error(), "started_at") {
		t.Fatalf("corrupt started_at read as %v", err)
	}
}
