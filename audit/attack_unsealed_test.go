package audit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recstore"
)

// Attack: a node dies before its first upload (a session shorter than one
// upload interval, or the bucket away meanwhile). The survivor finds no
// segments and ends the session with a note, no digest. When the node
// comes back it stores its spool as the final object: the only copy the
// console and play show, and the one backups keep. Nothing in the chain
// said what it holds, so whoever may write the bucket could replace it
// and audit verify passed. The object's digest must be bound by an event,
// and verify must check it.
func TestAttackRecordingStoredAfterAnUnsealedReapIsBound(t *testing.T) {
	ctx := context.Background()
	sc := &reapScene{srv: s3test.Start(t), clock: newSetClock(), aData: t.TempDir(), auditDir: t.TempDir()}
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
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if sc.aS3, err = recstore.OpenS3(sc.srv.Config("recs/"), sc.aData); err != nil {
		t.Fatal(err)
	}
	if sc.bS3, err = recstore.OpenS3(sc.srv.Config("recs/"), t.TempDir()); err != nil {
		t.Fatal(err)
	}
	sc.finalKey = "recs/2026-12-02/" + reapID + ".cast"
	sess := testSession(reapID)
	sess.RecordingPath = reapRel
	mustStart(t, sc.a, sess)
	p := filepath.Join(sc.aData, filepath.FromSlash(reapRel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	spool := `{"version":2,"width":80,"height":24}` + "\n" + `[0.1,"o","# shutdown -h now\r\n"]` + "\n"
	if err := os.WriteFile(p, []byte(spool), 0o600); err != nil {
		t.Fatal(err)
	}
	// gw-a dies before any upload; gw-b reaps with nothing to seal.
	sc.clock.Add(31 * time.Second)
	if err := sc.b.Heartbeat(ctx, me(sc.b)); err != nil {
		t.Fatal(err)
	}
	if n, err := sc.b.ReapDeadNodes(ctx, 30*time.Second, sc.bS3); err != nil || n != 1 {
		t.Fatalf("ReapDeadNodes = %d, %v", n, err)
	}
	if row, _ := sc.b.Session(ctx, reapID); row.RecordingSHA256 != "" {
		t.Fatalf("sealed %q from nothing", row.RecordingSHA256)
	}
	// gw-a comes back and stores its spool.
	if err := sc.a.NodeStarted(ctx, &Self{Host: "testhost", Instance: "back", DeadAfter: 30 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if n := recoverOn(t, sc); n != 1 {
		t.Fatalf("Recover stored %d, want 1", n)
	}
	if got := objectBytes(t, sc.srv, sc.finalKey); string(got) != spool {
		t.Fatalf("final object %q", got)
	}
	mustVerify(t, sc.auditDir, sc.bS3)
	putObject(t, sc.srv, sc.finalKey, []byte(`{"version":2,"width":80,"height":24}`+"\n"))
	rep, err := VerifyWith(ctx, sc.auditDir, sc.bS3)
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, pr := range rep.Problems {
		found = found || pr.Session == reapID
	}
	if !found {
		t.Fatalf("verify passed with the stored recording replaced: %+v", rep.Problems)
	}
}
