package rotate

import (
	"strings"
	"testing"
)

// FuzzSourcesParsers feeds host-controlled text (sshd -T output, the
// configuration, the passwd database) to the sources step's parsers: they
// must not panic, and every file they name must come from the text.
func FuzzSourcesParsers(f *testing.F) {
	f.Add("authorizedkeysfile .ssh/authorized_keys /k/%u\nauthorizedkeyscommand none\n", "root:x:0:0::/root:/bin/sh\n")
	f.Add("Match Address !1.2.3.4\n AuthorizedKeysFile=\"/a b/%h\"\nInclude x/*.conf\n", "a:x:1:1::/home/a:/bin/sh\nb:x")
	f.Fuzz(func(t *testing.T, conf, passwd string) {
		var s sshdSources
		_ = s.parse([]byte(conf))
		inc := s.scanConfigText(conf)
		unquoted := strings.ReplaceAll(conf, `"`, "")
		for _, f := range s.files {
			if !strings.Contains(conf, f) && !strings.Contains(unquoted, f) {
				t.Fatalf("file %q is not in the text", f)
			}
		}
		for _, a := range inc {
			if _, err := includeScript([]string{a}, "SEP"); err == nil {
				_, base, _ := includeTarget(a)
				if !includeGlob.MatchString(base) {
					t.Fatalf("include %q accepted with base %q", a, base)
				}
			}
		}
		as, err := parsePasswd([]byte(passwd))
		if err != nil {
			return
		}
		for _, a := range as {
			for _, p := range s.files {
				got, err := expandKeysFile(p, a)
				if err == nil && strings.HasPrefix(a.home, "/") && !strings.HasPrefix(got, "/") {
					t.Fatalf("%q for home %q expanded to the relative %q", p, a.home, got)
				}
			}
		}
	})
}

// FuzzLineHasKey: whatever surrounds it, a line that carries the key as a
// field is found, and no line makes the matcher panic.
func FuzzLineHasKey(f *testing.F) {
	f.Add(`from="!127.0.0.1,*"`, "comment")
	f.Add(`command="a b c"`, "")
	f.Fuzz(func(t *testing.T, opts, comment string) {
		pub := testKey(t, 1)
		keys, _ := keyBlobs([]string{blobOf(pub)})
		if strings.ContainsAny(opts+comment, "\n") {
			return
		}
		line := opts + " ssh-ed25519 " + blobOf(pub) + " " + comment
		if !lineHasKey(line, keys) {
			t.Fatalf("key not found in %q", line)
		}
		_ = lineHasKey(opts+comment, keys)
	})
}
