package console

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recstore"
)

// TestSessionCastFromS3: with recordings.store s3, /sessions/ID.cast
// serves the object from a real S3 server once the local spool is gone,
// byte for byte; a live session's segments are served as whole lines; a
// recording that is nowhere is a 404; tenant scope still applies.
func TestSessionCastFromS3(t *testing.T) {
	srv := s3test.Start(t)
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	s3, err := recstore.OpenS3(srv.Config("recordings/"), tc.c.d.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	u := recstore.NewUploader(s3, recstore.Options{Interval: 100 * time.Millisecond})
	defer u.Close(time.Second)
	ctx := context.Background()
	sess, err := tc.c.d.Store.Session(ctx, f.globex)
	if err != nil {
		t.Fatal(err)
	}
	spool := filepath.Join(tc.c.d.DataDir, filepath.FromSlash(sess.RecordingPath))
	want, err := os.ReadFile(spool)
	if err != nil {
		t.Fatal(err)
	}
	up, err := u.Follow(sess.RecordingPath)
	if err != nil {
		t.Fatal(err)
	}
	up.Finish(sess.RecordingSHA256)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(spool); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("spool never replaced by the object")
		}
		time.Sleep(50 * time.Millisecond)
	}
	tc.c.d.Recordings = s3
	gus, _ := tc.signIn(t, "gus")
	if st, body := get(t, gus, tc.srv.URL+"/sessions/"+f.globex+".cast"); st != 200 || body != string(want) {
		t.Fatalf("cast from s3: %d, %d bytes, want %d", st, len(body), len(want))
	}
	tia, _ := tc.signIn(t, "tia") // audits acme only
	if st, _ := get(t, tia, tc.srv.URL+"/sessions/"+f.globex+".cast"); st != 404 {
		t.Fatalf("other tenant's cast from s3: %d", st)
	}
	// A recording that is in neither place.
	other, _ := tc.c.d.Store.Session(ctx, f.dropper)
	if err := os.Remove(filepath.Join(tc.c.d.DataDir, filepath.FromSlash(other.RecordingPath))); err != nil {
		t.Fatal(err)
	}
	if st, _ := get(t, tia, tc.srv.URL+"/sessions/"+f.dropper+".cast"); st != 404 {
		t.Fatalf("missing recording: %d", st)
	}
	// The live session: this node's spool, whole lines.
	if st, body := get(t, tia, tc.srv.URL+"/sessions/"+f.live+".cast"); st != 200 || body == "" || body[len(body)-1] != '\n' {
		t.Fatalf("live cast from the s3 store: %d %q", st, body)
	}
}
