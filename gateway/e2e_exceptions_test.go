package gateway_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestExceptionRegisterOverSSH(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	future := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	add := []string{"exception", "add", "--tenant", "acme", "--owner", "bob", "--reason", "'legacy app needs root'",
		"--controls", "'session recording and weekly review'", "--expires", future}
	// Only approvers and auditors may change the register.
	if _, errOut, code := b.run(b.bob, "gw", add...); code != 1 || !strings.Contains(errOut, "only approvers and auditors") {
		t.Fatalf("bob: %d %q", code, errOut)
	}
	out, errOut, code := b.run(b.carol, "gw", add...)
	if code != 0 {
		t.Fatalf("carol: %d %q", code, errOut)
	}
	id := regexp.MustCompile(`exception (\d+) recorded`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("add output %q", out)
	}
	out, _, code = b.run(b.erin, "gw", "exceptions", "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["expired"] != false {
		t.Fatalf("list: %d %q", code, out)
	}
	// Someone who oversees no tenant sees an empty register.
	if out, _, code := b.run(b.bob, "gw", "exceptions", "--json"); code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("bob's list: %d %q", code, out)
	}
	if _, errOut, code := b.run(b.carol, "gw", "exception", "add", "--tenant", "nosuch", "--owner", "bob", "--reason", "x", "--controls", "y", "--expires", future); code != 1 || errOut != "warden: no tenant nosuch that you oversee\n" {
		t.Fatalf("unknown tenant: %d %q", code, errOut)
	}
	if _, errOut, code := b.run(b.carol, "gw", "exception", "close", id[1]); code != 2 || !strings.Contains(errOut, "--note") {
		t.Fatalf("close without note: %d %q", code, errOut)
	}
	if out, errOut, code := b.run(b.carol, "gw", "exception", "close", id[1], "--note", "'app retired'"); code != 0 || !strings.Contains(out, "closed") {
		t.Fatalf("close: %d %q %q", code, out, errOut)
	}
	out, _, _ = b.run(b.erin, "gw", "exceptions", "--json")
	if strings.TrimSpace(out) != "[]" {
		t.Fatalf("closed entry still listed as open: %q", out)
	}
	b.waitEvent("exception.closed", "carol")
}
