package audit

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migrateLockKey is the pg_advisory_xact_lock key of the migration
// transaction ("wardenmg" in ASCII, less its top bit).
const migrateLockKey = 0x77617264656e6d67

// migration is one numbered schema step.
type migration struct {
	version int
	name    string // file name, e.g. "0001_init.sql"
	sql     string
}

// parseMigrationName reads the version from a file name NNNN_word.sql: four
// digits, an underscore, lowercase letters, digits or underscores.
func parseMigrationName(name string) (int, error) {
	stem, ok := strings.CutSuffix(name, ".sql")
	if !ok || len(stem) < 6 || stem[4] != '_' {
		return 0, fmt.Errorf("audit: migration %q: want NNNN_name.sql", name)
	}
	for _, c := range stem[5:] {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return 0, fmt.Errorf("audit: migration %q: want NNNN_name.sql", name)
		}
	}
	for _, c := range stem[:4] {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("audit: migration %q: want NNNN_name.sql", name)
		}
	}
	v, _ := strconv.Atoi(stem[:4]) // four digits always parse
	if v == 0 {
		return 0, fmt.Errorf("audit: migration %q: numbers start at 0001", name)
	}
	return v, nil
}

// loadMigrations returns the embedded migrations in order, refusing gaps and
// duplicates so that every database walks the same path.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("audit: list migrations: %w", err)
	}
	var ms []migration
	for _, p := range names {
		name := strings.TrimPrefix(p, "migrations/")
		v, err := parseMigrationName(name)
		if err != nil {
			return nil, err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return nil, fmt.Errorf("audit: read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("audit: migration %s: want number %04d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrate applies the embedded migrations that db has not seen, all in one
// transaction: a database is either fully at the new version or untouched.
func migrate(ctx context.Context, db *sql.DB, d *dialect, now func() time.Time) error {
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return err
	}
	if d.postgres {
		if ms, err = pgMigrations(ms); err != nil {
			return err
		}
	}
	return applyMigrations(ctx, db, d, ms, now)
}

func applyMigrations(ctx context.Context, db *sql.DB, d *dialect, ms []migration, now func() time.Time) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, tx.Rollback())
		}
	}()
	if d.postgres {
		// Nodes starting together would race to create the same tables;
		// SQLite's write lock, taken at BEGIN, already serialises them.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, migrateLockKey); err != nil {
			return fmt.Errorf("audit: migrate: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&have); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	if have > len(ms) {
		// A newer Warden wrote this database; running an older one on it
		// could misread or corrupt columns it does not know.
		return fmt.Errorf("audit: database schema version %d is newer than this binary's %d", have, len(ms))
	}
	stamp, err := formatTime(now())
	if err != nil {
		return err
	}
	for _, m := range ms[have:] {
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("audit: migration %s: %w", m.name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.version, m.name, stamp); err != nil {
			return fmt.Errorf("audit: migration %s: %w", m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: migrate: %w", err)
	}
	return nil
}
