package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// checkFixture records an intact session followed by another event, so
// the session.end event has neighbours on both sides.
func checkFixture(t *testing.T) (*Store, string, Session) {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Append(context.Background(), Event{Type: "test.before", Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	sess := recordSession(t, s, dir, "check-s1", "hello\r\n", "world\r\n")
	if err := s.Append(context.Background(), Event{Type: "test.after", Actor: "t"}); err != nil {
		t.Fatal(err)
	}
	return s, dir, sess
}

func mustCheck(t *testing.T, s *Store, dir, id string) SessionCheck {
	t.Helper()
	c, err := s.CheckSession(context.Background(), dir, id)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// wantRed asserts a failed check whose problems mention want.
func wantRed(t *testing.T, c SessionCheck, want string) {
	t.Helper()
	if c.Match {
		t.Fatalf("check passed: %+v", c)
	}
	for _, p := range c.Problems {
		if strings.Contains(p, want) {
			return
		}
	}
	t.Errorf("problems %q do not say %q", c.Problems, want)
}

func TestCheckSessionIntact(t *testing.T) {
	s, dir, sess := checkFixture(t)
	c := mustCheck(t, s, dir, sess.ID)
	if !c.Match || !c.ChainOK || !c.CommandsOK || len(c.Problems) > 0 || c.Live {
		t.Fatalf("intact session: %+v", c)
	}
	if c.FileSHA256 == "" || c.FileSHA256 != c.SealedSHA256 || c.FileSHA256 != c.RecordingSHA256 || c.RecordingPath != sess.RecordingPath {
		t.Errorf("digests: %+v", c)
	}
	// The last event of the chain has no successor: still intact.
	last := recordSession(t, s, dir, "check-s2", "x\r\n")
	if c := mustCheck(t, s, dir, last.ID); !c.Match {
		t.Errorf("session at the head: %+v", c)
	}
}

func TestCheckSessionLiveAndUnknown(t *testing.T) {
	s, dir, _ := checkFixture(t)
	mustStart(t, s, testSession("check-live"))
	c := mustCheck(t, s, dir, "check-live")
	if !c.Live || c.Match || len(c.Problems) > 0 {
		t.Errorf("live: %+v", c)
	}
	if _, err := s.CheckSession(context.Background(), dir, "nosuch-session"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown: %v", err)
	}
	if _, err := s.CheckSession(context.Background(), dir, "../etc"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad id: %v", err)
	}
}

func TestCheckSessionRecordingAltered(t *testing.T) {
	s, dir, sess := checkFixture(t)
	path := filepath.Join(dir, sess.RecordingPath)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), "world", "w0rld", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	c := mustCheck(t, s, dir, sess.ID)
	wantRed(t, c, "differs from the sealed digest: the recording was altered")
	if !c.ChainOK || !c.CommandsOK || c.FileSHA256 == c.SealedSHA256 {
		t.Errorf("only the file is at fault: %+v", c)
	}
	os.Remove(path)
	wantRed(t, mustCheck(t, s, dir, sess.ID), "recording missing")
}

func TestCheckSessionRowDigestAltered(t *testing.T) {
	s, dir, sess := checkFixture(t)
	db := rawDB(t, dir)
	if _, err := db.Exec(`UPDATE sessions SET recording_sha256 = ? WHERE id = ?`, strings.Repeat("0", 64), sess.ID); err != nil {
		t.Fatal(err)
	}
	c := mustCheck(t, s, dir, sess.ID)
	wantRed(t, c, "sessions.recording_sha256 differs from the digest sealed in the session.end event")
	if !c.ChainOK {
		t.Errorf("chain blamed: %+v", c)
	}
}

// The session.end event's data edited, with and without its own hash
// recomputed: the first breaks its hash, the second the next event's link.
func TestCheckSessionEventAltered(t *testing.T) {
	for _, rehash := range []bool{false, true} {
		s, dir, sess := checkFixture(t)
		db := rawDB(t, dir)
		dropTrigger(t, db, "audit_events_no_update", "audit_events")
		var seq int64
		var row eventRow
		var prev string
		if err := db.QueryRow(`SELECT seq, ts, type, actor, subject, data, prev_hash FROM audit_events
			WHERE type = 'session.end' AND json_extract(data, '$.session_id') = ?`, sess.ID).
			Scan(&seq, &row.ts, &row.typ, &row.actor, &row.subject, &row.data, &prev); err != nil {
			t.Fatal(err)
		}
		// Point the seal at a forged digest, as someone who swapped the
		// recording would.
		forged := strings.Repeat("f", 64)
		var old string
		db.QueryRow(`SELECT recording_sha256 FROM sessions WHERE id = ?`, sess.ID).Scan(&old)
		row.data = strings.Replace(row.data, old, forged, 1)
		if _, err := db.Exec(`UPDATE audit_events SET data = ? WHERE seq = ?`, row.data, seq); err != nil {
			t.Fatal(err)
		}
		want := "hash mismatch: the event was altered"
		if rehash {
			p, _ := decodeHash(prev)
			sum := eventHash(p, canonicalEvent(seq, row))
			if _, err := db.Exec(`UPDATE audit_events SET hash = ? WHERE seq = ?`, hex.EncodeToString(sum[:]), seq); err != nil {
				t.Fatal(err)
			}
			want = "does not link to it: the session.end event was altered"
		}
		c := mustCheck(t, s, dir, sess.ID)
		wantRed(t, c, want)
		wantRed(t, c, "sessions.recording_sha256 differs")
		if c.ChainOK {
			t.Errorf("rehash %v: ChainOK with an altered event", rehash)
		}
	}
}

func TestCheckSessionCommandsAltered(t *testing.T) {
	s, dir, sess := checkFixture(t)
	db := rawDB(t, dir)
	if _, err := db.Exec(`UPDATE commands SET command = 'innocent' WHERE session_id = ?`, sess.ID); err != nil {
		t.Fatal(err)
	}
	c := mustCheck(t, s, dir, sess.ID)
	wantRed(t, c, "command rows differ from the sealed digest")
	if c.CommandsOK {
		t.Error("CommandsOK with edited rows")
	}
	// The offset is navigation, outside the seal: editing it is no finding.
	s2, dir2, sess2 := checkFixture(t)
	if _, err := rawDB(t, dir2).Exec(`UPDATE commands SET offset = 99 WHERE session_id = ?`, sess2.ID); err != nil {
		t.Fatal(err)
	}
	if c := mustCheck(t, s2, dir2, sess2.ID); !c.Match {
		t.Errorf("offset edit: %+v", c)
	}
}

// An ended row whose event was removed from the chain is red.
func TestCheckSessionEventMissing(t *testing.T) {
	s, dir, sess := checkFixture(t)
	db := rawDB(t, dir)
	dropTrigger(t, db, "audit_events_no_delete", "audit_events")
	if _, err := db.Exec(`DELETE FROM audit_events WHERE type = 'session.end'`); err != nil {
		t.Fatal(err)
	}
	wantRed(t, mustCheck(t, s, dir, sess.ID), "the chain has no session.end event")
}
