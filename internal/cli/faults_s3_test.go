package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recstore"
)

// TestServeKill9WithS3 kills `warden serve` (recordings.store: s3, upload
// every second) with SIGKILL while a session prints, and starts it again.
// After the restart the session is ended as interrupted, its spool is
// stored as one object whose SHA-256 is the sealed digest, the segments
// and the spool are gone, recording.gap says how many bytes the store
// lacked at the kill, and `warden audit verify -c`, `warden evidence -c`
// and `warden play -c`, all reading S3, pass. A start while the store is down is refused.
func TestServeKill9WithS3(t *testing.T) {
	srv := s3test.Start(t)
	b := newFaultBed(t)
	b.writePolicy(b.policy("[ops]", srv.YAML("recordings/")+"  upload_interval: 1s\n"))
	b.start()

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	slow := b.alice.SSH(ctx, b.port, "root@web01", "for i in $(seq 1 3000); do echo tick-$i; sleep 0.1; done")
	stdout, err := slow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Start(); err != nil {
		t.Fatal(err)
	}
	defer slow.Process.Kill()
	go io.Copy(io.Discard, bufio.NewReader(stdout))
	var id, rel, key string
	b.waitFor("a live session with segments in S3", func() bool {
		for _, s := range b.sessions() {
			if !s.ended && s.recording != "" {
				id, rel = s.id, s.recording
			}
		}
		if rel == "" {
			return false
		}
		key, _ = recstore.Key("recordings/", rel)
		return len(srv.Objects(key+".parts/")) >= 2
	})
	if err := b.gw.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.gw.done
	slow.Process.Kill()
	var covered int64
	for _, size := range srv.Objects(key + ".parts/") {
		covered += size
	}

	// The store is down: the gateway refuses to start rather than record
	// to a spool that would never leave this node.
	srv.Stop()
	sctx, scancel := context.WithTimeout(context.Background(), time.Minute)
	defer scancel()
	out, err := exec.CommandContext(sctx, b.bin, "serve", "-c", b.cfgPath).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "warden: recordings store s3 unreachable, refusing to start") {
		t.Fatalf("serve with S3 down: %v\n%s", err, out)
	}
	srv.Start()

	b.start()
	b.waitFor("the spool stored as one object", func() bool {
		o := srv.Objects("recordings/")
		_, ok := o[key]
		return ok && len(o) == 1
	})
	var sealed, reason, gapData string
	r := b.reader()
	if err := r.DB().QueryRow(`SELECT end_reason, recording_sha256 FROM sessions WHERE id = ?`, id).Scan(&reason, &sealed); err != nil {
		t.Fatal(err)
	}
	if reason != "interrupted" {
		t.Fatalf("end reason %q", reason)
	}
	b.waitFor("recording.gap", func() bool {
		return r.DB().QueryRow(`SELECT data FROM audit_events WHERE type = 'recording.gap' AND subject = ?`, id).Scan(&gapData) == nil
	})
	obj, err := srv.Client().GetObject(context.Background(), s3test.Bucket, key, minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(obj)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != sealed {
		t.Fatalf("object sha %x, sealed %s", sum, sealed)
	}
	var gap struct {
		Spool   int64 `json:"spool_bytes"`
		Stored  int64 `json:"stored_bytes"`
		Missing int64 `json:"missing_bytes"`
	}
	if err := json.Unmarshal([]byte(gapData), &gap); err != nil {
		t.Fatal(err)
	}
	if gap.Spool != int64(len(raw)) || gap.Stored != covered || gap.Missing != gap.Spool-gap.Stored || gap.Missing < 0 {
		t.Fatalf("gap %+v; object %d bytes, segments covered %d at the kill", gap, len(raw), covered)
	}
	t.Logf("the store lacked %d of %d bytes at the kill", gap.Missing, gap.Spool)
	if _, err := os.Stat(filepath.Join(b.data, filepath.FromSlash(rel))); !os.IsNotExist(err) {
		t.Fatalf("spool still there: %v", err)
	}
	if out, errOut, code := b.warden("audit", "verify", "-c", b.cfgPath); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify -c (from S3): %d\n%s%s", code, out, errOut)
	}
	// The same store with recordings.store local (what --data alone reads
	// on SQLite) must not find the recording.
	local := filepath.Join(b.dir, "local.yaml")
	if err := os.WriteFile(local, []byte(b.policy("[ops]", "")), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := b.warden("audit", "verify", "-c", local); code == 0 {
		t.Fatalf("audit verify of the local files alone passed: the recording should only be in S3\n%s%s", out, errOut)
	}
	// The evidence packet re-hashes the recording from S3.
	packet := filepath.Join(b.dir, "packet")
	if out, errOut, code := b.warden("evidence", "-c", b.cfgPath, "--tenant", "acme", "--month", time.Now().UTC().Format("2006-01"), "--out", packet); code != 0 {
		t.Fatalf("evidence -c: %d %s%s", code, out, errOut)
	}
	csv, err := os.ReadFile(filepath.Join(packet, "recordings.csv"))
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for _, l := range strings.Split(string(csv), "\n") {
		if strings.HasPrefix(l, id+",") {
			row = l
		}
	}
	if !strings.HasSuffix(strings.TrimSpace(row), ",ok") {
		t.Fatalf("evidence recordings row %q, want status ok (read from S3)", row)
	}
	out2, errOut, code := b.warden("play", "-c", b.cfgPath, "--speed", "1000", "--idle-limit", "0.001", id)
	if code != 0 || !strings.Contains(out2, "tick-1") {
		t.Fatalf("play -c: %d %q %q", code, out2, errOut)
	}
}
