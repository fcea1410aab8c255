package console

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// TestSessionPageEscapes: a command's markup and terminal controls are
// shown as text and visible escapes, never as markup or raw controls.
func TestSessionPageEscapes(t *testing.T) {
	tc := newTestConsole(t)
	ev, cm := shell(0.5, [2]string{"echo '<img src=x onerror=alert(1)>'\x1b[31m\u202eevil", "ok"})
	id := tc.seed(t, seeded{User: "dan", Host: "web01", Tenant: "acme", Events: ev, Commands: cm})
	cl, _ := tc.signIn(t, "eve")
	status, body := get(t, cl, tc.srv.URL+"/sessions/"+id)
	if status != 200 {
		t.Fatalf("status %d", status)
	}
	if strings.Contains(body, "<img") || strings.ContainsAny(body, "\x1b\u202e") {
		t.Fatalf("markup or controls reached the page:\n%s", body)
	}
	if !strings.Contains(body, `&lt;img src=x onerror=alert(1)&gt;&#39;\x1b[31m\u202eevil`) {
		t.Fatalf("the command is not shown as escaped text:\n%s", body)
	}
}

// FuzzSessionInput: what a person types into the list's URL and the
// browser's Accept-Encoding never panics, a date that parses is UTC, and
// an ID that passes the check holds only the URL- and file-safe alphabet.
func FuzzSessionInput(f *testing.F) {
	for _, s := range []string{"", "2026-12-01", "2026-12-01T14:30", "2026-12-01T14:30:00+02:00", "gzip;q=0, *",
		"abc-DEF_123", "../x", "a.cast", "\x00", "q=1e400"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, until := range []bool{false, true} {
			if tm, err := parseDay(s, until); err == nil && !tm.IsZero() && tm.Location() != time.UTC {
				t.Fatalf("parseDay(%q) = %v, not UTC", s, tm)
			}
		}
		_ = acceptsGzip(s)
		if validSessionID(s) {
			if s == "" || len(s) > maxSessionID || !utf8.ValidString(s) || strings.Trim(s,
				"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
				t.Fatalf("validSessionID(%q) accepted", s)
			}
		}
		f := listForm{User: s, Host: s, Since: s, Until: s, Command: s, Output: s, After: s}
		_, _ = f.query()
		if u := f.url(s); !strings.HasPrefix(u, "/sessions") {
			t.Fatalf("url %q", u)
		}
	})
}
