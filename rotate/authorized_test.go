package rotate

import (
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// testKey returns a deterministic ed25519 public key for seed.
func testKey(t testing.TB, seed byte) gossh.PublicKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	s[0] = seed
	pub, err := gossh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func authLine(t testing.TB, seed byte) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(testKey(t, seed))))
}

func TestCheckRemotePath(t *testing.T) {
	tests := []struct {
		name, path string
		ok         bool
	}{
		{"default relative path", DefaultAuthorizedKeys, true},
		{"absolute path", "/etc/ssh/keys/root", true},
		{"quotes and spaces are quoted, not refused", `/tmp/it's a "dir"/keys`, true},
		{"empty", "", false},
		{"newline would end the command", "keys\nrm -rf /", false},
		{"carriage return", "keys\r", false},
		{"nul", "keys\x00", false},
		{"dot dot segment", "../other/.ssh/authorized_keys", false},
		{"dot dot in the middle", "/home/a/../b/keys", false},
		{"directory", "/tmp/keys/", false},
		{"dot", ".", false},
		{"too long", strings.Repeat("a", maxRemotePath+1), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkRemotePath(tt.path)
			if (err == nil) != tt.ok {
				t.Fatalf("checkRemotePath(%q) = %v, want ok=%v", tt.path, err, tt.ok)
			}
		})
	}
}

// echoBySh has the real sh print the word shellQuote makes of s.
func echoBySh(t *testing.T, s string) string {
	t.Helper()
	out, err := exec.Command("sh", "-c", "printf '%s' "+shellQuote(s)).Output()
	if err != nil {
		t.Fatalf("sh on %q: %v", s, err)
	}
	return string(out)
}

func TestShellQuoteIsOneLiteralWord(t *testing.T) {
	for _, s := range []string{"", "plain", "it's", "'", "''", `"; rm -rf / #`, "$(id) `id` $HOME", "a\nb", `back\slash`, "*?[x]", "-n", "ümlaut"} {
		if got := echoBySh(t, s); got != s {
			t.Errorf("sh turned %q into %q", s, got)
		}
	}
}

func FuzzShellQuote(f *testing.F) {
	for _, s := range []string{"it's", `'\''`, "$(reboot)", "a b\tc"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) {
			return // an argv cannot carry NUL; Rotate's values never hold one
		}
		if got := echoBySh(t, s); got != s {
			t.Fatalf("sh turned %q into %q", s, got)
		}
	})
}

func TestFindKey(t *testing.T) {
	key := authLine(t, 1)
	blob := strings.Fields(key)[1]
	other := authLine(t, 2)
	tests := []struct {
		name    string
		content string
		found   bool
		options []string
	}{
		{"plain line", other + "\n" + key + " me@host\n", true, nil},
		{"options are returned", `from="10.0.0.1,10.0.0.2",no-pty ` + key + "\n", true, []string{`from="10.0.0.1,10.0.0.2"`, "no-pty"}},
		{"tabs and CRLF", "\t" + strings.Replace(key, " ", "\t", 1) + "\r\n", true, nil},
		{"no final newline", key, true, nil},
		{"commented out line authorizes nothing", "# " + key + "\n", false, nil},
		{"blob inside an option is not the key", `command="echo ` + blob + `" ` + other + "\n", false, nil},
		{"another key", other + "\n", false, nil},
		{"blob as a prefix of a longer field", strings.Replace(key, blob, blob+"AAAA", 1) + "\n", false, nil},
		{"empty file", "", false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts, found := findKey([]byte(tt.content), blob)
			if found != tt.found || strings.Join(opts, "|") != strings.Join(tt.options, "|") {
				t.Fatalf("findKey = %q, %v; want %q, %v", opts, found, tt.options, tt.found)
			}
		})
	}
}

func FuzzFindKey(f *testing.F) {
	key := authLine(f, 1)
	f.Add(key + "\n")
	f.Add(`from="x" ` + key)
	f.Add("# " + key + "\r\n" + authLine(f, 2))
	f.Add(`command="` + key + `" ` + authLine(f, 3))
	blob := strings.Fields(key)[1]
	f.Fuzz(func(t *testing.T, content string) {
		if _, found := findKey([]byte(content), blob); found && !hasBlob([]byte(content), blob) {
			t.Fatalf("findKey found a key hasBlob misses in %q", content)
		}
		// Whatever precedes it, a key line of its own is always found,
		// with exactly its options.
		withKey := content + "\n" + `restrict,from="127.0.0.1" ` + key + " c\n"
		opts, found := findKey([]byte(withKey), blob)
		if !found {
			t.Fatalf("key line not found after %q", content)
		}
		if _, earlier := findKey([]byte(content), blob); !earlier && strings.Join(opts, ",") != `restrict,from="127.0.0.1"` {
			t.Fatalf("options = %q", opts)
		}
	})
}

func TestKeyLineHasNoOptions(t *testing.T) {
	key := authLine(t, 1)
	if got, want := keyLine(testKey(t, 1), "warden-rotate-x"), key+" warden-rotate-x"; got != want {
		t.Errorf("keyLine = %q, want %q", got, want)
	}
}

// runLocal runs a script with the real sh, as the host's shell would.
func runLocal(t *testing.T, script string) error {
	t.Helper()
	out, err := exec.Command("sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Logf("sh: %v: %s", err, out)
	}
	return err
}

func TestAppendScript(t *testing.T) {
	newLine := `from="1.2.3.4" ` + authLine(t, 9) + " warden-rotate-x"
	tests := []struct {
		name, before, after string
		missing             bool
	}{
		{name: "appends after the last line", before: "a\n", after: "a\n" + newLine + "\n"},
		{name: "ends an unterminated last line first", before: "a", after: "a\n" + newLine + "\n"},
		{name: "empty file", before: "", after: newLine + "\n"},
		{name: "creates a missing file", missing: true, after: newLine + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), `it's "keys"`)
			if !tt.missing {
				writeFileMode(t, file, tt.before, 0o644)
			}
			if err := runLocal(t, appendScript(file, newLine)); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.after {
				t.Errorf("file = %q, want %q", b, tt.after)
			}
			if st, _ := os.Stat(file); tt.missing && st.Mode().Perm() != 0o600 {
				t.Errorf("new file mode = %o, want 600", st.Mode().Perm())
			}
		})
	}
}

func TestRemoveScript(t *testing.T) {
	key := authLine(t, 1)
	blob := strings.Fields(key)[1]
	other := authLine(t, 2)
	tests := []struct{ name, before, after string }{
		{"removes the key line only", other + " a\n" + key + " b\n# note\n", other + " a\n# note\n"},
		{"removes every line with the blob, options and comments too", `from="x" ` + key + "\n" + other + "\n# " + key + "\n", other + "\n"},
		{"CRLF and tabs", strings.Replace(key, " ", "\t", 1) + "\r\n" + other + "\r\n", other + "\r\n"},
		{"a longer field that starts with the blob stays", strings.Replace(key, blob, blob+"xx", 1) + "\n", strings.Replace(key, blob, blob+"xx", 1) + "\n"},
		{"unterminated last line", other + "\n" + key, other + "\n"},
		{"only the key", key + "\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "it's keys")
			writeFileMode(t, file, tt.before, 0o644)
			if err := runLocal(t, removeScript(file, blob)); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tt.after {
				t.Errorf("file = %q, want %q", b, tt.after)
			}
			if hasBlob(b, blob) {
				t.Errorf("hasBlob still finds the key in %q", b)
			}
			if st, _ := os.Stat(file); st.Mode().Perm() != 0o600 {
				t.Errorf("rewritten file mode = %o, want 600", st.Mode().Perm())
			}
			if ents, _ := os.ReadDir(dir); len(ents) != 1 {
				t.Errorf("temporary file left behind: %v", ents)
			}
		})
	}
	t.Run("a missing file fails and creates nothing", func(t *testing.T) {
		dir := t.TempDir()
		if err := runLocal(t, removeScript(filepath.Join(dir, "absent"), blob)); err == nil {
			t.Fatal("removal from a missing file succeeded")
		}
		if ents, _ := os.ReadDir(dir); len(ents) != 0 {
			t.Errorf("files left behind: %v", ents)
		}
	})
}
