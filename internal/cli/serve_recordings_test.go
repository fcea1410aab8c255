package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

// Where recordings go is decided at start (the store is checked, spools
// are recovered), so a reload that changes it is refused.
func TestReloadRefusesRecordingsChange(t *testing.T) {
	parse := func(src string) *policy.Config {
		t.Helper()
		c, err := policy.Parse([]byte(src), "/etc/warden/warden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s3 := "recordings: {store: s3, s3: {endpoint: 's3.example:9000', bucket: warden, access_key_file: a, secret_key_file: s}}\n"
	if err := restartOnly(parse(s3), parse(s3)); err != nil {
		t.Fatalf("same recordings: %v", err)
	}
	for _, c := range []struct{ old, cur string }{
		{"{}\n", s3},
		{s3, strings.Replace(s3, "bucket: warden", "bucket: other", 1)},
		{"{}\n", "recordings: {upload_interval: 5s}\n"},
	} {
		if err := restartOnly(parse(c.old), parse(c.cur)); err == nil || !strings.Contains(err.Error(), "recordings cannot change on reload") {
			t.Fatalf("reload %q -> %q: %v", c.old, c.cur, err)
		}
	}
}

// TestPlayS3RefusesATamperedRecordingPath: with recordings in S3, a stored
// recording_path edited to reach another object (another folder of the
// bucket, a segment, a key outside the prefix) is refused before any
// request names it, with the same one line as for local files; the
// untampered path plays from the store once the spool is gone.
func TestPlayS3RefusesATamperedRecordingPath(t *testing.T) {
	data, id := seed(t)
	srv := s3test.Start(t)
	cfg := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(cfg, []byte("data_dir: "+data+"\n"+srv.YAML("recs/")), 0o600); err != nil {
		t.Fatal(err)
	}
	// A secret object elsewhere in the bucket, which a tamperer wants shown.
	if _, err := srv.Client().PutObject(context.Background(), s3test.Bucket, "other/secret.cast", strings.NewReader("root:secret\n"), 12,
		minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	var rel string
	if err := func() error {
		r, err := audit.OpenReadOnly(data)
		if err != nil {
			return err
		}
		defer r.Close()
		s, err := r.Session(context.Background(), id)
		rel = s.RecordingPath
		return err
	}(); err != nil {
		t.Fatal(err)
	}
	// Move the recording to the store, as the gateway would at the end.
	s3, err := recstore.OpenS3(srv.Config("recs/"), data)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(data, filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	u := recstore.NewUploader(s3, recstore.Options{Interval: 100 * time.Millisecond})
	up, err := u.Follow(rel)
	if err != nil {
		t.Fatal(err)
	}
	up.Finish(hex.EncodeToString(sum[:]))
	u.Close(time.Minute)
	if _, err := os.Stat(filepath.Join(data, filepath.FromSlash(rel))); !os.IsNotExist(err) {
		t.Fatalf("spool still there: %v", err)
	}
	if out, errOut, code := run("play", "-c", cfg, "--speed", "1000", id); code != 0 || out == "" {
		t.Fatalf("play -c from s3: %d %q %q", code, out, errOut)
	}
	for _, bad := range []string{"../other/secret.cast", "recordings/../other/secret.cast", "recordings/2026-11-29/../../other/secret.cast",
		"other/secret.cast", "recordings/2026-11-29/" + id + ".cast.parts/0000000000000000", "recordings/x/secret.cast"} {
		if _, err := rawSQL(t, data, `UPDATE sessions SET recording_path = ? WHERE id = ?`, bad, id); err != nil {
			t.Fatal(err)
		}
		out, errOut, code := run("play", "-c", cfg, "--speed", "1000", id)
		if code != 1 || out != "" || !strings.HasPrefix(errOut, "warden: session "+id+": recording path ") || !strings.Contains(errOut, "refused") {
			t.Fatalf("play of %q: exit %d, stdout %q, stderr %q; want one refusal line", bad, code, out, errOut)
		}
	}
}
