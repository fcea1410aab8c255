package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// A gateway killed in the middle of a flush leaves a recording whose last
// line is torn. CloseOrphans cuts that line, seals the digest of the
// repaired file, says in the event what it cut and what the file's digest
// was as found, and the chain then verifies, file included. The default
// end reason is "interrupted" (CONTRACT §8).
func TestCloseOrphansRepairsATornLastLine(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	a := testSession("A")
	a.RecordingPath = "recordings/2026-11-29/A.cast"
	whole := "{\"version\":2,\"width\":80,\"height\":24}\n[0.5,\"o\",\"$ \"]\n[1.25,\"o\",\"hello\\r\\n\"]\n"
	torn := whole + "[2.0,\"o\",\"half an ev"
	if err := os.MkdirAll(filepath.Join(dir, "recordings/2026-11-29"), 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, a.RecordingPath)
	if err := os.WriteFile(path, []byte(torn), 0o600); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, a)

	if n, err := s.CloseOrphans(ctx, ""); err != nil || n != 1 {
		t.Fatalf("CloseOrphans = %d, %v", n, err)
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != whole {
		t.Fatalf("repaired file %q, %v; want the whole lines only", got, err)
	}
	row, err := s.Session(ctx, "A")
	if err != nil || row.EndReason != EndInterrupted {
		t.Fatalf("row %+v, %v; want end_reason interrupted", row, err)
	}
	sumAfter, sumBefore := sha256.Sum256([]byte(whole)), sha256.Sum256([]byte(torn))
	if row.RecordingSHA256 != hex.EncodeToString(sumAfter[:]) {
		t.Fatalf("sealed digest %s is not the repaired file's", row.RecordingSHA256)
	}
	ev, err := s.Events(ctx, 0, 0)
	if err != nil || len(ev) != 1 {
		t.Fatalf("events %v, %v", ev, err)
	}
	rep, ok := ev[0].Data["recording_repaired"].(map[string]any)
	if !ok || fmt.Sprint(rep["truncated_bytes"]) != fmt.Sprint(len(torn)-len(whole)) ||
		rep["sha256_before"] != hex.EncodeToString(sumBefore[:]) || ev[0].Data["reason"] != EndInterrupted {
		t.Fatalf("session.end data %+v", ev[0].Data)
	}
	assertChain(t, s, dir, 1)
}

// A recording that ends with a whole line is sealed as found, with no
// repair recorded.
func TestCloseOrphansLeavesAWholeRecordingAlone(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	a := testSession("A")
	a.RecordingPath = "recordings/2026-11-29/A.cast"
	whole := "{\"version\":2}\n[0.5,\"o\",\"$ \"]\n"
	os.MkdirAll(filepath.Join(dir, "recordings/2026-11-29"), 0o700)
	if err := os.WriteFile(filepath.Join(dir, a.RecordingPath), []byte(whole), 0o600); err != nil {
		t.Fatal(err)
	}
	mustStart(t, s, a)
	if _, err := s.CloseOrphans(context.Background(), ""); err != nil {
		t.Fatal(err)
	}
	ev, err := s.Events(context.Background(), 0, 0)
	if err != nil || len(ev) != 1 || ev[0].Data["recording_repaired"] != nil {
		t.Fatalf("events %+v, %v", ev, err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, a.RecordingPath))
	if string(got) != whole {
		t.Fatalf("file changed: %q", got)
	}
	assertChain(t, s, dir, 1)
}
