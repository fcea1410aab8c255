package evidence

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestBuildIntoEmptyDirectory(t *testing.T) {
	w := october(t)
	out := t.TempDir() // exists, empty
	w.build(out)
	if _, err := VerifyPacket(out); err != nil {
		t.Fatal(err)
	}
}

func TestBuildIntoReadOnlyPathLeavesNothing(t *testing.T) {
	w := october(t)
	parent := t.TempDir()
	makeReadOnly(t, parent)
	out := filepath.Join(parent, "p")
	_, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"), Out: out,
		Policy: w.cfg, Now: w.clk.Now})
	if err == nil || !strings.Contains(err.Error(), "cannot write beside "+out) {
		t.Fatalf("Build = %v, want a cannot-write error", err)
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		t.Fatalf("read-only parent now holds %v", entries)
	}
}

// makeReadOnly makes dir unwritable for this process, as root too: root
// ignores permission bits, so it gets the immutable attribute instead.
func makeReadOnly(t *testing.T, dir string) {
	t.Helper()
	if os.Geteuid() != 0 {
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		return
	}
	runTool(t, "chattr", "+i", dir)
	t.Cleanup(func() { exec.Command("chattr", "-i", dir).Run() })
}

func TestPartialWritesNeverLookComplete(t *testing.T) {
	// A failure after the temporary directory exists (here: a file that
	// cannot be created) must remove it and leave Out absent.
	parent := t.TempDir()
	out := filepath.Join(parent, "p")
	_, err := writePacket(out, map[string][]byte{"a.csv": []byte("x"), "bad/name": []byte("y")})
	if err == nil {
		t.Fatal("writePacket with an unwritable name succeeded")
	}
	entries, _ := os.ReadDir(parent)
	if len(entries) != 0 {
		t.Fatalf("failed write left %v", entries)
	}
}

func TestCheckOutComparesWholePackets(t *testing.T) {
	files := map[string][]byte{ManifestName: []byte("m"), "a.csv": []byte("a")}
	dir := filepath.Join(t.TempDir(), "p")
	if reused, err := writePacket(dir, files); err != nil || reused {
		t.Fatalf("first write: %v, %v", reused, err)
	}
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("packet directory mode: %v, %v", st, err)
	}
	if reused, err := writePacket(dir, files); err != nil || !reused {
		t.Fatalf("same packet again: %v, %v", reused, err)
	}
	for name, other := range map[string]map[string][]byte{
		"changed byte": {ManifestName: []byte("m"), "a.csv": []byte("b")},
		"extra file":   {ManifestName: []byte("m"), "a.csv": []byte("a"), "b.csv": nil},
		"missing file": {ManifestName: []byte("m")},
	} {
		if _, err := writePacket(dir, other); err == nil || !strings.Contains(err.Error(), "different evidence packet") {
			t.Errorf("%s: writePacket = %v", name, err)
		}
	}
}
