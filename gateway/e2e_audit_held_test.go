package gateway_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/recstore"
)

// The refusals a full database disk causes are audited after all: their
// events are held while the database cannot take them and appended once
// it can, in the order they happened and with the times they happened,
// followed by an audit.delayed event that puts the gap itself on the
// chain; the chain then verifies. Before, the gateway logged them and lost
// them.
func TestDatabaseDiskFullRefusalsAuditedLater(t *testing.T) {
	storetest.SQLiteOnly(t, "fills the data directory's disk, which holds the database (DATA/warden.db) only on SQLite; on PostgreSQL the tables are on the server's disk")
	var data string
	b := newTestbed(t, bedOptions{
		prepare: func(d string) {
			data = d
			mountTmpfs(t, d, "4m")
			mountTmpfs(t, filepath.Join(d, "recordings"), "16m")
		},
		configure: func(_ *testbed, o *gateway.Options) {
			// Slower than filling and freeing the disk (about 0.3 s),
			// so that the held events usually wait for the free.
			gateway.SetAuditRetry(o, 500*time.Millisecond, time.Second)
		},
	})
	if out, errOut, code := b.run(b.alice, "root@web01", "echo before-$((1+1))"); code != 0 || out != "before-2\n" {
		t.Fatalf("before the disk filled: %d %q %q", code, out, errOut)
	}
	filled := time.Now()
	free := fillDisk(t, data)
	// Two sessions refused for the session log, and an authentication
	// refusal (an unknown key), whose auth.failed event the report writes
	// at its flush. SQLite may still take a write now and then while the
	// disk is full (a WAL it can reuse): a session may get through.
	refused := 0
	for tries := 0; tries < 40 && refused < 2; tries++ {
		out, errOut, code := b.run(b.alice, "root@web01", "echo attempt")
		switch {
		case code == 0 && out == "attempt\n":
		case code == 1 && errOut == "warden: session log unavailable; session refused\n":
			refused++
		default:
			t.Fatalf("attempt %d on a full database disk: code %d out %q stderr %q", tries, code, out, errOut)
		}
	}
	if refused < 2 {
		t.Fatalf("%d sessions refused on a full database disk, want 2", refused)
	}
	if _, _, code := b.run(b.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("an unknown key: exit %d, want 255 (authentication failed)", code)
	}
	gateway.FlushPreAuth(b.gw)
	freed := time.Now()
	free()

	checkHeldRefusals(t, b, b.store, filled, freed, refused, "session log unavailable")
	if out, errOut, code := b.run(b.alice, "root@web01", "echo after-$((1+1))"); code != 0 || out != "after-2\n" {
		t.Fatalf("after the disk was freed: %d %q %q", code, out, errOut)
	}
	b.verifyAll()
}

// The same with PostgreSQL stopped (an operator's restart, held down for
// the test): the refusals while it is down reach the chain once it is
// back, and the chain verifies on the server.
func TestPostgresDownRefusalsAuditedLater(t *testing.T) {
	srv, dsn := pgtest.Own(t)
	backend := audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}
	b := newTestbed(t, bedOptions{
		store: func(o *audit.Options) { o.Backend, o.NodeID = backend, "gw-a" },
		configure: func(_ *testbed, o *gateway.Options) {
			o.NodeDeadAfter = time.Hour // no heartbeat runs in tests
			gateway.SetAuditRetry(o, 200*time.Millisecond, 500*time.Millisecond)
		},
	})
	if out, errOut, code := b.run(b.alice, "root@web01", "echo before-$((1+1))"); code != 0 || out != "before-2\n" {
		t.Fatalf("before the database stopped: %d %q %q", code, out, errOut)
	}
	halted := time.Now()
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	const refused = 2
	for i := range refused {
		if out, errOut, code := b.run(b.alice, "root@web01", "echo attempt"); code != 1 || out != "" ||
			errOut != "warden: session log unavailable; session refused\n" {
			t.Fatalf("attempt %d with the database down: code %d out %q stderr %q", i, code, out, errOut)
		}
	}
	if _, _, code := b.run(b.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("an unknown key: exit %d, want 255 (authentication failed)", code)
	}
	gateway.FlushPreAuth(b.gw)
	resumed := time.Now()
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	r, err := audit.OpenReader(context.Background(), b.data, backend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	checkHeldRefusals(t, b, r, halted, resumed, refused, "session log unavailable")
	if out, errOut, code := b.run(b.alice, "root@web01", "echo after-$((1+1))"); code != 0 || out != "after-2\n" {
		t.Fatalf("after the database came back: %d %q %q", code, out, errOut)
	}
	rep, err := r.Verify(context.Background(), b.data)
	if err != nil || len(rep.Problems) > 0 {
		t.Fatalf("audit verify: %v %v", err, rep.Problems)
	}
}

// eventLister reads the chain (audit.Store, audit.Reader).
type eventLister interface {
	Events(ctx context.Context, afterSeq int64, limit int) ([]audit.Event, error)
}

// checkHeldRefusals waits until the chain holds the events of refused
// sessions refused for reason, and of an unknown key's authentication
// refused after filled, the gateway holding nothing more; and checks that
// they came in order, with the times they happened (between filled and
// freed, when the database failed and when it was back), and that
// audit.delayed events cover them.
func checkHeldRefusals(t *testing.T, b *testbed, events eventLister, filled, freed time.Time, refused int, reason string) {
	t.Helper()
	// Wait for the store to take what was held: both refusals, the
	// auth.failed event, and the audit.delayed owed.
	deadline := time.Now().Add(30 * time.Second)
	var all []audit.Event
	for {
		// Pending first, then the events: once nothing is pending, every
		// held event and its audit.delayed were appended before this read.
		// (The other order could see the summary owed in a read taken just
		// before it was written, and nothing pending just after.)
		pending := gateway.AuditPending(b.gw)
		var err error
		all, err = events.Events(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range all {
			if e.Type == "session.refused" && strings.Contains(e.Data["reason"].(string), reason) ||
				e.Type == "auth.failed" && !e.TS.Before(filled) {
				n++
			}
		}
		if n == refused+1 && !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of the %d refusals' events are on the chain (held: %v)", n, refused+1, pending)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var refusals []audit.Event
	var authFailed *audit.Event
	for i, e := range all {
		switch {
		case e.Type == "session.refused" && strings.Contains(e.Data["reason"].(string), reason):
			refusals = append(refusals, e)
		case e.Type == "auth.failed" && !e.TS.Before(filled):
			authFailed = &all[i]
		}
	}
	if len(refusals) != refused {
		t.Fatalf("%d session.refused events for the %d refused sessions: %+v", len(refusals), refused, refusals)
	}
	if authFailed == nil {
		t.Fatal("the unknown key's auth.failed event is not on the chain")
	}
	// Their own times: when they happened, while the disk was full, not
	// when the store finally took them.
	for i, e := range refusals {
		if e.TS.Before(filled) || !e.TS.Before(freed) {
			t.Fatalf("refusal %d at %s, not between the fill (%s) and the free (%s)", i, e.TS, filled, freed)
		}
		if i > 0 && (e.Seq <= refusals[i-1].Seq || e.TS.Before(refusals[i-1].TS)) {
			t.Fatalf("refusals out of order: %+v then %+v", refusals[i-1], e)
		}
	}
	if last := refusals[len(refusals)-1]; authFailed.Seq < last.Seq || authFailed.TS.Before(last.TS) || !authFailed.TS.Before(freed) {
		t.Fatalf("the auth.failed event (seq %d, %s) is not after the refusals (seq %d, %s) with its own time", authFailed.Seq, authFailed.TS, last.Seq, last.TS)
	}
	// The gap is on the chain, after what it covers. SQLite may take a
	// write now and then while the disk is full (a WAL it can reuse), so
	// the held events may come in more than one period, each with its
	// own audit.delayed; together they cover the outage.
	var summaries []audit.Event
	held := 0
	for _, e := range all {
		if e.Type != "audit.delayed" {
			continue
		}
		since, err := time.Parse(time.RFC3339Nano, e.Data["since"].(string))
		if err != nil || since.Before(filled) || !since.Before(freed) || e.Actor != "warden" || number(t, e.Data, "dropped") != 0 {
			t.Fatalf("audit.delayed: %+v (%v)", e, err)
		}
		held += number(t, e.Data, "held")
		summaries = append(summaries, e)
	}
	if len(summaries) == 0 || summaries[len(summaries)-1].Seq < refusals[0].Seq || held < 1 {
		t.Fatalf("no audit.delayed after the held events: %+v", summaries)
	}
	t.Logf("%d refusals; %d events held in %d periods: %v", len(refusals), held, len(summaries), summaries[0].Data)
}

// An upload that fails while the database is down as well (the object
// store and PostgreSQL away at once) is reported once the database is
// back: the uploader's recording.upload_failed goes through the gateway's
// hold like the gateway's own events, keeps the time it happened, and
// audit.delayed follows it. Before, the uploader appended it itself, and a
// database that was away lost it to a log line.
func TestUploadFailureWhileDatabaseDownAuditedLater(t *testing.T) {
	pg, dsn := pgtest.Own(t)
	backend := audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}
	objects := s3test.Start(t)
	b := newTestbed(t, bedOptions{
		s3: objects, uploadInterval: 200 * time.Millisecond,
		store: func(o *audit.Options) { o.Backend, o.NodeID = backend, "gw-a" },
		configure: func(_ *testbed, o *gateway.Options) {
			o.NodeDeadAfter = time.Hour // no heartbeat runs in tests
			gateway.SetAuditRetry(o, 200*time.Millisecond, 500*time.Millisecond)
		},
	})
	done := b.startSlow(testCtx(t))
	live := b.liveSession("alice")
	key, _ := recstore.Key("recordings/", live.RecordingPath)
	waitSegment(t, objects, key)
	halted := time.Now()
	if err := pg.Halt(); err != nil {
		t.Fatal(err)
	}
	objects.Stop()
	// The next upload fails, and its event cannot be written: held.
	for deadline := time.Now().Add(30 * time.Second); !gateway.AuditHeld(b.gw, recstore.EventUploadFailed); {
		if time.Now().After(deadline) {
			t.Fatalf("recording.upload_failed not held with the database down (held: %v)", gateway.AuditPending(b.gw))
		}
		time.Sleep(20 * time.Millisecond)
	}
	resumed := time.Now()
	if err := pg.Resume(); err != nil {
		t.Fatal(err)
	}
	objects.Start()
	r, err := audit.OpenReader(context.Background(), b.data, backend)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var failed []audit.Event
	var all []audit.Event
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		pending := gateway.AuditPending(b.gw) // before the read: see checkHeldRefusals
		all, err = r.Events(context.Background(), 0, 100000)
		failed = failed[:0]
		for _, e := range all {
			if e.Type == recstore.EventUploadFailed && e.Subject == live.ID {
				failed = append(failed, e)
			}
		}
		if err == nil && len(failed) > 0 && !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recording.upload_failed not on the chain after the database came back (err %v, held %v)", err, pending)
		}
	}
	if len(failed) != 1 {
		t.Fatalf("%d upload_failed events for the session, want one: %+v", len(failed), failed)
	}
	f := failed[0]
	if f.TS.Before(halted) || !f.TS.Before(resumed) || f.Actor != "warden" {
		t.Fatalf("upload_failed %+v: not dated inside the outage (%s to %s)", f, halted, resumed)
	}
	delayed := false
	for _, e := range all {
		delayed = delayed || e.Type == "audit.delayed" && e.Seq > f.Seq && number(t, e.Data, "held") >= 1
	}
	if !delayed {
		t.Fatal("no audit.delayed after the held upload_failed event")
	}
	if out := <-done; !strings.Contains(out, "all-done") {
		t.Fatalf("the session did not run to its end through the outage: %q", out)
	}
	b.waitSessionEnded(live.ID)
	// The final object replaces the spool: verify reads it from S3.
	waitFinal(t, objects, key)
	stored, err := recstore.OpenS3(objects.Config("recordings/"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r.SetRecordings(stored)
	rep, err := r.Verify(context.Background(), b.data)
	if err != nil || len(rep.Problems) > 0 || rep.Recordings == 0 {
		t.Fatalf("audit verify: %v %v", err, rep.Problems)
	}
}
