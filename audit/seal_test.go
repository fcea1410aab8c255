package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestLogCommandRefusesAnEndedSession(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	mustStart(t, s, testSession("S1"))
	if err := s.EndSession(ctx, "S1", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	err := s.LogCommand(ctx, Command{SessionID: "S1", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
		Source: SourceShell, Command: "echo late", Action: ActionAllowed})
	if !errors.Is(err, ErrSessionEnded) {
		t.Fatalf("LogCommand after the end = %v, want ErrSessionEnded", err)
	}
	if list, err := s.Commands(ctx, CommandFilter{SessionID: "S1"}); err != nil || len(list) != 0 {
		t.Fatalf("commands = %v, %v; want none", list, err)
	}
	assertChain(t, s, dir, 1)
}

func TestSessionEndCannotBeAppendedByHand(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	err := s.Append(ctx, Event{Type: EventSessionEnd, Subject: "S1"})
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Append(session.end) = %v, want ErrInvalid", err)
	}
	err = s.Update(ctx, func(tx *Tx) error { return tx.Append(Event{Type: EventSessionEnd, Subject: "S1"}) })
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("Tx.Append(session.end) = %v, want ErrInvalid", err)
	}
}

// TestSessionEndCarriesReproducibleDigests recomputes the event's digests
// the way doc.go tells a verifier in another language to, with nothing of
// the package's code: plain SQL, byte-wise quoting and SHA-256.
func TestSessionEndCarriesReproducibleDigests(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	sess := testSession("S1")
	sess.RecordingPath = recPath
	mustStart(t, s, sess)
	for _, c := range []Command{
		{Command: "ls -l", Rule: ""},
		{Command: "say \"hi\" \\ \x1b[31mred\n\u202egnp.exe", Rule: `^rm -rf`, Action: ActionDenied},
		{Command: "naïve <&> \u2028", Source: SourceSFTP},
	} {
		c.SessionID, c.User, c.Login, c.Host, c.Tenant = "S1", "alice", "root", "web01", "acme"
		if c.Source == "" {
			c.Source = SourceShell
		}
		if c.Action == "" {
			c.Action = ActionAllowed
		}
		if err := s.LogCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	sum := sha256.Sum256([]byte("cast"))
	exit := 3
	if err := s.EndSession(ctx, "S1", SessionEnd{Reason: "exit", ExitStatus: &exit, RecordingSHA256: hex.EncodeToString(sum[:]),
		Actor: "alice", Subject: "root@web01"}); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Events(ctx, 0, 0)
	if err != nil || len(ev) != 1 {
		t.Fatalf("events %v, %v", ev, err)
	}
	e := ev[0]
	if e.Type != "session.end" || e.Actor != "alice" || e.Subject != "root@web01" || e.Data["session_id"] != "S1" ||
		e.Data["recording_path"] != recPath || e.Data["recording_sha256"] != hex.EncodeToString(sum[:]) ||
		fmt.Sprint(e.Data["exit_status"]) != "3" || fmt.Sprint(e.Data["commands"]) != "3" || fmt.Sprint(e.Data["commands_last_id"]) != "3" {
		t.Fatalf("event %+v", e)
	}

	quote := func(b *bytes.Buffer, s string) {
		b.WriteByte('"')
		for i := 0; i < len(s); i++ {
			switch c := s[i]; {
			case c == '"' || c == '\\':
				b.WriteByte('\\')
				b.WriteByte(c)
			case c < 0x20:
				fmt.Fprintf(b, "\\u%04x", c)
			default:
				b.WriteByte(c)
			}
		}
		b.WriteByte('"')
	}
	rows, err := rawDB(t, dir).Query(`SELECT id, session_id, ts, user, login, host, tenant, source, command, action, rule FROM commands WHERE session_id = 'S1' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var all bytes.Buffer
	for rows.Next() {
		var id int64
		var v [9]string
		var rule sql.NullString
		if err := rows.Scan(&id, &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &rule); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&all, "[%d", id)
		for _, f := range v {
			all.WriteByte(',')
			quote(&all, f)
		}
		all.WriteByte(',')
		if rule.Valid {
			quote(&all, rule.String)
		} else {
			all.WriteString("null")
		}
		all.WriteString("]\n")
	}
	want := sha256.Sum256(all.Bytes())
	if got := e.Data["commands_sha256"]; got != hex.EncodeToString(want[:]) {
		t.Fatalf("commands_sha256 = %v, want %x over\n%s", got, want, all.Bytes())
	}
}

// TestVerifyCatchesARewrittenCastWithItsRow is the attack of issue 8
// finding 7: rewrite the recording, and its digest in the sessions row.
func TestVerifyCatchesARewrittenCastWithItsRow(t *testing.T) {
	for how, tamper := range tamperers {
		t.Run(how, func(t *testing.T) {
			dir := verifyFixture(t)
			forged := []byte("{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"nothing to see\"]\n")
			if err := os.WriteFile(filepath.Join(dir, recPath), forged, 0o600); err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(forged)
			tamper(t, dir, `UPDATE sessions SET recording_sha256 = '`+hex.EncodeToString(sum[:])+`' WHERE id = 'S1'`)
			n := assertFirstProblem(t, dir, Problem{Seq: 1, Session: "S1", Msg: "recording_sha256 differs from the chained digest"})
			rep, _ := Verify(context.Background(), dir)
			if n != 2 || rep.Problems[1].File != recPath || rep.Problems[1].Session != "S1" {
				t.Fatalf("problems %v, want the row and the file named", rep.Problems)
			}
		})
	}
}

func TestVerifyReportsUnsealedLegacyEnds(t *testing.T) {
	dir := verifyFixture(t)
	// A session.end written before events carried digests: its data held
	// only what the gateway knew. Appended with the chain's own code, as
	// the old gateway did.
	s := openStore(t, dir)
	mustStart(t, s, testSession("OLD"))
	if err := s.write(context.Background(), func(tx *sql.Tx, tip *chainTip) error {
		if _, err := tx.Exec(`UPDATE sessions SET ended_at = '2026-11-29T08:00:01.000000Z' WHERE id = 'OLD'`); err != nil {
			return err
		}
		return appendEvent(tx, tip, eventRow{ts: "2026-11-29T08:00:01.000000Z", typ: EventSessionEnd, actor: "alice",
			subject: "root@web01", data: `{"end_reason":"exit","session_id":"OLD"}`})
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	rep, err := Verify(context.Background(), dir)
	if err != nil || len(rep.Problems) != 0 || rep.Unsealed != 1 || rep.Sessions != 1 {
		t.Fatalf("Verify = %+v, %v; want one sealed, one unsealed session, no problems", rep, err)
	}
}

// TestCommandsRacingTheEndAreSealedOrRefused logs commands from many
// goroutines while the session ends: each one is either in the sealed digest
// or refused, never stored unsealed.
func TestCommandsRacingTheEndAreSealedOrRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	mustStart(t, s, testSession("S1"))
	const n = 64
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		go func() {
			<-start
			errs <- s.LogCommand(ctx, Command{SessionID: "S1", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
				Source: SourceShell, Command: fmt.Sprint("echo ", i), Action: ActionAllowed})
		}()
	}
	close(start)
	if err := s.EndSession(ctx, "S1", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	logged := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			logged++
		case !errors.Is(err, ErrSessionEnded):
			t.Fatalf("LogCommand: %v", err)
		}
	}
	ev, err := s.Events(ctx, 0, 0)
	if err != nil || len(ev) != 1 || fmt.Sprint(ev[0].Data["commands"]) != fmt.Sprint(logged) {
		t.Fatalf("session.end %+v (%v); %d commands were logged", ev, err, logged)
	}
	rep, err := Verify(ctx, dir)
	if err != nil || len(rep.Problems) != 0 || rep.Commands != logged {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}
