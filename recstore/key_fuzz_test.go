package recstore

import (
	"regexp"
	"strings"
	"testing"
)

var keyShape = regexp.MustCompile(`^p/[0-9]{4}-[0-9]{2}-[0-9]{2}/[A-Za-z0-9_-]{8,64}\.cast$`)

// FuzzKey: whatever a stored recording path says, a key it yields stays
// under the prefix with the one shape the recorder writes, and a segment
// key parses back only under its own recording.
func FuzzKey(f *testing.F) {
	for _, s := range []string{
		"recordings/2026-12-02/abcdefgh1234.cast", "recordings/2026-12-02/../x/abcdefgh1234.cast",
		"recordings/2026-12-02/abcdefgh1234.cast.parts/0000000000000000", "/etc/passwd", "recordings//a.cast",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, rel string) {
		k, err := Key("p/", rel)
		if err != nil {
			return
		}
		if !keyShape.MatchString(k) || strings.Contains(k, "..") {
			t.Fatalf("Key(%q) = %q", rel, k)
		}
		if off, ok := parsePartKey(k, partKey(k, 42)); !ok || off != 42 {
			t.Fatalf("part key of %q does not parse back", k)
		}
		if _, ok := parsePartKey(k, k+"x"+partsSuffix+"0000000000000000"); ok {
			t.Fatalf("another recording's segment parsed under %q", k)
		}
	})
}
