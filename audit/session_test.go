package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSessionStartEndRoundTrip(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	in := Session{
		ID: "Ab-_9", User: "alice", Login: "root", Host: "web01", Tenant: "acme", Role: "prod-root",
		GrantID: 0, ClientAddr: "192.0.2.7:50000",
		StartedAt:     time.Date(2026, 11, 29, 9, 30, 0, 123456789, time.FixedZone("CET", 3600)),
		RecordingPath: "recordings/2026-11-29/Ab-_9.cast", CertSerial: "17",
	}
	mustStart(t, s, in)

	open, err := s.Session(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !open.EndedAt.IsZero() || open.ExitStatus != nil || open.EndReason != "" {
		t.Errorf("fresh session looks ended: %+v", open)
	}
	// Stored times are UTC with microseconds.
	if want := in.StartedAt.UTC().Truncate(time.Microsecond); !open.StartedAt.Equal(want) || open.StartedAt.Location() != time.UTC {
		t.Errorf("StartedAt = %v, want %v", open.StartedAt, want)
	}

	exit := 3
	end := SessionEnd{
		EndedAt: time.Date(2026, 11, 29, 9, 45, 0, 0, time.UTC), Reason: "exit", ExitStatus: &exit,
		RecordingSHA256: strings.Repeat("ab", 32), BytesIn: 10, BytesOut: 2000,
	}
	if err := s.EndSession(ctx, in.ID, end); err != nil {
		t.Fatal(err)
	}
	got, err := s.Session(ctx, in.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := in
	want.StartedAt = open.StartedAt
	want.EndedAt, want.EndReason, want.ExitStatus = end.EndedAt, end.Reason, &exit
	want.RecordingSHA256, want.BytesIn, want.BytesOut = end.RecordingSHA256, end.BytesIn, end.BytesOut
	if !reflect.DeepEqual(got, want) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
	}

	// Empty optional values are NULL for auditors, not "".
	var nulls int
	if err := s.DB().QueryRow(`SELECT CASE WHEN grant_id IS NULL THEN 1 ELSE 0 END + CASE WHEN role IS NULL THEN 1 ELSE 0 END FROM sessions WHERE id = ?`, in.ID).Scan(&nulls); err != nil || nulls != 1 {
		t.Errorf("grant_id NULL and role set: got %d NULLs, %v", nulls, err)
	}
}

func TestStartSessionRefusesBadInput(t *testing.T) {
	long := strings.Repeat("a", maxSessionID+1)
	for _, c := range []struct {
		name string
		edit func(*Session)
		msg  string
	}{
		{"empty ID", func(s *Session) { s.ID = "" }, "empty session ID"},
		{"ID with slash", func(s *Session) { s.ID = "a/b" }, "only letters"},
		{"ID with dots", func(s *Session) { s.ID = ".." }, "only letters"},
		{"overlong ID", func(s *Session) { s.ID = long }, "longer than"},
		{"missing user", func(s *Session) { s.User = "" }, "empty user"},
		{"missing tenant", func(s *Session) { s.Tenant = "" }, "empty tenant"},
		{"negative grant", func(s *Session) { s.GrantID = -1 }, "negative grant"},
		{"escaping recording path", func(s *Session) { s.RecordingPath = "../etc/passwd" }, "relative to the data directory"},
		{"absolute recording path", func(s *Session) { s.RecordingPath = "/etc/passwd" }, "relative to the data directory"},
		{"year beyond 9999", func(s *Session) { s.StartedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }, "outside years"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			sess := testSession("S1")
			c.edit(&sess)
			err := s.StartSession(context.Background(), sess)
			if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "audit: ") {
				t.Fatalf("got %v, want ErrInvalid mentioning %q", err, c.msg)
			}
			if got, _ := s.Sessions(context.Background(), SessionFilter{}); len(got) != 0 {
				t.Fatalf("refused session was stored: %+v", got)
			}
		})
	}
}

func TestStartSessionRefusesDuplicateID(t *testing.T) {
	s := openStore(t, t.TempDir())
	mustStart(t, s, testSession("S1"))
	if err := s.StartSession(context.Background(), testSession("S1")); err == nil {
		t.Fatal("duplicate session ID accepted")
	}
}

func TestEndSessionRefusals(t *testing.T) {
	for _, c := range []struct {
		name   string
		id     string
		end    SessionEnd
		target error
		msg    string
	}{
		{"unknown session", "nope", SessionEnd{}, ErrNotFound, "no such session"},
		{"already ended", "done", SessionEnd{Reason: "again"}, nil, "already ended"},
		{"empty ID", "", SessionEnd{}, ErrInvalid, "empty session ID"},
		{"bad digest", "open", SessionEnd{RecordingSHA256: "ABC"}, ErrInvalid, "64 lowercase hex"},
		{"negative bytes", "open", SessionEnd{BytesIn: -1}, ErrInvalid, "negative byte count"},
		{"unsafe path", "open", SessionEnd{RecordingPath: "a/../../b"}, ErrInvalid, "clean path"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			ctx := context.Background()
			mustStart(t, s, testSession("open"), testSession("done"))
			if err := s.EndSession(ctx, "done", SessionEnd{Reason: "exit"}); err != nil {
				t.Fatal(err)
			}
			err := s.EndSession(ctx, c.id, c.end)
			if err == nil || !strings.Contains(err.Error(), c.msg) || (c.target != nil && !errors.Is(err, c.target)) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.target, c.msg)
			}
			if done, _ := s.Session(ctx, "done"); done.EndReason != "exit" {
				t.Fatalf("ended session was rewritten: reason %q", done.EndReason)
			}
		})
	}
}

func TestSetSessionCert(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	mustStart(t, s, testSession("S1"))
	if err := s.SetSessionCert(ctx, "S1", "4242"); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Session(ctx, "S1"); err != nil || got.CertSerial != "4242" {
		t.Fatalf("CertSerial = %q, %v", got.CertSerial, err)
	}
	if err := s.SetSessionCert(ctx, "S9", "1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown session: %v, want ErrNotFound", err)
	}
	if err := s.SetSessionCert(ctx, "S1", ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty serial: %v, want ErrInvalid", err)
	}
}

func TestCloseOrphansEndsOpenSessionsAndLogsThem(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	// A left a recording behind, C a recording path whose file is gone.
	a, c := testSession("A"), testSession("C")
	a.RecordingPath, c.RecordingPath = "recordings/2026-11-29/A.cast", "recordings/2026-11-29/C.cast"
	cast := []byte("{\"version\":2}\n[0.5,\"o\",\"# \"]\n")
	if err := os.MkdirAll(filepath.Join(dir, "recordings/2026-11-29"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, a.RecordingPath), cast, 0o600); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, a, testSession("B"), c)
	if err := s.LogCommand(ctx, Command{SessionID: "A", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
		Source: SourceShell, Command: "reboot", Action: ActionAllowed}); err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, "B", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}

	n, err := s.CloseOrphans(ctx, "gateway restart")
	if err != nil || n != 2 {
		t.Fatalf("CloseOrphans = %d, %v; want 2", n, err)
	}
	for id, reason := range map[string]string{"A": "gateway restart", "B": "exit", "C": "gateway restart"} {
		got, err := s.Session(ctx, id)
		if err != nil || got.EndedAt.IsZero() || got.EndReason != reason {
			t.Errorf("session %s: ended %v reason %q, %v; want reason %q", id, got.EndedAt, got.EndReason, err, reason)
		}
	}
	ev, err := s.Events(ctx, 0, 0)
	if err != nil || len(ev) != 3 {
		t.Fatalf("events = %d, %v; want B's end and one per orphan", len(ev), err)
	}
	sum := sha256.Sum256(cast)
	want := map[string]struct {
		sum      string
		commands any
	}{"A": {hex.EncodeToString(sum[:]), json.Number("1")}, "C": {"", json.Number("0")}}
	for i, id := range []string{"A", "C"} {
		e := ev[i+1]
		if e.Type != "session.end" || e.Actor != "warden" || e.Subject != id || e.Data["session_id"] != id ||
			e.Data["reason"] != "gateway restart" || e.Data["recovered"] != true ||
			e.Data["recording_sha256"] != want[id].sum || fmt.Sprint(e.Data["commands"]) != fmt.Sprint(want[id].commands) ||
			len(fmt.Sprint(e.Data["commands_sha256"])) != 64 {
			t.Errorf("event %d = %+v", i, e)
		}
	}
	if ev[2].Data["recording_note"] != "recording missing" {
		t.Errorf("C's event does not say why it has no digest: %+v", ev[2].Data)
	}
	if n, err := s.CloseOrphans(ctx, ""); err != nil || n != 0 {
		t.Fatalf("second CloseOrphans = %d, %v; want 0", n, err)
	}
	assertChain(t, s, dir, 3)
}

func TestSessionsFilterAndOrder(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	at := func(h int) time.Time { return time.Date(2026, 11, 29, h, 0, 0, 0, time.UTC) }
	mk := func(id, user, tenant, host string, h int) Session {
		return Session{ID: id, User: user, Login: "root", Host: host, Tenant: tenant, StartedAt: at(h)}
	}
	// Inserted out of time order on purpose.
	mustStart(t, s,
		mk("s3", "alice", "acme", "web01", 3),
		mk("s1", "alice", "acme", "web01", 1),
		mk("s4", "bob", "globex", "web01", 4),
		mk("s2", "bob", "acme", "db01", 2),
	)
	for _, c := range []struct {
		name string
		f    SessionFilter
		want string
	}{
		{"all newest first", SessionFilter{}, "s4 s3 s2 s1"},
		{"by user", SessionFilter{User: "alice"}, "s3 s1"},
		{"by host in any tenant", SessionFilter{Host: "web01"}, "s4 s3 s1"},
		{"by tenant/host", SessionFilter{Host: "acme/web01"}, "s3 s1"},
		{"since is inclusive", SessionFilter{Since: at(2)}, "s4 s3 s2"},
		{"limit", SessionFilter{Limit: 2}, "s4 s3"},
		{"no match", SessionFilter{User: "carol"}, ""},
		{"one tenant", SessionFilter{Tenants: []string{"globex"}}, "s4"},
		{"tenants with limit", SessionFilter{Tenants: []string{"acme", "initech"}, Limit: 2}, "s3 s2"},
		{"no tenant overseen", SessionFilter{Tenants: []string{}}, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Sessions(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, g := range got {
				ids = append(ids, g.ID)
			}
			if strings.Join(ids, " ") != c.want {
				t.Errorf("got %v, want %s", ids, c.want)
			}
		})
	}
}

func TestSessionNotFound(t *testing.T) {
	s := openStore(t, t.TempDir())
	_, err := s.Session(context.Background(), "missing")
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"missing"`) {
		t.Fatalf("got %v, want ErrNotFound naming the ID", err)
	}
}
