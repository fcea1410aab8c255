package policy

import "testing"

func TestEditDistance(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"address", "address", 0},
		{"adress", "address", 1},
		{"adderss", "address", 2},
		{"kitten", "sitting", 3},
	}
	for _, tc := range tests {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	options := []string{"address", "host_key", "known_hosts", "labels", "name"}
	tests := []struct {
		name, word, want string
	}{
		{"one typo", "adress", "address"},
		{"two typos", "hostkey_", "host_key"},
		{"too far", "fingerprint", ""},
		{"short words need a real overlap", "x", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := suggest(tc.word, options); got != tc.want {
				t.Errorf("suggest(%q) = %q, want %q", tc.word, got, tc.want)
			}
		})
	}
}
