package cli

import (
	"strings"
	"testing"

	"github.com/warden-gw/warden/policy"
)

// Where recordings go is decided at start (the store is checked, spools
// are recovered), so a reload that changes it is refused.
func TestReloadRefusesRecordingsChange(t *testing.T) {
	parse := func(src string) *policy.Config {
		t.Helper()
		c, err := policy.Parse([]byte(src), "/etc/warden/warden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	s3 := "recordings: {store: s3, s3: {endpoint: 's3.example:9000', bucket: warden, access_key_file: a, secret_key_file: s}}\n"
	if err := restartOnly(parse(s3), parse(s3)); err != nil {
		t.Fatalf("same recordings: %v", err)
	}
	for _, c := range []struct{ old, cur string }{
		{"{}\n", s3},
		{s3, strings.Replace(s3, "bucket: warden", "bucket: other", 1)},
		{"{}\n", "recordings: {upload_interval: 5s}\n"},
	} {
		if err := restartOnly(parse(c.old), parse(c.cur)); err == nil || !strings.Contains(err.Error(), "recordings cannot change on reload") {
			t.Fatalf("reload %q -> %q: %v", c.old, c.cur, err)
		}
	}
}
