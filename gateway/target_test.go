package gateway

import (
	"errors"
	"strings"
	"testing"
	"unicode"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		name, in      string
		login, host   string
		direct, isErr bool
	}{
		{"login at host", "root@web01", "root", "web01", true, false},
		{"tenant host", "root@acme/web01", "root", "acme/web01", true, false},
		{"command interface", "alice", "alice", "", false, false},
		{"dots and dashes", "svc.deploy@db-01.prod", "svc.deploy", "db-01.prod", true, false},
		{"two ats", "@@", "", "", false, true},
		{"no host", "root@", "", "", false, true},
		{"no login", "@web01", "", "", false, true},
		{"many ats", "a@b@c@d", "", "", false, true},
		{"control", "ro\x00ot@web01", "", "", false, true},
		{"escape", "root@web\x1b01", "", "", false, true},
		{"del", "root@web\x7f", "", "", false, true},
		{"space", "root@web 01", "", "", false, true},
		{"empty tenant", "root@/web01", "", "", false, true},
		{"two slashes", "root@a/b/c", "", "", false, true},
		{"dotdot path", "root@../etc", "", "", false, true},
		{"huge", strings.Repeat("x", 10000), "", "", false, true},
		{"empty", "", "", "", false, true},
		{"invalid utf8", "root@\xffweb", "", "", false, true},
		{"long login", strings.Repeat("a", 65) + "@web01", "", "", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseTarget(tc.in)
			if tc.isErr {
				if err == nil || !errors.Is(err, errBadTarget) {
					t.Fatalf("parseTarget(%q) = %+v, %v; want errBadTarget", tc.in, got, err)
				}
				if strings.ContainsAny(err.Error(), "\x00\x1b\n") {
					t.Fatalf("error echoes control characters: %q", err.Error())
				}
				return
			}
			if err != nil || got.login != tc.login || got.host != tc.host || got.direct != tc.direct {
				t.Fatalf("parseTarget(%q) = %+v, %v", tc.in, got, err)
			}
		})
	}
}

// FuzzParseTarget feeds the SSH user name, the first bytes a stranger
// chooses, to the parser. What it accepts must be exactly LOGIN@HOST (or a
// plain name) made of valid names, and what it refuses must say so in an
// error that shows no raw control or bidi character and stays short.
func FuzzParseTarget(f *testing.F) {
	for _, s := range []string{"root@web01", "@@", "a@b@c@d", "root@acme/web01", "x\x00@y", "alice",
		"root@\u202eweb01", "root@web01\x1b[2J", "root@a/b/c", "-oProxyCommand=x@web01", "root@..", "r\xffoot@web01"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tg, err := parseTarget(s)
		if err != nil {
			if !errors.Is(err, errBadTarget) {
				t.Fatalf("error %v is not errBadTarget", err)
			}
			msg := err.Error()
			if len(msg) > 2*maxUserName+200 {
				t.Fatalf("error too long: %d", len(msg))
			}
			for _, r := range msg {
				if r != ' ' && !unicode.IsPrint(r) {
					t.Fatalf("error shows %U raw: %q", r, msg)
				}
			}
			return
		}
		if !validName(tg.login) {
			t.Fatalf("accepted invalid login %q", tg.login)
		}
		if !tg.direct {
			if tg.login != s || tg.host != "" {
				t.Fatalf("command interface %q parsed as %+v", s, tg)
			}
			return
		}
		if tg.String() != s || strings.Count(s, "@") != 1 {
			t.Fatalf("%q parsed as %+v", s, tg)
		}
		tenant, name, ok := strings.Cut(tg.host, "/")
		if ok && (!validName(tenant) || !validName(name)) || !ok && !validName(tg.host) {
			t.Fatalf("accepted host %q", tg.host)
		}
	})
}
