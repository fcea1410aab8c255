package sshtest

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestProgramNamesDebianPackageWhenMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	msg := failureOf(t, func(tb testing.TB) { program(tb, "ssh-no-such-program") })
	if !strings.Contains(msg, "ssh-no-such-program not found") {
		t.Fatalf("failure = %q", msg)
	}
	debianPackage["ssh-no-such-program"] = "openssh-imaginary"
	defer delete(debianPackage, "ssh-no-such-program")
	msg = failureOf(t, func(tb testing.TB) { program(tb, "ssh-no-such-program") })
	if !strings.Contains(msg, "apt-get install openssh-imaginary") {
		t.Fatalf("failure does not name the package: %q", msg)
	}
}

func TestProgramPathIsAbsolute(t *testing.T) {
	for _, name := range []string{"sshd", "ssh", "ssh-keygen"} {
		if p := program(t, name); !filepath.IsAbs(p) {
			t.Errorf("program(%q) = %q, want an absolute path (sshd re-executes itself by it)", name, p)
		}
	}
}
