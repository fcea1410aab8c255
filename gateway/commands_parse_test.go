package gateway

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/jit"
)

// valuedFlags are the flag sets the commands pass to options.
var valuedFlags = [][]string{
	nil,
	{"--for", "--reason", "--ticket"},
	{"--comment"},
	{"--reason"},
	{"--note"},
	{"--tenant", "--owner", "--reason", "--controls", "--expires"},
}

// maxUsageLine bounds a usage error: the parsers quote at most 64 bytes of
// input (as escaped text, up to four times longer) plus their own words.
const maxUsageLine = 512

// checkUsage requires err to be a usage error of one bounded line with no
// control character: it goes to the client's terminal and the audit log.
func checkUsage(t *testing.T, in string, err error) {
	t.Helper()
	msg := err.Error()
	if !errors.Is(err, errUsage) || len(msg) > maxUsageLine || !utf8.ValidString(msg) {
		t.Fatalf("%q: error %q is not a short usage error", in, msg)
	}
	for _, r := range msg {
		if r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || r == '\u202e' || r == '\u2066' {
			t.Fatalf("%q: error %q carries control character %U", in, msg, r)
		}
	}
}

// parseAll runs line through every parser of the command interface, as
// runCommand and the commands do, and checks what each returns.
func parseAll(t *testing.T, s *Server, line string) {
	cl, err := s.parseCommandLine(line)
	if err != nil {
		checkUsage(t, line, err)
		return
	}
	if cl.name == "" {
		if strings.Trim(line, " \t\n") != "" && len(cl.args) != 0 {
			t.Fatalf("%q: no command but args %q", line, cl.args)
		}
		return
	}
	if _, ok := s.commands()[cl.name]; !ok || slices.Contains(cl.args, "--json") {
		t.Fatalf("%q: parsed as %q %q", line, cl.name, cl.args)
	}
	for _, valued := range valuedFlags {
		pos, opts, err := options(cl.args, valued...)
		if err != nil {
			checkUsage(t, line, err)
			continue
		}
		// Every positional and every value is one of the words, in order
		// for the positionals; no flag outside the sets is accepted.
		i := 0
		for _, p := range pos {
			for i < len(cl.args) && cl.args[i] != p {
				i++
			}
			if i == len(cl.args) {
				t.Fatalf("%q: positional %q is not an argument (%q)", line, p, cl.args)
			}
			i++
		}
		for name, v := range opts {
			if !slices.Contains(valued, name) && !boolFlags[name] {
				t.Fatalf("%q: flag %s accepted", line, name)
			}
			if v != "true" && !slices.ContainsFunc(cl.args, func(a string) bool { return a == v || strings.HasSuffix(a, "="+v) }) {
				t.Fatalf("%q: value %q of %s is not an argument", line, v, name)
			}
		}
		if err := noArgs(pos); err != nil {
			checkUsage(t, line, err)
		}
		for _, what := range []string{"request ID", "grant ID"} {
			if id, err := oneID(pos, what); err != nil {
				checkUsage(t, line, err)
			} else if id <= 0 {
				t.Fatalf("%q: ID %d accepted", line, id)
			}
		}
		if id, err := oneSessionID(pos); err != nil {
			checkUsage(t, line, err)
		} else if len(id) != 26 || strings.ContainsAny(id, "/\\ \x00") || id[0] == '-' || id[0] == '.' {
			t.Fatalf("%q: session ID %q accepted", line, id)
		}
		if len(pos) == 1 {
			if id, err := exceptions.ParseID(pos[0]); err == nil && id <= 0 {
				t.Fatalf("%q: exception ID %d accepted", line, id)
			}
			if _, err := jit.ParseID(pos[0]); err == nil && strings.TrimLeft(pos[0], "123456789") == pos[0] {
				t.Fatalf("%q: ID %q with a sign or leading zero accepted", line, pos[0])
			}
		}
	}
}

// TestCommandLineParsing holds the lines that once broke a parser (found
// by FuzzCommandLine or by hand) and the attacks the parsers must refuse.
func TestCommandLineParsing(t *testing.T) {
	s := &Server{}
	for _, line := range []string{
		"",
		"   ",
		"approve 3",
		"approve 03",
		"approve -3",
		"approve +3",
		"approve 99999999999999999999",
		"approve 1 --comment",
		"approve 1 --comment= --comment=x",
		"deny 1 --reason 'a\nb'",
		"revoke 1 --reason=x --reason=y",
		"kill " + strings.Repeat("a", 26),
		"kill ../../../../etc/passwd",
		"kill " + strings.Repeat("A", 26),
		"watch --json",
		"exception close 1 --note \"\"",
		"exception add --tenant --owner",
		// An unknown flag used to be echoed raw, so a newline or an escape
		// sequence in it reached the terminal and split the audit line.
		"sessions '--x\nwarden: forged line'",
		"sessions '--\x1b[2J'",
		"sessions '--\u202ereversed'",
		"request " + strings.Repeat("x", 100000),
		"whoami \"unterminated",
		"whoami 'unterminated",
		"whoami \\",
		"\xff\xfe",
		"hosts --json --json",
		"sessions --live=1",
	} {
		parseAll(t, s, line)
	}
	// Specific answers.
	if _, err := s.parseCommandLine("nosuch\n--help"); err == nil || err.Error() != `usage: unknown command "nosuch"; run: ssh GATEWAY help` {
		t.Errorf("unknown command: %v", err)
	}
	if _, _, err := options([]string{"--x\nforged"}); err == nil || strings.Contains(err.Error(), "\n") {
		t.Errorf("unknown flag: %v", err)
	}
	if cl, err := s.parseCommandLine("sessions --json --live"); err != nil || cl.name != "sessions" || !cl.json || !slices.Equal(cl.args, []string{"--live"}) {
		t.Errorf("sessions: %+v %v", cl, err)
	}
}

// FuzzCommandLine feeds arbitrary exec lines to the command interface's
// parsers: splitting, the command and --json, flags, IDs. None may panic,
// and every refusal must be one short usage line.
func FuzzCommandLine(f *testing.F) {
	for _, seed := range []string{
		`request prod-root --for 90m --reason "INC 4711: disk full" --ticket INC-4711`,
		`approve 17 --comment ok`,
		`deny 17 --reason 'not now'`,
		`revoke 3 --reason=done`,
		`kill abcdefghijklmnopqrstuvwxyz`,
		`exception add --tenant acme --owner bob --reason "legacy app" --controls recording --expires 2027-01-31`,
		`exception close 4 --note "app retired"`,
		`sessions --live --json`,
		`whoami "x\" y" 'z' a\ b`,
	} {
		f.Add(seed)
	}
	s := &Server{}
	f.Fuzz(func(t *testing.T, line string) {
		parseAll(t, s, line)
	})
}
