package audit

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/recorder"
)

// recordSession runs session id as the gateway does: a real cast written
// by the recorder, a command logged (with its offset) before each output
// chunk, and the end sealed with the cast's digest.
func recordSession(t *testing.T, s *Store, dir, id string, chunks ...string) Session {
	t.Helper()
	ctx := context.Background()
	w, err := recorder.Create(dir, recorder.Header{Warden: recorder.Meta{SessionID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme"}},
		recorder.Options{Now: (&clock{}).Now})
	if err != nil {
		t.Fatal(err)
	}
	sess := testSession(id)
	sess.RecordingPath = w.RelPath()
	mustStart(t, s, sess)
	for i, c := range chunks {
		off := w.Elapsed().Seconds()
		if err := s.LogCommand(ctx, Command{SessionID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme",
			Source: SourceShell, Command: fmt.Sprintf("cmd%d", i), Action: ActionAllowed, Offset: &off}); err != nil {
			t.Fatal(err)
		}
		if err := w.Output([]byte(c)); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EndSession(ctx, id, SessionEnd{Reason: "exit", RecordingSHA256: sum}); err != nil {
		t.Fatal(err)
	}
	return sess
}

// openIndexing opens a Store with the output indexer and a log buffer.
func openIndexing(t *testing.T, dir string) (*Store, *bytes.Buffer) {
	t.Helper()
	var logBuf syncBuffer
	s, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now, OutputIndex: true,
		Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, &logBuf.buf
}

// waitIndexed waits until session id has its index row.
func waitIndexed(t *testing.T, s *Store, id string) indexRow {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		row, ok := readIndexRow(t, s, id)
		if ok {
			return row
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not indexed", id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

type indexRow struct {
	bytes     int
	truncated bool
	errText   string
}

func readIndexRow(t *testing.T, s *Store, id string) (indexRow, bool) {
	t.Helper()
	var r indexRow
	var e *string
	err := s.db.QueryRow(`SELECT bytes, truncated, error FROM session_output_index WHERE session_id = ?`, id).Scan(&r.bytes, &r.truncated, &e)
	if err != nil {
		return indexRow{}, false
	}
	if e != nil {
		r.errText = *e
	}
	return r, true
}

func searchOutput(t *testing.T, s *Store, phrase string) []string {
	t.Helper()
	p, err := s.SearchSessions(context.Background(), SessionQuery{OutputContains: phrase})
	if err != nil {
		t.Fatal(err)
	}
	return ids(p)
}

// A session's screen text is indexed after it ends, by the indexer alone.
func TestOutputIndexBuiltAsSessionsEnd(t *testing.T) {
	dir := t.TempDir()
	s, _ := openIndexing(t, dir)
	recordSession(t, s, dir, "sess-live1", "mysql> \x1b[1mDROP\x1b[0m TA", "BLE customers;\r\nQuery OK\r\n")
	recordSession(t, s, dir, "sess-other", "nothing to see\r\n")
	row := waitIndexed(t, s, "sess-live1")
	waitIndexed(t, s, "sess-other")
	if row.errText != "" || row.truncated || row.bytes == 0 {
		t.Errorf("index row %+v", row)
	}
	if got := searchOutput(t, s, "drop table customers"); !reflect.DeepEqual(got, []string{"sess-live1"}) {
		t.Errorf("search: %v", got)
	}
	// Commands carry increasing offsets within the recording.
	cmds, err := s.Commands(context.Background(), CommandFilter{SessionID: "sess-live1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 2 || cmds[0].Offset == nil || cmds[1].Offset == nil || !(*cmds[0].Offset < *cmds[1].Offset) {
		t.Fatalf("offsets: %+v", cmds)
	}
	// Indexing again changes nothing.
	if err := s.IndexSession(context.Background(), "sess-live1"); err != nil {
		t.Fatal(err)
	}
	var chunks int
	s.db.QueryRow(`SELECT COUNT(*) FROM session_output_chunks WHERE session_id = 'sess-live1'`).Scan(&chunks)
	if chunks != 1 {
		t.Errorf("%d chunk rows after a second index", chunks)
	}
}

// Sessions that ended while no indexer ran (a crash, an upgrade) are
// indexed at start, once; open sessions and sessions without a recording
// are left alone.
func TestOutputIndexBackfill(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	recordSession(t, s, dir, "sess-old1", "DROP TABLE a\r\n")
	recordSession(t, s, dir, "sess-old2", "DROP TABLE b\r\n")
	mustStart(t, s, testSession("sess-norec"))
	if err := s.EndSession(context.Background(), "sess-norec", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, Session{ID: "sess-open1", User: "a", Login: "r", Host: "h", Tenant: "acme", RecordingPath: "recordings/2026-11-29/sess-open1.cast"})
	if got := searchOutput(t, s, "drop table"); len(got) != 0 {
		t.Fatalf("indexed without an indexer: %v", got)
	}
	s.Close()

	s2, _ := openIndexing(t, dir)
	waitIndexed(t, s2, "sess-old1")
	waitIndexed(t, s2, "sess-old2")
	if got := searchOutput(t, s2, "drop table"); !reflect.DeepEqual(got, []string{"sess-old2", "sess-old1"}) {
		t.Errorf("after backfill: %v", got)
	}
	if n, err := s2.IndexPending(context.Background()); err != nil || n != 0 {
		t.Errorf("second sweep indexed %d (%v)", n, err)
	}
	for _, id := range []string{"sess-norec", "sess-open1"} {
		if _, ok := readIndexRow(t, s2, id); ok {
			t.Errorf("%s has an index row", id)
		}
	}
}

// An attempt cut short (a crash between chunks) leaves chunk rows but no
// index row; the next attempt replaces them, so nothing is found twice
// and the session is marked indexed once.
func TestOutputIndexResumesInterruptedAttempt(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	recordSession(t, s, dir, "sess-cut", "DROP TABLE x\r\n")
	ctx := context.Background()
	if err := s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		var id int64
		if err := tx.QueryRow(`INSERT INTO session_output_chunks (session_id) VALUES ('sess-cut') RETURNING docid`).Scan(&id); err != nil {
			return err
		}
		_, err := tx.Exec(`INSERT INTO session_output_fts (docid, text) VALUES (?, ?)`, id, testDialect().outputText("stale words"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.IndexPending(ctx); err != nil || n != 1 {
		t.Fatalf("IndexPending = %d, %v", n, err)
	}
	if got := searchOutput(t, s, "stale words"); len(got) != 0 {
		t.Errorf("stale chunk still found: %v", got)
	}
	if got := searchOutput(t, s, "drop table"); !reflect.DeepEqual(got, []string{"sess-cut"}) {
		t.Errorf("search: %v", got)
	}
}

// A recording that does not parse to its end is indexed as far as it
// parses, and the failure is recorded and logged; a missing one too.
func TestOutputIndexBrokenRecording(t *testing.T) {
	dir := t.TempDir()
	s, _ := openIndexing(t, dir)
	recordSession(t, s, dir, "sess-torn", "before the damage\r\n")
	waitIndexed(t, s, "sess-torn")

	// A second session whose file is damaged before the indexer reads it.
	s.Close()
	s2 := openStore(t, dir)
	bad := recordSession(t, s2, dir, "sess-bad", "visible words\r\n")
	f, err := os.OpenFile(filepath.Join(dir, bad.RecordingPath), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("[9.0, \"o\", \"unterminated\n[10.0, \"o\", \"hidden words\"]\n")
	f.Close()
	gone := recordSession(t, s2, dir, "sess-gone", "x\r\n")
	os.Remove(filepath.Join(dir, gone.RecordingPath))
	s2.Close()

	s3, logBuf3 := openIndexing(t, dir)
	row := waitIndexed(t, s3, "sess-bad")
	if !strings.Contains(row.errText, "cast line") {
		t.Errorf("index row error %q", row.errText)
	}
	if got := searchOutput(t, s3, "visible words"); !reflect.DeepEqual(got, []string{"sess-bad"}) {
		t.Errorf("text before the damage: %v", got)
	}
	row = waitIndexed(t, s3, "sess-gone")
	if row.errText != "recording missing" {
		t.Errorf("missing recording: %+v", row)
	}
	st, err := s3.OutputIndexStatus(context.Background(), "sess-bad")
	if err != nil || !st.Indexed || st.Bytes == 0 || st.Truncated || !strings.Contains(st.Error, "cast line") || st.IndexedAt.IsZero() {
		t.Errorf("status of a damaged recording: %+v, %v", st, err)
	}
	if st, err := s3.OutputIndexStatus(context.Background(), "nosuch-session"); err != nil || st.Indexed {
		t.Errorf("status of nothing: %+v, %v", st, err)
	}
	s3.Close()
	if !strings.Contains(logBuf3.String(), "session=sess-bad") || !strings.Contains(logBuf3.String(), "session=sess-gone") {
		t.Errorf("failures not logged:\n%s", logBuf3)
	}
}

// A phrase cut by a chunk boundary is still found.
func TestOutputIndexChunks(t *testing.T) {
	var b strings.Builder
	for b.Len() < 3*outputChunk {
		b.WriteString("filler words here\n")
	}
	text := b.String()
	// Put the phrase right across the first cut.
	chunks := splitChunks([]byte(text), outputChunk, chunkOverlap)
	if len(chunks) < 3 {
		t.Fatalf("%d chunks", len(chunks))
	}
	cut := len(chunks[0])
	text = text[:cut-10] + " DROP TABLE secret " + text[cut-10:]
	dir := t.TempDir()
	s := openStore(t, dir)
	mustStart(t, s, testSession("sess-big"))
	if err := s.EndSession(context.Background(), "sess-big", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	if err := s.writeOutput(context.Background(), "sess-big", []byte(text), false, ""); err != nil {
		t.Fatal(err)
	}
	if got := searchOutput(t, s, "drop table secret"); !reflect.DeepEqual(got, []string{"sess-big"}) {
		t.Errorf("phrase across a cut: %v", got)
	}
	for i, c := range splitChunks([]byte(text), outputChunk, chunkOverlap) {
		if len(c) > outputChunk+chunkOverlap*64 {
			t.Errorf("chunk %d has %d bytes", i, len(c))
		}
	}
}

// LogCommand keeps the offset, and refuses one that cannot be a time in
// the recording.
func TestCommandOffset(t *testing.T) {
	s := openStore(t, t.TempDir())
	mustStart(t, s, testSession("o1"))
	ctx := context.Background()
	cmd := func(off *float64) Command {
		return Command{SessionID: "o1", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
			Source: SourceSFTP, Command: "put /tmp/x", Action: ActionAllowed, Offset: off}
	}
	f := func(v float64) *float64 { return &v }
	for _, off := range []*float64{f(-1), f(nan()), f(inf())} {
		if err := s.LogCommand(ctx, cmd(off)); err == nil {
			t.Errorf("offset %v accepted", *off)
		}
	}
	for _, off := range []*float64{nil, f(0), f(12.345678)} {
		if err := s.LogCommand(ctx, cmd(off)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Commands(ctx, CommandFilter{SessionID: "o1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].Offset != nil || *got[1].Offset != 0 || *got[2].Offset != 12.345678 || got[2].Source != SourceSFTP {
		t.Errorf("commands: %+v", got)
	}
}

func nan() float64 { return math.NaN() }
func inf() float64 { return math.Inf(1) }

// syncBuffer is a bytes.Buffer the indexer's logger may write to while a
// test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// The CLI reads databases it does not migrate: one at schema 0006 lists
// its commands without offsets, and the upgrade to 0007 keeps its rows.
func TestCommandsOfADatabaseBeforeMigration7(t *testing.T) {
	dir := t.TempDir()
	ms := testMigrations(t)
	db := rawDB(t, dir)
	if err := applyMigrations(context.Background(), db, testDialect(), ms[:6], (&clock{}).Now); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO sessions (id, user, login, host, tenant, started_at) VALUES ('old-sess1', 'a', 'r', 'h', 't', '2026-11-29T08:00:00.000000Z')`,
		`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action)
			VALUES ('old-sess1', '2026-11-29T08:00:01.000000Z', 'a', 'r', 'h', 't', 'shell', 'uptime', 'allowed')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got, err := r.Commands(context.Background(), CommandFilter{SessionID: "old-sess1"})
	if err != nil || len(got) != 1 || got[0].Command != "uptime" || got[0].Offset != nil {
		t.Fatalf("before 0007: %+v, %v", got, err)
	}
	s := openStore(t, dir)
	got, err = s.Commands(context.Background(), CommandFilter{SessionID: "old-sess1"})
	if err != nil || len(got) != 1 || got[0].Offset != nil {
		t.Fatalf("after 0007: %+v, %v", got, err)
	}
}
