package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/fstest"
)

func TestParseMigrationName(t *testing.T) {
	for _, c := range []struct {
		name string
		want int // 0 means refused
	}{
		{"0001_init.sql", 1},
		{"0042_add_x2.sql", 42},
		{"0000_zero.sql", 0},
		{"1_init.sql", 0},
		{"0001-init.sql", 0},
		{"0001_.sql", 0},
		{"0001_Init.sql", 0},
		{"0001_init.SQL", 0},
		{"00a1_init.sql", 0},
		{"0001_init.sql.bak", 0},
	} {
		got, err := parseMigrationName(c.name)
		if got != c.want || (err == nil) != (c.want != 0) {
			t.Errorf("parseMigrationName(%q) = %d, %v; want %d", c.name, got, err, c.want)
		}
	}
}

func TestEmbeddedMigrationsAreNumberedFromOne(t *testing.T) {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 || ms[0].name != "0001_init.sql" {
		t.Fatalf("migrations = %v", ms)
	}
}

func TestLoadMigrationsRefusesGapsAndDuplicates(t *testing.T) {
	for name, files := range map[string][]string{
		"gap":       {"0001_a.sql", "0003_c.sql"},
		"duplicate": {"0001_a.sql", "0001_b.sql"},
		"bad name":  {"0001_a.sql", "two.sql"},
	} {
		fsys := fstest.MapFS{}
		for _, f := range files {
			fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
		}
		if _, err := loadMigrations(fsys); err == nil {
			t.Errorf("%s: accepted %v", name, files)
		}
	}
}

func TestFailingMigrationLeavesDatabaseUntouched(t *testing.T) {
	dir := t.TempDir()
	// About SQLite's transaction; PostgreSQL's migrations run in one
	// transaction the same way (TestPostgresMigrationsMatchSQLite).
	db := sqliteDB(t, dir)
	ms, err := loadMigrations(fstest.MapFS{
		"migrations/0001_ok.sql":     {Data: []byte("CREATE TABLE t1 (x);")},
		"migrations/0002_broken.sql": {Data: []byte("CREATE TABLE t2 (x); THIS IS NOT SQL;")},
	})
	if err != nil {
		t.Fatal(err)
	}
	err = applyMigrations(context.Background(), db, sqliteDialect, ms, (&clock{}).Now)
	if err == nil || !strings.Contains(err.Error(), "0002_broken.sql") {
		t.Fatalf("applyMigrations = %v, want an error naming the broken file", err)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('t1', 't2', 'schema_migrations')`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d tables survived the failed migration (%v), want 0", n, err)
	}
}

func FuzzParseMigrationName(f *testing.F) {
	f.Add("0001_init.sql")
	f.Add("9999_z.sql")
	f.Add("0001_init.sql.sql")
	f.Fuzz(func(t *testing.T, name string) {
		v, err := parseMigrationName(name)
		if err != nil {
			return
		}
		if v < 1 || v > 9999 || !strings.HasPrefix(name, fmt.Sprintf("%04d_", v)) || !strings.HasSuffix(name, ".sql") {
			t.Fatalf("parseMigrationName(%q) = %d", name, v)
		}
	})
}
