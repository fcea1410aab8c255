package recstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

const rel = "recordings/2026-12-02/abcdefgh1234.cast"

// events collects what the uploader reports.
type events struct {
	mu  sync.Mutex
	got []string
	dat []map[string]any
}

func (e *events) add(_ context.Context, typ, _ string, data map[string]any) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.got, e.dat = append(e.got, typ), append(e.dat, data)
	return nil
}

func (e *events) count(typ string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, g := range e.got {
		if g == typ {
			n++
		}
	}
	return n
}

func writeSpool(t *testing.T, dir, rel string, lines ...string) *os.File {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines {
		if _, err := f.WriteString(l); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func readAll(t *testing.T, st recstore.Store, rel string) []byte {
	t.Helper()
	r, err := st.Open(context.Background(), rel)
	if err != nil {
		t.Fatalf("open %s: %v", rel, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A spool is followed in whole-line segments named by offset, then stored
// as one object whose SHA-256 is the sealed one; segments and spool go.
func TestUploadFollowAndFinish(t *testing.T) {
	srv := s3test.Start(t)
	data := t.TempDir()
	st, err := recstore.OpenS3(srv.Config("recs/"), data)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	u := recstore.NewUploader(st, recstore.Options{Interval: 200 * time.Millisecond, Events: ev.add})
	defer u.Close(time.Second)

	f := writeSpool(t, data, rel, `{"version":2}`+"\n", `[0.1,"o","a"]`+"\n", `[0.2,"o","tor`)
	up, err := u.Follow(rel)
	if err != nil {
		t.Fatal(err)
	}
	key := "recs/2026-12-02/abcdefgh1234.cast"
	first := len(`{"version":2}` + "\n" + `[0.1,"o","a"]` + "\n")
	waitFor(t, "first segment", func() bool { return len(srv.Objects(key+".parts/")) == 1 })
	objs := srv.Objects(key + ".parts/")
	if objs[key+".parts/0000000000000000"] != int64(first) {
		t.Fatalf("segments %v, want one of %d bytes ending at the last newline", objs, first)
	}
	// Another node (no spool) reads the segments: whole lines so far.
	other, err := recstore.OpenS3(srv.Config("recs/"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := string(readAll(t, other, rel)); got != `{"version":2}`+"\n"+`[0.1,"o","a"]`+"\n" {
		t.Fatalf("segments read as %q", got)
	}
	f.WriteString(`n"]` + "\n")
	waitFor(t, "second segment", func() bool { return len(srv.Objects(key+".parts/")) == 2 })
	if _, ok := srv.Objects(key + ".parts/")[key+".parts/"+fmt.Sprintf("%016d", first)]; !ok {
		t.Fatalf("second segment not named by its offset: %v", srv.Objects(key+".parts/"))
	}
	f.WriteString(`[0.3,"o","end"]` + "\n")
	f.Close()
	whole, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	up.Finish(sum(whole))
	waitFor(t, "final object, segments gone", func() bool {
		o := srv.Objects("recs/")
		return len(o) == 1 && o[key] == int64(len(whole))
	})
	waitFor(t, "spool removed", func() bool {
		_, err := os.Stat(filepath.Join(data, filepath.FromSlash(rel)))
		return errors.Is(err, os.ErrNotExist)
	})
	if got := readAll(t, st, rel); sum(got) != sum(whole) {
		t.Fatalf("final object differs from the spool")
	}
	if n := ev.count(recstore.EventUploadFailed); n != 0 {
		t.Fatalf("%d upload_failed events, want none", n)
	}
}

// The store goes away mid-session: the failure is reported once, the
// spool keeps growing, and the final object arrives once the store is back.
func TestUploadSurvivesStoreOutage(t *testing.T) {
	srv := s3test.Start(t)
	data := t.TempDir()
	st, err := recstore.OpenS3(srv.Config(""), data)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	u := recstore.NewUploader(st, recstore.Options{Interval: 100 * time.Millisecond, Events: ev.add})
	defer u.Close(time.Second)
	f := writeSpool(t, data, rel, `{"version":2}`+"\n")
	up, err := u.Follow(rel)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first segment", func() bool { return len(srv.Objects("")) == 1 })
	srv.Stop()
	f.WriteString(`[0.1,"o","while down"]` + "\n")
	waitFor(t, "upload_failed", func() bool { return ev.count(recstore.EventUploadFailed) == 1 })
	f.WriteString(`[0.2,"o","still down"]` + "\n")
	f.Close()
	whole, _ := os.ReadFile(filepath.Join(data, filepath.FromSlash(rel)))
	up.Finish(sum(whole))
	time.Sleep(500 * time.Millisecond) // several failed retries
	srv.Start()
	waitFor(t, "final object", func() bool {
		o := srv.Objects("")
		return len(o) == 1 && o["2026-12-02/abcdefgh1234.cast"] == int64(len(whole))
	})
	if n := ev.count(recstore.EventUploadFailed); n != 1 {
		t.Fatalf("%d upload_failed events, want exactly one per session", n)
	}
}

// Names that reach object keys are checked: a stored path edited to leave
// the prefix, name another folder or smuggle a key is refused before any
// request, both when reading and when uploading.
func TestKeyRefusesEscapes(t *testing.T) {
	for _, bad := range []string{
		"recordings/2026-12-02/../../other/abcdefgh1234.cast",
		"../recordings/2026-12-02/abcdefgh1234.cast",
		"/recordings/2026-12-02/abcdefgh1234.cast",
		"recordings/2026-12-02/abcdefgh1234.cast.parts/0000000000000000",
		"recordings/2026-12-02/sub/abcdefgh1234.cast",
		"recordings/../../etc/abcdefgh1234.cast",
		"recordings/2026-13-45/abcdefgh1234.cast",
		"recordings/2026-12-02/abc.cast",
		"recordings/2026-12-02/abcdefgh1234?x=1.cast",
		"recordings/2026-12-02/abcdefgh%2F..%2F.cast",
		"other/2026-12-02/abcdefgh1234.cast",
		"recordings/2026-12-02/abcdefgh1234.txt",
		"recordings\\2026-12-02\\abcdefgh1234.cast",
	} {
		if k, err := recstore.Key("p/", bad); !errors.Is(err, recorder.ErrUnsafePath) {
			t.Errorf("Key(%q) = %q, %v; want ErrUnsafePath", bad, k, err)
		}
	}
	if k, err := recstore.Key("p/", rel); err != nil || k != "p/2026-12-02/abcdefgh1234.cast" {
		t.Fatalf("Key(%q) = %q, %v", rel, k, err)
	}
	srv := s3test.Start(t)
	st, err := recstore.OpenS3(srv.Config("p/"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	u := recstore.NewUploader(st, recstore.Options{})
	defer u.Close(0)
	if _, err := st.Open(context.Background(), "recordings/2026-12-02/../x/abcdefgh1234.cast"); !errors.Is(err, recorder.ErrUnsafePath) {
		t.Fatalf("Open of an escaping path: %v", err)
	}
	if _, err := u.Follow("recordings/../abcdefgh1234.cast"); !errors.Is(err, recorder.ErrUnsafePath) {
		t.Fatalf("Follow of an escaping path: %v", err)
	}
	if _, err := st.Open(context.Background(), rel); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open of a recording that is nowhere: %v", err)
	}
}

// A store that cannot be reached fails Check; bad key files are refused
// without their content in the error.
func TestCheckFailsClosed(t *testing.T) {
	srv := s3test.Start(t)
	cfg := srv.Config("")
	cfg.Bucket = "no-such-bucket"
	st, err := recstore.OpenS3(cfg, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("Check of a missing bucket: %v", err)
	}
	cfg = srv.Config("")
	srv.Stop()
	st, _ = recstore.OpenS3(cfg, t.TempDir())
	if err := st.Check(context.Background()); err == nil {
		t.Fatal("Check of a stopped server passed")
	}
	cfg.SecretKeyFile = filepath.Join(t.TempDir(), "missing")
	if _, err := recstore.OpenS3(cfg, t.TempDir()); err == nil || strings.Contains(err.Error(), srv.SecretKey) {
		t.Fatalf("OpenS3 with a missing key file: %v", err)
	}
	if err := os.WriteFile(cfg.SecretKeyFile, []byte("two\nlines"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := recstore.OpenS3(cfg, t.TempDir()); err == nil || strings.Contains(err.Error(), "two") {
		t.Fatalf("OpenS3 with a bad key file: %v", err)
	}
}

func TestDefaultInterval(t *testing.T) {
	u := recstore.NewUploader(&recstore.S3{}, recstore.Options{})
	defer u.Close(0)
	if u.Interval() != 10*time.Second || recstore.DefaultInterval != 10*time.Second {
		t.Fatalf("default interval %v, want 10s", u.Interval())
	}
}

// A node cut off from the database while a survivor reaped its session
// finds the final object already made from the segments when it finishes:
// it never replaces it (the sealed recording), stops retrying, reports
// once, and keeps its spool for the next start's Recover.
func TestFinishNeverReplacesFinalObject(t *testing.T) {
	srv := s3test.Start(t)
	data := t.TempDir()
	st, err := recstore.OpenS3(srv.Config(""), data)
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	u := recstore.NewUploader(st, recstore.Options{Interval: 50 * time.Millisecond, Events: ev.add})
	defer u.Close(time.Second)
	f := writeSpool(t, data, rel, `{"version":2}`+"\n", `[0.1,"o","a"]`+"\n")
	up, err := u.Follow(rel)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first segment", func() bool { return len(srv.Objects("")) == 1 })
	key := "2026-12-02/abcdefgh1234.cast"
	sealed, err := recstore.Sealer(st).SealRemote(context.Background(), "abcdefgh1234", rel)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StoreSealed(context.Background(), rel, sealed); err != nil {
		t.Fatal(err)
	}
	f.WriteString(`[0.2,"o","b"]` + "\n")
	f.Close()
	whole, _ := os.ReadFile(filepath.Join(data, filepath.FromSlash(rel)))
	up.Finish(sum(whole))
	waitFor(t, "upload_failed", func() bool { return ev.count(recstore.EventUploadFailed) == 1 })
	u.Close(time.Second) // returns: the finishing goroutine gave up
	if got := readAll(t, st, rel); sum(got) != sealed.SHA256 {
		t.Fatalf("final object replaced: %q", got)
	}
	if _, err := os.Stat(filepath.Join(data, filepath.FromSlash(rel))); err != nil {
		t.Fatalf("spool not kept: %v", err)
	}
	if o := srv.Objects(""); o[key] != sealed.Bytes {
		t.Fatalf("objects %v", o)
	}
}

// The sealer refuses a recording path that names another session, and one
// out of the recordings folder, before any request.
func TestSealRemoteChecksTheSession(t *testing.T) {
	srv := s3test.Start(t)
	st, err := recstore.OpenS3(srv.Config(""), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{rel, "recordings/2026-12-02/../../x/zzzzzzzz9999.cast"} {
		if _, err := st.SealRemote(context.Background(), "zzzzzzzz9999", bad); !errors.Is(err, recorder.ErrUnsafePath) {
			t.Fatalf("SealRemote(%q) = %v; want ErrUnsafePath", bad, err)
		}
	}
	if _, err := st.SealRemote(context.Background(), "abcdefgh1234", rel); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("SealRemote of a recording with no segments = %v", err)
	}
}

// A session that could not be sealed (Finish("")): no final object, which
// would stand for a digest nobody sealed; the rest of the spool goes up as
// segments and the spool stays for Recover.
func TestFinishUnsealedUploadsSegmentsOnly(t *testing.T) {
	srv := s3test.Start(t)
	data := t.TempDir()
	st, err := recstore.OpenS3(srv.Config(""), data)
	if err != nil {
		t.Fatal(err)
	}
	u := recstore.NewUploader(st, recstore.Options{Interval: time.Hour})
	f := writeSpool(t, data, rel, `{"version":2}`+"\n", `[0.1,"o","a"]`+"\n")
	f.Close()
	up, err := u.Follow(rel)
	if err != nil {
		t.Fatal(err)
	}
	up.Finish("")
	u.Close(time.Minute)
	whole, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatalf("spool not kept: %v", err)
	}
	o := srv.Objects("")
	if _, ok := o["2026-12-02/abcdefgh1234.cast"]; ok || o["2026-12-02/abcdefgh1234.cast.parts/0000000000000000"] != int64(len(whole)) {
		t.Fatalf("objects %v; want the whole spool as a segment, no final object", o)
	}
}

// With ReportTo set (the gateway's hold of audit events), an upload failure
// is reported there, once, and not through Events, which here fails as a
// database that is away does: the event is not lost with that failure.
func TestReportToTakesUploadFailures(t *testing.T) {
	srv := s3test.Start(t)
	data := t.TempDir()
	st, err := recstore.OpenS3(srv.Config(""), data)
	if err != nil {
		t.Fatal(err)
	}
	var direct atomic.Int32
	u := recstore.NewUploader(st, recstore.Options{Interval: 100 * time.Millisecond,
		Events: func(context.Context, string, string, map[string]any) error {
			direct.Add(1)
			return errors.New("database away")
		}})
	defer u.Close(time.Second)
	reported := &events{}
	u.ReportTo(func(ctx context.Context, typ, subject string, data map[string]any) {
		reported.add(ctx, typ, subject, data)
	})
	f := writeSpool(t, data, rel, `{"version":2}`+"\n")
	defer f.Close()
	if _, err := u.Follow(rel); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "first segment", func() bool { return len(srv.Objects("")) == 1 })
	srv.Stop()
	f.WriteString(`[0.1,"o","while down"]` + "\n")
	waitFor(t, "upload_failed", func() bool { return reported.count(recstore.EventUploadFailed) == 1 })
	time.Sleep(300 * time.Millisecond) // more failed tries: still one report
	if n := reported.count(recstore.EventUploadFailed); n != 1 {
		t.Fatalf("%d upload_failed reports, want one", n)
	}
	if n := direct.Load(); n != 0 {
		t.Fatalf("Events called %d times with ReportTo set", n)
	}
	reported.mu.Lock()
	if d := reported.dat[0]; d["session_id"] != "abcdefgh1234" || d["cause"] == "" {
		t.Errorf("report data %v", d)
	}
	reported.mu.Unlock()
}
