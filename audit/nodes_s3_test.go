package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recstore"
)

// Dead-node reaping with recordings in S3 (issue 12): a real versitygw,
// and the store the harness gives (SQLite, or PostgreSQL under
// WARDEN_STORE=postgres).

const reapID = "reapsess0001"
const reapRel = "recordings/2026-12-02/" + reapID + ".cast"

func hexSum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// deadNodeWithSegments sets the scene: node gw-a runs session reapID and
// its uploader has put the first part of the spool in the store as
// segments; then gw-a dies (its uploader stops), and its spool goes on to
// hold lines the store never got. It returns gw-a's Store and spool
// directory, the survivor gw-b, the server, and the bytes in the segments
// and in the whole spool.
type reapScene struct {
	srv               *s3test.Server
	a, b              *Store
	clock             *setClock
	aData             string // gw-a's data directory (its spool)
	uploaded, spool   []byte
	aS3, bS3          *recstore.S3
	auditDir          string
	finalKey, tailKey string
	partsKey          string
}

func newReapScene(t *testing.T) *reapScene {
	t.Helper()
	ctx := context.Background()
	sc := &reapScene{srv: s3test.Start(t), clock: newSetClock(), aData: t.TempDir()}
	sc.auditDir = t.TempDir()
	for _, id := range []string{"gw-a", "gw-b"} {
		s, err := Open(ctx, sc.auditDir, sc.clock.opts(id))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if sc.a == nil {
			sc.a = s
		} else {
			sc.b = s
		}
	}
	var err error
	if sc.aS3, err = recstore.OpenS3(sc.srv.Config("recs/"), sc.aData); err != nil {
		t.Fatal(err)
	}
	// The survivor has a data directory of its own, without gw-a's spool.
	if sc.bS3, err = recstore.OpenS3(sc.srv.Config("recs/"), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	sc.finalKey = "recs/2026-12-02/" + reapID + ".cast"
	sc.tailKey, sc.partsKey = sc.finalKey+".tail", sc.finalKey+".parts/"
	for _, s := range []*Store{sc.a, sc.b} {
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	sess := testSession(reapID)
	sess.RecordingPath = reapRel
	mustStart(t, sc.a, sess)

	p := filepath.Join(sc.aData, filepath.FromSlash(reapRel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	write := func(s string) {
		if _, err := f.WriteString(s); err != nil {
			t.Fatal(err)
		}
	}
	u := recstore.NewUploader(sc.aS3, recstore.Options{Interval: 50 * time.Millisecond})
	if _, err := u.Follow(reapRel); err != nil {
		t.Fatal(err)
	}
	write(`{"version":2,"width":80,"height":24}` + "\n" + `[0.1,"o","$ "]` + "\n")
	waitUntil(t, "first segment", func() bool { return len(sc.srv.Objects(sc.partsKey)) == 1 })
	write(`[0.5,"o","id\r\n"]` + "\n")
	waitUntil(t, "second segment", func() bool { return len(sc.srv.Objects(sc.partsKey)) == 2 })
	u.Close(0) // gw-a dies: its uploader stops with it
	sc.uploaded, err = os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// The last seconds before the crash: in the spool, not in the store.
	write(`[0.9,"o","uid=0(root)\r\n"]` + "\n" + `[1.2,"o","$ rm -rf /tm`)
	if sc.spool, err = os.ReadFile(p); err != nil {
		t.Fatal(err)
	}
	return sc
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second) // generous: a loaded machine
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func objectBytes(t *testing.T, srv *s3test.Server, key string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(srv.Dir, s3test.Bucket, filepath.FromSlash(key)))
	if err != nil {
		t.Fatalf("object %s: %v", key, err)
	}
	return b
}

func eventsOf(t *testing.T, s *Store, typ string) []Event {
	t.Helper()
	all, err := s.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []Event
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

func mustVerify(t *testing.T, dir string, recs recstore.Store) VerifyReport {
	t.Helper()
	rep, err := VerifyWith(context.Background(), dir, recs)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify: %+v, %v", rep.Problems, err)
	}
	return rep
}

// The survivor seals what the object store holds: recording_sha256 is the
// SHA-256 of the segments concatenated, the session.end says so, the final
// object is made from them and reads back with that digest, and verify
// passes reading the recording from the object store.
func TestReapSealsSegmentsFromObjectStore(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	sc.clock.Add(31 * time.Second)
	if err := sc.b.Heartbeat(ctx, me(sc.b)); err != nil {
		t.Fatal(err)
	}
	n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3)
	if err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v; want 1", n, err)
	}
	row, err := sc.b.Session(ctx, reapID)
	if err != nil {
		t.Fatal(err)
	}
	if row.EndReason != EndInterrupted || row.RecordingSHA256 != hexSum(sc.uploaded) {
		t.Fatalf("row %+v; want interrupted with the segments' digest %s", row, hexSum(sc.uploaded))
	}
	ends := eventsOf(t, sc.b, EventSessionEnd)
	if len(ends) != 1 {
		t.Fatalf("%d session.end events", len(ends))
	}
	d := ends[0].Data
	sealed, _ := d["recording_sealed"].(map[string]any)
	if d["node"] != "gw-a" || sealed["from"] != "object store" || sealed["node"] != "gw-a" ||
		fmt.Sprint(sealed["bytes"]) != fmt.Sprint(len(sc.uploaded)) || fmt.Sprint(sealed["segments"]) != "2" ||
		d[keyRecordingSHA] != hexSum(sc.uploaded) || d["recording_note"] != nil {
		t.Fatalf("session.end data %v", d)
	}
	if got := objectBytes(t, sc.srv, sc.finalKey); hexSum(got) != row.RecordingSHA256 {
		t.Fatalf("final object %q does not hash to the seal", got)
	}
	if p := sc.srv.Objects(sc.partsKey); len(p) != 0 {
		t.Fatalf("segments left after the final object: %v", p)
	}
	r, err := sc.bS3.Open(ctx, reapRel)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != string(sc.uploaded) {
		t.Fatalf("read back %q", got)
	}
	if rep := mustVerify(t, sc.auditDir, sc.bS3); rep.Recordings != 1 {
		t.Fatalf("verify re-hashed %d recordings, want 1", rep.Recordings)
	}
}

// recoverOn runs gw-a's start-up recovery of leftover spools against the
// store, reporting through gw-a's chain.
func recoverOn(t *testing.T, sc *reapScene) int {
	t.Helper()
	ctx := context.Background()
	u := recstore.NewUploader(sc.aS3, recstore.Options{Events: func(ctx context.Context, typ, subject string, data map[string]any) error {
		return sc.a.Append(ctx, Event{Type: typ, Actor: "warden", Subject: subject, Data: data})
	}})
	defer u.Close(0)
	n, err := u.Recover(ctx, func(ctx context.Context, id string) (recstore.Sealed, error) {
		s, err := sc.a.Session(ctx, id)
		if err != nil {
			return recstore.Sealed{}, err
		}
		return recstore.Sealed{Ended: !s.EndedAt.IsZero(), EndReason: s.EndReason, SHA256: s.RecordingSHA256}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// gw-a comes back: its spool holds the sealed bytes and more. The sealed
// prefix stays the recording (final object unchanged), the rest becomes
// the tail object with a recording.tail_recovered event binding its
// digest, the spool goes, and verify passes.
func TestReapedNodeReturnStoresTail(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	sc.clock.Add(31 * time.Second)
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	final := objectBytes(t, sc.srv, sc.finalKey)

	// gw-a restarts on the same host: a new instance; its heartbeat is old.
	back := &Self{Host: "testhost", Instance: "after-the-crash", DeadAfter: 30 * time.Second}
	if err := sc.a.NodeStarted(ctx, back); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.a.CloseOrphans(ctx, ""); err != nil || n != 0 {
		t.Fatalf("CloseOrphans of gw-a after the reap = %d, %v; want 0", n, err)
	}
	if n := recoverOn(t, sc); n != 1 {
		t.Fatalf("Recover stored %d, want 1", n)
	}
	tail := sc.spool[len(sc.uploaded):]
	if got := objectBytes(t, sc.srv, sc.tailKey); string(got) != string(tail) {
		t.Fatalf("tail object %q, want %q", got, tail)
	}
	if got := objectBytes(t, sc.srv, sc.finalKey); string(got) != string(final) {
		t.Fatalf("final object replaced: %q", got)
	}
	ev := eventsOf(t, sc.a, recstore.EventTailRecovered)
	if len(ev) != 1 || ev[0].Subject != reapID || ev[0].Data["sha256"] != hexSum(tail) ||
		fmt.Sprint(ev[0].Data["bytes"]) != fmt.Sprint(len(tail)) || ev[0].Data["object"] != sc.tailKey {
		t.Fatalf("tail events %+v", ev)
	}
	if _, err := os.Stat(filepath.Join(sc.aData, filepath.FromSlash(reapRel))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("spool not removed: %v", err)
	}
	if p := sc.srv.Objects(sc.partsKey); len(p) != 0 {
		t.Fatalf("segments left: %v", p)
	}
	mustVerify(t, sc.auditDir, sc.bS3)
	// A second start finds nothing to do.
	if n := recoverOn(t, sc); n != 0 {
		t.Fatalf("second Recover stored %d", n)
	}
}

// The reaper stopped before making the final object (its process died
// after the commit): the returning node makes it from the segments, then
// stores the tail. The same when no reaper wrote the object at all.
func TestReapedNodeReturnMakesMissingFinalObject(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	sc.clock.Add(31 * time.Second)
	// A sealer that seals but never stores: the reaper "dies" right after.
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sealOnly{sc.bS3}); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	if o := sc.srv.Objects(sc.finalKey); len(o) != 2 {
		t.Fatalf("objects %v; want only the two segments", o)
	}
	mustVerify(t, sc.auditDir, sc.bS3) // read from the segments
	// gw-a was cut off, not dead: its uploader put one more segment after
	// the seal. The sealed run of segments is still found.
	next := sc.spool[len(sc.uploaded) : len(sc.uploaded)+strings.IndexByte(string(sc.spool[len(sc.uploaded):]), '\n')+1]
	extra := fmt.Sprintf("%s%016d", sc.partsKey, len(sc.uploaded))
	if _, err := sc.srv.Client().PutObject(ctx, s3test.Bucket, extra, strings.NewReader(string(next)), int64(len(next)),
		minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := recoverOn(t, sc); n != 1 {
		t.Fatalf("Recover stored %d", n)
	}
	if got := objectBytes(t, sc.srv, sc.finalKey); string(got) != string(sc.uploaded) {
		t.Fatalf("final object %q", got)
	}
	if got := objectBytes(t, sc.srv, sc.tailKey); string(got) != string(sc.spool[len(sc.uploaded):]) {
		t.Fatalf("tail object %q", got)
	}
	if p := sc.srv.Objects(sc.partsKey); len(p) != 0 {
		t.Fatalf("segments left: %v", p)
	}
	mustVerify(t, sc.auditDir, sc.bS3)
}

type sealOnly struct{ *recstore.S3 }

func (sealOnly) StoreSealed(context.Context, string, recstore.Seal) error { return nil }

// The returning spool does not start with the sealed bytes (edited while
// the node was down, or a bug): recording.conflict, nothing in the store
// overwritten or added, and the spool set aside under .conflict.
func TestReapedNodeReturnConflict(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	sc.clock.Add(31 * time.Second)
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	before := sc.srv.Objects("recs/")
	final := objectBytes(t, sc.srv, sc.finalKey)
	p := filepath.Join(sc.aData, filepath.FromSlash(reapRel))
	edited := strings.Replace(string(sc.spool), `"$ "`, `"# "`, 1)
	if err := os.WriteFile(p, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	if n := recoverOn(t, sc); n != 0 {
		t.Fatalf("Recover stored %d of a conflicting spool", n)
	}
	ev := eventsOf(t, sc.a, recstore.EventConflict)
	if len(ev) != 1 || ev[0].Subject != reapID || ev[0].Data["spool_sha256"] != hexSum([]byte(edited)) {
		t.Fatalf("conflict events %+v", ev)
	}
	if got := sc.srv.Objects("recs/"); len(got) != len(before) {
		t.Fatalf("objects changed: %v, were %v", got, before)
	}
	if got := objectBytes(t, sc.srv, sc.finalKey); string(got) != string(final) {
		t.Fatal("final object replaced")
	}
	if b, err := os.ReadFile(p + ".conflict"); err != nil || string(b) != edited {
		t.Fatalf("spool not kept aside: %v", err)
	}
	if n := recoverOn(t, sc); n != 0 || len(eventsOf(t, sc.a, recstore.EventConflict)) != 1 {
		t.Fatal("the conflict was taken up again at the next start")
	}
	mustVerify(t, sc.auditDir, sc.bS3)
}

// Recordings are local files (no object store): the survivor cannot seal
// the dead node's recording and says where it is.
func TestReapWithoutObjectStoreNotes(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b")
	a, b := st[0], st[1]
	if err := a.NodeStarted(ctx, me(a)); err != nil {
		t.Fatal(err)
	}
	sess := testSession(reapID)
	sess.RecordingPath = reapRel
	mustStart(t, a, sess)
	c.Add(31 * time.Second)
	if n, err := b.ReapDeadNodes(ctx, 30*time.Second, nil); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	row, _ := b.Session(ctx, reapID)
	ends := eventsOf(t, b, EventSessionEnd)
	if row.RecordingSHA256 != "" || len(ends) != 1 {
		t.Fatalf("row %+v, %d ends", row, len(ends))
	}
	note, _ := ends[0].Data["recording_note"].(string)
	if !strings.Contains(note, "on node gw-a, not sealed") || ends[0].Data["node"] != "gw-a" {
		t.Fatalf("session.end data %v", ends[0].Data)
	}
}

// An attacker who can write the database points the session's recording
// path elsewhere: out of the recordings folder, or at another session's
// recording (whose segments are in the store). The key check refuses both,
// nothing of the other session is sealed, moved or removed, and the reap
// still ends the session, with a note.
func TestReapRefusesEditedRecordingPath(t *testing.T) {
	for _, bad := range []string{
		"recordings/2026-12-02/../../other-bucket/" + reapID + ".cast",
		"recordings/2026-12-02/othersess0002.cast",
	} {
		t.Run(bad, func(t *testing.T) {
			ctx := context.Background()
			sc := newReapScene(t)
			// The other session's recording, as segments of its own.
			other := "recs/2026-12-02/othersess0002.cast.parts/0000000000000000"
			if _, err := sc.srv.Client().PutObject(ctx, s3test.Bucket, other, strings.NewReader("{}\n"), 3,
				minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
			if err := sc.a.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
				_, err := tx.Exec(`UPDATE sessions SET recording_path = ? WHERE id = ?`, bad, reapID)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			before := sc.srv.Objects("recs/")
			sc.clock.Add(31 * time.Second)
			if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
				t.Fatalf("ReapDeadNodes = %d, %v", n, err)
			}
			row, _ := sc.b.Session(ctx, reapID)
			ends := eventsOf(t, sc.b, EventSessionEnd)
			note, _ := ends[0].Data["recording_note"].(string)
			if row.EndReason != EndInterrupted || row.RecordingSHA256 != "" || !strings.Contains(note, "not sealed") ||
				!strings.Contains(note, "unsafe") && !strings.Contains(note, "not the recording of session") {
				t.Fatalf("row %+v, note %q", row, note)
			}
			if got := sc.srv.Objects("recs/"); len(got) != len(before) {
				t.Fatalf("objects changed: %v, were %v", got, before)
			}
		})
	}
}

// The object store does not answer when the node is found dead: the
// session is left open and sealed at a later round once the store is
// back; should the store stay away past the patience, the session ends
// all the same, with a note.
func TestReapWaitsForObjectStore(t *testing.T) {
	ctx := context.Background()
	sc := newReapScene(t)
	sc.srv.Stop()
	sc.clock.Add(31 * time.Second)
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 0 {
		t.Fatalf("ReapDeadNodes with the store away = %d, %v; want 0 (wait)", n, err)
	}
	sc.srv.Start()
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes with the store back = %d, %v", n, err)
	}
	if row, _ := sc.b.Session(ctx, reapID); row.RecordingSHA256 != hexSum(sc.uploaded) {
		t.Fatalf("row %+v", row)
	}

	sc2 := newReapScene(t)
	sc2.srv.Stop()
	sc2.clock.Add(reapPatience*30*time.Second + time.Second)
	if n, err := sc2.b.ReapDeadNodes(ctx, 30*time.Second, sc2.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes past the patience = %d, %v; want 1", n, err)
	}
	ends := eventsOf(t, sc2.b, EventSessionEnd)
	if note, _ := ends[0].Data["recording_note"].(string); !strings.Contains(note, "not sealed") {
		t.Fatalf("session.end data %v", ends[0].Data)
	}
}
