package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

const migrateSynopsis = "migrate --to postgres --dsn-file FILE [-c warden.yaml | --data DIR]"

// runMigrate copies the SQLite store into PostgreSQL (audit.CopyToPostgres)
// and, when the policy's recordings.store is s3, the local recordings into
// the bucket. Both halves are idempotent: a second run copies nothing.
func runMigrate(e *env, args []string) error {
	fs := newFlags(e, "migrate", migrateSynopsis)
	to := fs.String("to", "", "the target store: postgres")
	dsnFile := fs.String("dsn-file", "", "file holding the PostgreSQL connection string (mode 0600 or 0640)")
	data := fs.String("data", "", "data directory of the SQLite store (default: data_dir of -c or ./warden.yaml, else ./data)")
	cfgPath := fs.String("c", "", "policy naming the data directory and, with recordings.store s3, the bucket to upload recordings to")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("migrate takes no arguments (got %q)", pos[0])
	}
	if *to != audit.DriverPostgres {
		return usageError("migrate: --to postgres is required (the only target)")
	}
	if *dsnFile == "" {
		return usageError("migrate: --dsn-file FILE is required")
	}
	dsn, err := readDSNFile("--dsn-file", *dsnFile)
	if err != nil {
		return usageError("migrate: %v", err)
	}
	var cfg *policy.Config
	dir := *data
	if *cfgPath != "" || dir == "" {
		if cfg, dir, err = policyAndData(*cfgPath, *data, false); err != nil {
			return err
		}
	}
	if cfg != nil && cfg.Store.Driver == policy.StorePostgres {
		// The policy already points at PostgreSQL: its data directory has
		// no SQLite store to copy, or not the one being served.
		return usageError("migrate: the policy's store.driver is postgres; migrate reads the SQLite store (store.driver sqlite, or --data DIR alone)")
	}
	ctx := context.Background()
	src, err := audit.OpenReader(ctx, dir, audit.Backend{Driver: audit.DriverSQLite})
	if err != nil {
		return err
	}
	defer src.Close()

	opt := audit.Options{}
	if cfg != nil && cfg.Recordings.Store == policy.StoreS3 {
		s3, err := recstore.OpenS3(cfg.Recordings.S3, dir)
		if err != nil {
			return err
		}
		up, had, err := importRecordings(ctx, src, s3)
		if err != nil {
			return fmt.Errorf("migrate: recordings (%d uploaded before the failure): %w", up, err)
		}
		fmt.Fprintf(e.stdout, "recordings: %d uploaded to s3, %d already there\n", up, had)
		opt.Recordings = s3
	}

	rep, err := audit.CopyToPostgres(ctx, src, dir, audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}, opt)
	if err != nil {
		return err
	}
	copied, existed := 0, 0
	for _, t := range rep.Tables {
		copied += t.Copied
		existed += t.Existed
		if t.Copied > 0 || t.Existed > 0 {
			fmt.Fprintf(e.stdout, "%-20s %d copied, %d already there\n", t.Table, t.Copied, t.Existed)
		}
	}
	fmt.Fprintf(e.stdout, "copied %d rows (%d already there); output index: %d sessions indexed\n", copied, existed, rep.Indexed)
	v := rep.Verify
	if len(v.Problems) > 0 {
		return fmt.Errorf("migrate: audit verify on PostgreSQL failed at %s (%d problem(s) in all)", q(v.Problems[0].String()), len(v.Problems))
	}
	fmt.Fprintf(e.stdout, "audit verify on postgres: ok: %d audit events chained; %d ended sessions, their %d command rows and %d recordings match the chain\n",
		v.Events, v.Sessions, v.Commands, v.Recordings)
	if v.Head != "" {
		fmt.Fprintf(e.stdout, "head: seq %d %s\n", v.HeadSeq, v.Head)
	}
	return nil
}

// importRecordings uploads every sealed local recording the bucket lacks.
func importRecordings(ctx context.Context, src *audit.Reader, s3 *recstore.S3) (up, had int, err error) {
	rows, err := src.DB().QueryContext(ctx, `SELECT id, recording_path, recording_sha256 FROM sessions
		WHERE recording_path IS NOT NULL AND recording_path <> '' ORDER BY started_at, id`)
	if err != nil {
		return 0, 0, err
	}
	type rec struct{ id, rel, sha string }
	var recs []rec
	for rows.Next() {
		var r rec
		var sha *string
		if err := rows.Scan(&r.id, &r.rel, &sha); err != nil {
			rows.Close()
			return 0, 0, err
		}
		if sha == nil || *sha == "" {
			// Not sealed: a live session (or one a crash left open, which
			// serve seals at its next start); its spool is uploaded then.
			continue
		}
		r.sha = *sha
		recs = append(recs, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, 0, err
	}
	for _, r := range recs {
		stored, err := s3.Import(ctx, r.rel, r.sha)
		if err != nil {
			if errors.Is(err, recstore.ErrDigestMismatch) {
				return up, had, fmt.Errorf("session %s: %w", q(r.id), err)
			}
			return up, had, fmt.Errorf("session %s recording %s: %w", q(r.id), q(r.rel), err)
		}
		if stored {
			up++
		} else {
			had++
		}
	}
	return up, had, nil
}
