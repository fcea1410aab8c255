package policy

import (
	"strings"
	"testing"
)

func TestStoreSection(t *testing.T) {
	cfg, err := Parse([]byte("listen: \":2222\"\n"), "/etc/warden/w.yaml")
	if err != nil || cfg.Store != (Store{Driver: StoreSQLite}) {
		t.Fatalf("default store: %+v, %v", cfg.Store, err)
	}
	cfg, err = Parse([]byte("store:\n  driver: postgres\n  dsn_file: pg.dsn\n"), "/etc/warden/w.yaml")
	if err != nil || cfg.Store != (Store{Driver: StorePostgres, DSNFile: "/etc/warden/pg.dsn"}) {
		t.Fatalf("postgres store: %+v, %v", cfg.Store, err)
	}
	// Each mistake is one error at its line.
	for _, c := range []struct{ src, want string }{
		{"listen: \":2222\"\nstore:\n  driver: mysql\n", `w.yaml:3: unknown store.driver "mysql"`},
		{"store:\n  driver: postgres\n", "w.yaml:2: store.driver postgres needs store.dsn_file"},
		{"store:\n  driver: sqlite\n  dsn_file: x\n", "w.yaml:3: store.dsn_file is only for store.driver postgres"},
		{"store:\n  dsn_file: x\n", "store.dsn_file is only for store.driver postgres"},
		{"store:\n  driver: postgres\n  dsn: postgres://u:pw@h/db\n", `unknown key "dsn"`},
		{"store: postgres\n", "w.yaml:1: store must be a mapping"},
		{"store:\n  driver: postgres\n  dsn_file: \"a\\x01b\"\n", "store.dsn_file contains control characters"},
	} {
		_, err := Parse([]byte(c.src), "/etc/warden/w.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}
