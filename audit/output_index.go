package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/warden-gw/warden/recorder"
)

// The output index (migration 0007) holds the screen text of every ended
// session's recording, for SessionQuery.OutputContains.
//
// It is built off the session's path: EndSession only hands the session ID
// to the indexer (a slice and a wake-up, never a wait), and one goroutine,
// started by Open when Options.OutputIndex is set and stopped by Close,
// reads the cast, extracts its text (ExtractText) and writes it through the
// writer in chunks of at most outputChunk bytes, one write each, so a large
// recording never holds the write lock for long between other sessions'
// writes. The session's session_output_index row is written with its last
// chunk: until then the session counts as not indexed.
//
// At start, and whenever more sessions ended than the queue holds, the
// indexer sweeps for ended sessions with a recording and no index row and
// indexes them (the backfill after a crash or an upgrade). Indexing is
// idempotent: a session with an index row is skipped, and the chunk rows an
// interrupted attempt left are replaced. The FTS rows of such chunks stay in
// the contentless FTS table, which cannot delete them, but no chunk row
// names them any more, so no search finds them.

// outputChunk bounds the text of one chunk, and so the time one indexing
// write holds the writer.
const outputChunk = 256 << 10

// chunkOverlap is how many words of a chunk's end are repeated at the start
// of the next one, so that a phrase of up to maxPhraseWords words across a
// cut is still found.
const chunkOverlap = 2 * maxPhraseWords

// maxQueued bounds the IDs waiting for the indexer; past it the queue is
// dropped and a sweep finds them all.
const maxQueued = 4096

// indexer is the output index's worker.
type indexer struct {
	s    *Store
	log  *slog.Logger
	kick chan struct{} // capacity 1: a pending wake-up
	stop context.CancelFunc
	done chan struct{}

	mu    sync.Mutex
	queue []string
	sweep bool // a sweep for unindexed sessions is due
}

// startIndexer starts the worker; Close stops it.
func (s *Store) startIndexer(log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	x := &indexer{s: s, log: log, kick: make(chan struct{}, 1), stop: cancel, done: make(chan struct{}), sweep: true}
	s.idx = x
	x.wake()
	go x.run(ctx)
}

// stopIndexer stops the worker and waits for it; an indexing write in
// flight completes first.
func (s *Store) stopIndexer() {
	if s.idx != nil {
		s.idx.stop()
		<-s.idx.done
	}
}

// enqueue asks for session id to be indexed. It never blocks.
func (x *indexer) enqueue(id string) {
	x.mu.Lock()
	if len(x.queue) < maxQueued {
		x.queue = append(x.queue, id)
	} else {
		x.queue, x.sweep = nil, true
	}
	x.mu.Unlock()
	x.wake()
}

// sweepSoon asks for a sweep (after CloseOrphans ended sessions).
func (x *indexer) sweepSoon() {
	x.mu.Lock()
	x.sweep = true
	x.mu.Unlock()
	x.wake()
}

func (x *indexer) wake() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

func (x *indexer) run(ctx context.Context) {
	defer close(x.done)
	for {
		select {
		case <-ctx.Done():
			return
		case <-x.kick:
		}
		x.mu.Lock()
		queue, sweep := x.queue, x.sweep
		x.queue, x.sweep = nil, false
		x.mu.Unlock()
		if sweep {
			if _, err := x.s.IndexPending(ctx); err != nil && ctx.Err() == nil {
				x.log.Error("output index: sweep failed", "err", err)
			}
			continue // the sweep covered the queue
		}
		for _, id := range queue {
			if ctx.Err() != nil {
				return
			}
			if err := x.s.IndexSession(ctx, id); err != nil && ctx.Err() == nil {
				x.log.Error("output index: session not indexed", "session", id, "err", err)
			}
		}
	}
}

// IndexPending indexes every ended session that has a recording and no
// index row yet, oldest first, and returns how many it indexed. The
// indexer runs it at start; it is safe to run at any time.
func (s *Store) IndexPending(ctx context.Context) (int, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM sessions s
		WHERE ended_at IS NOT NULL AND recording_path IS NOT NULL
		AND NOT EXISTS (SELECT 1 FROM session_output_index i WHERE i.session_id = s.id)
		ORDER BY ended_at, id`)
	if err != nil {
		return 0, fmt.Errorf("audit: find unindexed sessions: %w", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit: find unindexed sessions: %w", err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("audit: find unindexed sessions: %w", err)
	}
	n := 0
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		if err := s.IndexSession(ctx, id); err != nil {
			if ctx.Err() != nil {
				return n, ctx.Err()
			}
			// One bad session must not keep the others out of the index.
			s.log.Error("output index: session not indexed", "session", id, "err", err)
			continue
		}
		n++
	}
	return n, nil
}

// IndexSession indexes the screen text of ended session id's recording. A
// session still open, one without a recording (recording off, a file
// transfer) or one already indexed is left alone. A recording that is
// missing, unsafe to open or stops parsing part-way is indexed as far as it
// was read, with the reason in session_output_index.error and in the log.
func (s *Store) IndexSession(ctx context.Context, id string) error {
	if err := checkSessionID(id); err != nil {
		return err
	}
	// One session at a time: two attempts on one session would each
	// replace the other's chunks.
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	var rel, ended sql.NullString
	var done bool
	err := s.db.QueryRowContext(ctx, `SELECT recording_path, ended_at,
		EXISTS (SELECT 1 FROM session_output_index WHERE session_id = s.id)
		FROM sessions s WHERE id = ?`, id).Scan(&rel, &ended, &done)
	if errors.Is(err, sql.ErrNoRows) {
		return notFoundf("index session %s: no such session", id)
	}
	if err != nil {
		return fmt.Errorf("audit: index session %s: %w", id, err)
	}
	if done || !ended.Valid || rel.String == "" {
		return nil
	}
	text, truncated, readErr := s.readOutput(ctx, rel.String)
	var note string
	if readErr != nil {
		note = readErr.Error()
		s.log.Warn("output index: recording read only in part", "session", id, "path", rel.String, "err", readErr)
	}
	return s.writeOutput(ctx, id, text, truncated, note)
}

// readOutput extracts the text of the recording rel.
func (s *Store) readOutput(ctx context.Context, rel string) ([]byte, bool, error) {
	f, err := s.recs.Open(ctx, rel)
	switch {
	case errors.Is(err, recorder.ErrUnsafePath):
		return nil, false, errors.New("unsafe recording path: not opened")
	case errors.Is(err, os.ErrNotExist):
		return nil, false, errors.New("recording missing")
	case err != nil:
		return nil, false, fmt.Errorf("cannot open recording: %w", err)
	}
	defer f.Close()
	return ExtractText(f, MaxOutputText)
}

// errIndexed stops indexing a session someone else indexed meanwhile.
var errIndexed = errors.New("already indexed")

// writeOutput writes the chunks of text, one write each, and the index row
// with the last.
func (s *Store) writeOutput(ctx context.Context, id string, text []byte, truncated bool, note string) error {
	chunks := splitChunks(text, outputChunk, chunkOverlap)
	if len(chunks) == 0 {
		chunks = []string{""}
	}
	now, err := formatTime(s.now())
	if err != nil {
		return err
	}
	for i, chunk := range chunks {
		first, last := i == 0, i == len(chunks)-1
		err := s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
			var done bool
			if err := tx.QueryRow(`SELECT EXISTS (SELECT 1 FROM session_output_index WHERE session_id = ?)`, id).Scan(&done); err != nil {
				return fmt.Errorf("audit: index session %s: %w", id, err)
			}
			if done {
				return errIndexed
			}
			if first {
				// Left by an attempt that did not finish.
				if _, err := tx.Exec(`DELETE FROM session_output_chunks WHERE session_id = ?`, id); err != nil {
					return fmt.Errorf("audit: index session %s: %w", id, err)
				}
			}
			if chunk != "" {
				// RETURNING rather than LastInsertId, which pgx lacks.
				var docid int64
				if err := tx.QueryRow(`INSERT INTO session_output_chunks (session_id) VALUES (?) RETURNING docid`, id).Scan(&docid); err != nil {
					return fmt.Errorf("audit: index session %s: %w", id, err)
				}
				if _, err := tx.Exec(`INSERT INTO session_output_fts (docid, text) VALUES (?, ?)`, docid, s.d.outputText(chunk)); err != nil {
					return fmt.Errorf("audit: index session %s: %w", id, err)
				}
			}
			if last {
				if _, err := tx.Exec(`INSERT INTO session_output_index (session_id, indexed_at, bytes, truncated, error)
					VALUES (?, ?, ?, ?, ?)`, id, now, len(text), boolInt(truncated), nullString(note)); err != nil {
					return fmt.Errorf("audit: index session %s: %w", id, err)
				}
			}
			return nil
		})
		if errors.Is(err, errIndexed) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// splitChunks cuts text into pieces of about size bytes at line or space
// boundaries; each piece after the first starts with the last overlap
// words of the one before.
func splitChunks(text []byte, size, overlap int) []string {
	var out []string
	for start := 0; start < len(text); {
		end := min(start+size, len(text))
		if end < len(text) {
			// Back up to a separator, so no word is cut; a piece with
			// none (one enormous "word") is cut where it is.
			if i := strings.LastIndexAny(string(text[start:end]), " \n"); i > 0 {
				end = start + i + 1
			}
		}
		piece := string(text[start:end])
		if len(out) > 0 {
			piece = lastWords(out[len(out)-1], overlap) + " " + piece
		}
		out = append(out, piece)
		start = end
	}
	return out
}

// lastWords returns the last n space- or newline-separated words of s.
func lastWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = f[len(f)-n:]
	}
	return strings.Join(f, " ")
}

// outputPhrase turns what a person typed into the words of a phrase: runs
// of letters and digits, as the unicode61 tokenizer reads them, which
// dialect.outputPattern puts in one pair of double quotes for FTS4 MATCH.
// Every other character (quotes, '*', '-', '^', parentheses, ':') is a
// separator, and OR, AND, NOT and NEAR inside quotes are plain words: what
// the user typed can neither change the shape of the query nor make it
// fail to parse (nor, on PostgreSQL, hold a LIKE wildcard).
func outputPhrase(s string) ([]string, error) {
	if len(s) > maxContainsBytes {
		return nil, invalidf("output search longer than %d bytes", maxContainsBytes)
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
	if len(words) == 0 {
		return nil, invalidf("output search %q has no words (letters or digits) to look for", s)
	}
	if len(words) > maxPhraseWords {
		return nil, invalidf("output search has %d words; at most %d", len(words), maxPhraseWords)
	}
	return words, nil
}

// OutputStatus is how far a session's screen text is in the output index,
// for the session page ("not indexed yet", "cut at 8 MiB", "read in part").
type OutputStatus struct {
	Indexed   bool      // the session has its index row
	IndexedAt time.Time // when it was indexed
	Bytes     int64     // bytes of text indexed
	Truncated bool      // cut at MaxOutputText
	Error     string    // why the recording was read only in part ("" when whole)
}

// OutputIndexStatus returns the output index's state of session id; a
// session without an index row (open, no recording, not yet indexed) gives
// the zero OutputStatus.
func (r *Reader) OutputIndexStatus(ctx context.Context, id string) (OutputStatus, error) {
	var st OutputStatus
	var at string
	var note sql.NullString
	err := r.db.QueryRowContext(ctx, `SELECT indexed_at, bytes, truncated, error FROM session_output_index WHERE session_id = ?`, id).
		Scan(&at, &st.Bytes, &st.Truncated, &note)
	if errors.Is(err, sql.ErrNoRows) {
		return OutputStatus{}, nil
	}
	if err != nil {
		return OutputStatus{}, fmt.Errorf("audit: output index of %s: %w", id, err)
	}
	if st.IndexedAt, err = parseTime(at); err != nil {
		return OutputStatus{}, fmt.Errorf("audit: output index of %s: %w", id, err)
	}
	st.Indexed, st.Error = true, note.String
	return st, nil
}
