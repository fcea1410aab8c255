package rotate

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRotateFindsTheOldKeyBehindAMatchAddressBlock: root adds to
// sshd_config a Match block for every address but the gateway's, with its
// own AuthorizedKeysFile holding the old key. sshd -T for the gateway's
// address never names that file; the configuration text does.
func TestRotateFindsTheOldKeyBehindAMatchAddressBlock(t *testing.T) {
	hidden := t.TempDir()
	inc := t.TempDir()
	writeFile(t, filepath.Join(inc, "50-backdoor.conf"), "Match Address 10.0.0.0/8,127.0.0.2\n    AuthorizedKeysFile "+hidden+"/%u\n")
	f := newFixtureExtra(t, startVault(t), "", "Include "+inc+"/*.conf\n")
	writeFile(t, filepath.Join(hidden, "root"), f.oldLine)
	_, err := Rotate(context.Background(), f.options(), f.target)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSources || !strings.Contains(err.Error(), filepath.Join(hidden, "root")) {
		t.Fatalf("err = %v, want a sources failure naming %s", err, filepath.Join(hidden, "root"))
	}
	// The backdoor is real: the edited file no longer has the old key,
	// the gateway's address is refused, and 127.0.0.2 still gets in.
	if err := sshLogin(t, f.host, f.oldPEM); err == nil {
		t.Error("the old key logs in from 127.0.0.1")
	}
	if err := sshLoginFrom(t, f.host, f.oldPEM, "127.0.0.2"); err != nil {
		t.Errorf("the hidden file does not work from 127.0.0.2 (%v); the test proves nothing\n%s", err, f.host.Log())
	}
}

func TestConfigTokens(t *testing.T) {
	for in, want := range map[string][]string{
		"AuthorizedKeysFile .ssh/a  .ssh/b":         {"AuthorizedKeysFile", ".ssh/a", ".ssh/b"},
		"\tauthorizedkeysfile=\"/k/with space/%u\"": {"authorizedkeysfile", "/k/with space/%u"},
		"# AuthorizedKeysFile /x":                   nil,
		"   ":                                       nil,
		"Match Address 10.0.0.0/8\r":                {"Match", "Address", "10.0.0.0/8"},
	} {
		if got := configTokens(in); !slices.Equal(got, want) {
			t.Errorf("%q = %q, want %q", in, got, want)
		}
	}
}

func TestScanConfigText(t *testing.T) {
	var s sshdSources
	inc := s.scanConfigText(`Include /etc/ssh/sshd_config.d/*.conf
AuthorizedKeysFile .ssh/authorized_keys
Match Address !192.0.2.1
	AuthorizedKeysFile /etc/ssh/keys/%u none
	TrustedUserCAKeys /etc/ssh/ca.pub
Match User backup
	AuthorizedKeysCommand /usr/local/bin/keys %u
Include extra.conf
`)
	if !slices.Equal(inc, []string{"/etc/ssh/sshd_config.d/*.conf", "extra.conf"}) {
		t.Errorf("includes %q", inc)
	}
	if !slices.Equal(s.files, []string{".ssh/authorized_keys", "/etc/ssh/keys/%u"}) || !slices.Equal(s.caFiles, []string{"/etc/ssh/ca.pub"}) ||
		s.command != "/usr/local/bin/keys %u" {
		t.Errorf("sources %+v", s)
	}
}

// TestIncludeScript: only a plain last-element pattern is expanded, inside
// a quoted directory; anything else fails rather than reaching the shell.
func TestIncludeScript(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.conf"), "AuthorizedKeysFile /a\n")
	writeFile(t, filepath.Join(dir, "b.txt"), "AuthorizedKeysFile /b\n")
	script, err := includeScript([]string{dir + "/*.conf"}, "SEP")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "sh", "-c", script).Output()
	if err != nil {
		t.Fatal(err)
	}
	if texts := splitDump(out, "SEP"); len(texts) != 1 || !strings.Contains(texts[0], "/a") {
		t.Errorf("dump %q", texts)
	}
	for _, bad := range []string{"/etc/*/x.conf", "/etc/ssh/$(reboot).conf", "/etc/ssh/a;b", "/etc/ssh/`x`"} {
		if _, err := includeScript([]string{bad}, "SEP"); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
	if d, b, err := includeTarget("sshd_config.d/*.conf"); err != nil || d != "/etc/ssh/sshd_config.d/" || b != "*.conf" {
		t.Errorf("relative include: %q %q %v", d, b, err)
	}
}
