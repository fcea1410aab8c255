package audit

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/warden-gw/warden/recstore"
)

// DBName is the file name of the database inside the data directory.
const DBName = "warden.db"

// busyTimeout is how long a connection waits for a lock held by another
// process (an auditor's sqlite3 shell, a CLI listing) before SQLITE_BUSY. It is
// generous because a write that fails makes the gateway refuse the session.
const busyTimeout = 10 * time.Second

// Options configures a Store. The zero value is ready to use.
type Options struct {
	// Now is the clock for default timestamps; nil means time.Now.
	Now func() time.Time
	// OutputIndex starts the output indexer (output_index.go): the screen
	// text of each session's recording is indexed after the session ends,
	// and sessions that ended unindexed are indexed at start. The gateway
	// sets it; short-lived CLI commands leave it off.
	OutputIndex bool
	// Log receives the indexer's reports; nil means slog.Default().
	Log *slog.Logger
	// Recordings is where the indexer reads ended sessions' recordings;
	// nil means the files under the data directory.
	Recordings recstore.Store
	// Backend is the database; the zero value is SQLite in the data
	// directory (config store.driver and store.dsn_file).
	Backend Backend
	// NodeID is this gateway's node (config node_id): recorded on the
	// sessions it starts, and the only node whose open sessions
	// CloseOrphans ends. "" (CLI commands, single-node tests) means no
	// node: CloseOrphans then ends every open session.
	NodeID string
	// WriteTimeout bounds each transaction of the writer on PostgreSQL
	// (writer.go); 0 means writeTxTimeout. Tests shorten it.
	WriteTimeout time.Duration
}

// Store is the gateway's handle on DATA/warden.db. One goroutine owns the
// only write connection and commits queued writes in batches; the queries
// of the embedded Reader run on a separate read-only pool and, in WAL mode,
// never wait for the writer. A Store is safe for concurrent use.
type Store struct {
	Reader

	now    func() time.Time
	node   string         // Options.NodeID
	dir    string         // the data directory, for recordings (CloseOrphans)
	recs   recstore.Store // where ended sessions' recordings are read (the indexer)
	wdb    *sql.DB        // one connection, used by the writer goroutine only
	ops    chan *op       // queued writes; closed by Close
	mu     sync.RWMutex   // guards closed against sends on a closed ops
	closed bool
	done   chan struct{} // closed when the writer goroutine has exited
	tip    chainTip      // the chain head; owned by the writer goroutine
	// txTimeout bounds a writer transaction on PostgreSQL (commitTx).
	txTimeout time.Duration
	log       *slog.Logger
	idx       *indexer // the output indexer; nil unless Options.OutputIndex
	// indexMu serialises IndexSession (the indexer's and any caller's).
	indexMu sync.Mutex

	closeOnce sync.Once
	closeErr  error
}

// Open opens DATA/warden.db for the gateway, creating the data directory
// (mode 0700) and the database (mode 0600) when missing, applying pending
// migrations, and starting the writer. ctx bounds the opening only.
func Open(ctx context.Context, dataDir string, opt Options) (*Store, error) {
	path, err := dbPath(dataDir)
	if err != nil {
		return nil, err
	}
	b := resolve(dataDir, opt.Backend)
	if err := b.check(); err != nil {
		return nil, err
	}
	if b.postgres() {
		return openPostgresStore(ctx, dataDir, b, opt)
	}
	// The database holds what administrators typed: keep it private to the
	// gateway's user. MkdirAll leaves an existing directory's mode alone.
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("audit: create data directory: %w", err)
	}
	// Create the file ourselves: SQLite would create it 0644, and it gives
	// the -wal and -shm files the mode of the database file.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: create database: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("audit: create database: %w", err)
	}

	wdb, err := sql.Open("sqlite3", dsn(path, url.Values{
		"_journal_mode": {"WAL"},
		"_txlock":       {"immediate"}, // take the write lock at BEGIN: no upgrade deadlocks
		"_foreign_keys": {"1"},
		// FULL syncs the WAL at every commit: a caller told "committed"
		// keeps its audit record through a power cut. Batching pays for it.
		"_synchronous": {"FULL"},
	}))
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}

	return startStore(ctx, dataDir, wdb, sqliteDialect, opt, func() (*sql.DB, error) { return openReadPool(path) })
}

// openPostgresStore opens the store in a PostgreSQL database. The data
// directory holds only the recordings; it is created like SQLite's.
func openPostgresStore(ctx context.Context, dataDir string, b Backend, opt Options) (*Store, error) {
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create data directory: %w", err)
	}
	wdb, err := openPostgres(ctx, b, false)
	if err != nil {
		return nil, err
	}
	return startStore(ctx, dataDir, wdb, postgresDialect, opt, func() (*sql.DB, error) {
		db, err := openPostgres(ctx, b, true)
		if err != nil {
			return nil, err
		}
		db.SetMaxOpenConns(readConns)
		db.SetMaxIdleConns(readConns)
		return db, nil
	})
}

// startStore migrates the database behind wdb (one connection), opens the
// read pool and starts the writer.
func startStore(ctx context.Context, dataDir string, wdb *sql.DB, d *dialect, opt Options, readPool func() (*sql.DB, error)) (*Store, error) {
	wdb.SetMaxOpenConns(1)
	s := &Store{
		now:  opt.Now,
		node: opt.NodeID,
		dir:  dataDir,
		recs: opt.Recordings,
		wdb:  wdb,
		ops:  make(chan *op, queueSize),
		done: make(chan struct{}),

		txTimeout: cmp.Or(opt.WriteTimeout, writeTxTimeout),
	}
	s.d = d
	if s.now == nil {
		s.now = time.Now
	}
	if s.recs == nil {
		s.recs = recstore.Local{Dir: dataDir}
	}
	if s.log = opt.Log; s.log == nil {
		s.log = slog.Default()
	}
	var err error
	if err := migrate(ctx, wdb, d, s.now); err != nil {
		wdb.Close()
		return nil, err
	}
	if s.tip, err = loadTip(ctx, wdb); err != nil {
		wdb.Close()
		return nil, err
	}
	s.Reader.recs = opt.Recordings
	if s.db, err = readPool(); err != nil {
		wdb.Close()
		return nil, err
	}
	go s.run()
	if opt.OutputIndex {
		s.startIndexer(s.log)
	}
	return s, nil
}

// Close stops accepting writes, waits until every write queued before it is
// committed (or has failed and told its caller), stops the writer and closes
// both pools. Calling Close again returns the first result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		// The indexer writes through the writer: it stops first.
		s.stopIndexer()
		s.mu.Lock()
		s.closed = true
		close(s.ops)
		s.mu.Unlock()
		<-s.done
		s.closeErr = errors.Join(s.wdb.Close(), s.db.Close())
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("audit: close: %w", s.closeErr)
		}
	})
	return s.closeErr
}

// dbPath returns the absolute path of the database in dataDir.
func dbPath(dataDir string) (string, error) {
	if dataDir == "" {
		return "", invalidf("empty data directory")
	}
	abs, err := filepath.Abs(filepath.Join(dataDir, DBName))
	if err != nil {
		return "", fmt.Errorf("audit: data directory %s: %w", dataDir, err)
	}
	return abs, nil
}

// dsn builds a file: URI for an absolute path. The path is escaped, so a data
// directory containing '?', '#' or '%' cannot smuggle in URI parameters.
func dsn(path string, params url.Values) string {
	params.Set("_busy_timeout", strconv.FormatInt(busyTimeout.Milliseconds(), 10))
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

// openReadPool opens the read-only pool on an existing database. mode=ro
// makes SQLite itself refuse writes, so nothing handed out by DB() can
// bypass the writer or its hash chain.
func openReadPool(path string) (*sql.DB, error) {
	db, err := sql.Open("sqlite3", dsn(path, url.Values{"mode": {"ro"}}))
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(readConns)
	db.SetMaxIdleConns(readConns)
	return db, nil
}

// readConns bounds the read pool: enough for the CLI, the HTTP console and
// the gateway's own lookups at once.
const readConns = 4
