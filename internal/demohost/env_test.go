package demohost

import (
	"os/user"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

func TestEnvPassesOnlyAcceptedNames(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	args := append(d.c.Args(d.port), "-o", "SendEnv=LANG WARDEN_DEMO BASH_ENV",
		"--", sshtest.Dest("root"), `echo "$LANG|$WARDEN_DEMO|${BASH_ENV-unset}|$USER"`)
	cmd := sshCommand(t, args...)
	cmd.Env = append(cmd.Environ(), "LANG=C.UTF-8", "WARDEN_DEMO=yes", "BASH_ENV=/tmp/evil.sh")
	out, err := cmd.CombinedOutput()
	me, _ := user.Current()
	if want := "C.UTF-8|yes|unset|" + me.Username + "\n"; err != nil || string(out) != want {
		t.Fatalf("output %q, err %v, want %q", out, err, want)
	}
}

func TestAcceptEnv(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"LANG", true},
		{"LC_ALL", true},
		{"WARDEN_TEST_X", true},
		{"LD_PRELOAD", false},
		{"PATH", false},
		{"BASH_ENV", false},
		{"LANGUAGE", false},
		{"LC_X-Y", false},
		{"", false},
	} {
		if got := acceptEnv(tt.name); got != tt.want {
			t.Errorf("acceptEnv(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func FuzzAcceptEnv(f *testing.F) {
	for _, s := range []string{"LANG", "LC_ALL", "WARDEN_X", "LD_PRELOAD", "LC_\n", "1LC_"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if !acceptEnv(name) {
			return
		}
		if !validEnvName(name) || strings.ContainsAny(name, "=\x00\n ") {
			t.Fatalf("accepted malformed name %q", name)
		}
		if name != "LANG" && !strings.HasPrefix(name, "LC_") && !strings.HasPrefix(name, "WARDEN_") {
			t.Fatalf("accepted name outside the allow list: %q", name)
		}
	})
}
