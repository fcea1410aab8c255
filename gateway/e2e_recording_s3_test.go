package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// slowOutput prints a line a second for longer than the default upload
// interval, so the session lives through several uploads.
const slowOutput = "for i in $(seq 1 12); do echo tick-$i; sleep 1; done; echo all-done"

// liveSession waits for user's newest session to be open and returns it.
func (b *testbed) liveSession(user string) audit.Session {
	b.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		list, err := b.store.Sessions(context.Background(), audit.SessionFilter{User: user, Limit: 1})
		if err == nil && len(list) == 1 && list[0].EndedAt.IsZero() && list[0].RecordingPath != "" {
			return list[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no live session for %s (err %v, %+v)", user, err, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startSlow starts the slow command through the gateway and returns a
// channel with its stdout once it exits.
func (b *testbed) startSlow(ctx context.Context) <-chan string {
	b.t.Helper()
	cmd := b.alice.SSH(ctx, b.port, "root@web01", slowOutput)
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() { _ = cmd.Wait(); done <- out.String() }()
	return done
}

// readStored reads rel from st as a node without the spool would.
func readStored(t *testing.T, st recstore.Store, rel string) []byte {
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

func sha(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// waitSegment waits until the store holds a segment of the live
// recording at key: the upload is under way, and an outage from now on
// interrupts it.
func waitSegment(t *testing.T, srv *s3test.Server, key string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for len(srv.Objects(key+".parts/")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no segment before the outage")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitFinal waits until the store holds exactly one object for the
// recording, and nothing else, and returns its key.
func waitFinal(t *testing.T, srv *s3test.Server, key string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		o := srv.Objects("recordings/")
		if _, ok := o[key]; ok && len(o) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("store never held just %s: %v", key, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A real OpenSSH session through the gateway, recorded to a real S3
// server: while it lives, the store holds its segments (a valid cast of
// the session so far); once it ends, exactly one object whose SHA-256 is
// the sealed digest, no segments, no spool; audit verify, play and the
// object itself read from S3.
func TestRecordingS3LiveThenFinal(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestbed(t, bedOptions{s3: srv})
	done := b.startSlow(testCtx(t))
	live := b.liveSession("alice")
	key, err := recstore.Key("recordings/", live.RecordingPath)
	if err != nil {
		t.Fatal(err)
	}
	// A reader that is not this node: no spool, only the object store.
	elsewhere, err := recstore.OpenS3(srv.Config("recordings/"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var sawLive bool
	deadline := time.Now().Add(60 * time.Second)
	for !sawLive {
		if time.Now().After(deadline) {
			t.Fatal("the store never held tick-3 while the session lived")
		}
		time.Sleep(200 * time.Millisecond)
		if len(srv.Objects(key+".parts/")) == 0 {
			continue
		}
		got := readStored(t, elsewhere, live.RecordingPath)
		spool, err := os.ReadFile(filepath.Join(b.data, filepath.FromSlash(live.RecordingPath)))
		if err != nil {
			t.Fatalf("spool while live: %v", err)
		}
		// Segments are a prefix of the spool, in whole lines.
		if !bytes.HasPrefix(spool, got) || !bytes.HasSuffix(got, []byte("\n")) {
			t.Fatalf("segments are not whole lines of the spool:\n%q\nspool\n%q", got, spool)
		}
		if s, _ := b.store.Session(context.Background(), live.ID); !s.EndedAt.IsZero() {
			break
		}
		if bytes.Contains(got, []byte("tick-3")) {
			sawLive = true
			if _, err := recorder.ReadHeader(got[:bytes.IndexByte(got, '\n')]); err != nil {
				t.Fatalf("live segments do not start with a cast header: %v", err)
			}
		}
	}
	if !sawLive {
		t.Fatal("the session ended before the store held tick-3")
	}
	if out := <-done; !strings.Contains(out, "all-done") {
		t.Fatalf("session output %q", out)
	}
	s := b.waitSessionEnded(live.ID)
	waitFinal(t, srv, key)
	obj := readStored(t, elsewhere, s.RecordingPath)
	if sha(obj) != s.RecordingSHA256 || s.RecordingSHA256 == "" {
		t.Fatalf("object sha %s, sealed %s", sha(obj), s.RecordingSHA256)
	}
	if !bytes.Contains(obj, []byte("tick-12")) || !bytes.Contains(obj, []byte("all-done")) {
		t.Fatalf("object lacks the end of the session")
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(b.data, filepath.FromSlash(s.RecordingPath)))
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("spool still there after the object was verified: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// audit verify re-hashes from S3 and passes; the same check on the
	// local files alone finds the recording gone, so S3 was what it read.
	rep, err := audit.VerifyWith(context.Background(), b.data, elsewhere)
	if err != nil || len(rep.Problems) > 0 || rep.Recordings == 0 {
		t.Fatalf("verify from s3: %v %+v", err, rep)
	}
	rep, err = audit.Verify(context.Background(), b.data)
	if err != nil || len(rep.Problems) == 0 || !strings.Contains(rep.Problems[0].Msg, "recording missing") {
		t.Fatalf("verify from local files should miss the recording: %v %+v", err, rep)
	}
	// The console's badge check reads the same store.
	if chk, err := b.store.CheckSession(context.Background(), b.data, s.ID); err != nil || !chk.Match {
		t.Fatalf("check session from s3: %v %+v", err, chk)
	}
	// Play reads it.
	var screen bytes.Buffer
	r, err := elsewhere.Open(context.Background(), s.RecordingPath)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := recorder.Play(&screen, r, recorder.PlayOptions{Speed: 1000, IdleLimit: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(screen.String(), "tick-12") {
		t.Fatalf("played %q", screen.String())
	}
	if n := len(b.events(recstore.EventUploadFailed)); n != 0 {
		t.Fatalf("%d upload_failed events", n)
	}
}

// The object store stops mid-session: the session goes on (the local spool
// is the recording), recording.upload_failed is appended once, and when
// the store is back the final object is stored and verified.
func TestRecordingS3OutageMidSession(t *testing.T) {
	srv := s3test.Start(t)
	b := newTestbed(t, bedOptions{s3: srv})
	done := b.startSlow(testCtx(t))
	live := b.liveSession("alice")
	key, _ := recstore.Key("recordings/", live.RecordingPath)
	waitSegment(t, srv, key)
	srv.Stop()
	b.waitEvent(recstore.EventUploadFailed, live.ID)
	out := <-done
	if !strings.Contains(out, "tick-12") || !strings.Contains(out, "all-done") {
		t.Fatalf("the session did not run to its end while S3 was down: %q", out)
	}
	s := b.waitSessionEnded(live.ID)
	if s.EndReason == "recording_failed" {
		t.Fatalf("session cut by the upload failure: %+v", s)
	}
	time.Sleep(3 * time.Second) // several failed retries of the final upload
	srv.Start()
	waitFinal(t, srv, key)
	elsewhere, err := recstore.OpenS3(srv.Config("recordings/"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := readStored(t, elsewhere, s.RecordingPath); sha(got) != s.RecordingSHA256 {
		t.Fatalf("object sha %s, sealed %s", sha(got), s.RecordingSHA256)
	}
	n := 0
	for _, e := range b.events(recstore.EventUploadFailed) {
		if e.Subject == live.ID {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d upload_failed events for the session, want exactly one", n)
	}
}
