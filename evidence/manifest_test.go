package evidence

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestManifestIsSortedSha256sumFormat(t *testing.T) {
	files := map[string][]byte{"b.csv": []byte("b"), "a.json": []byte("a"), "Z.md": nil}
	m := string(manifest(files))
	want := "" +
		"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855  Z.md\n" +
		"ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb  a.json\n" +
		"3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d  b.csv\n"
	if m != want {
		t.Fatalf("manifest:\n%s\nwant:\n%s", m, want)
	}
	dir := t.TempDir()
	for n, b := range files {
		writeFile(t, filepath.Join(dir, n), b)
	}
	writeFile(t, filepath.Join(dir, ManifestName), []byte(m))
	cmd := exec.Command(tool(t, "sha256sum"), "--strict", "-c", ManifestName)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
	got, err := parseManifest([]byte(m))
	if err != nil || len(got) != 3 || got["b.csv"] != "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d" {
		t.Fatalf("parseManifest = %v, %v", got, err)
	}
}

func TestParseManifestRefusals(t *testing.T) {
	h := strings.Repeat("a", 64)
	for name, m := range map[string]string{
		"empty":             "",
		"no final newline":  h + "  a.csv",
		"one space":         h + " a.csv\n",
		"short hash":        h[:63] + "  a.csv\n",
		"upper-case hash":   strings.Repeat("A", 64) + "  a.csv\n",
		"path":              h + "  ../a.csv\n",
		"subdirectory":      h + "  x/a.csv\n",
		"hidden file":       h + "  .a\n",
		"out of order":      h + "  b.csv\n" + h + "  a.csv\n",
		"repeated":          h + "  a.csv\n" + h + "  a.csv\n",
		"binary-mode stars": h + " *a.csv\n",
	} {
		if _, err := parseManifest([]byte(m)); err == nil {
			t.Errorf("%s: parseManifest accepted %q", name, m)
		}
	}
}

func FuzzParseManifest(f *testing.F) {
	f.Add(manifest(map[string][]byte{"a.csv": []byte("x"), "b.json": nil}))
	f.Add([]byte("x  y\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := parseManifest(b)
		if err != nil {
			return
		}
		for name, sum := range m {
			if !validFileName(name) || len(sum) != 64 {
				t.Fatalf("parseManifest(%q) gave %q: %q", b, name, sum)
			}
		}
	})
}
