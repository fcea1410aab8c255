package gateway

import (
	"crypto/sha256"
	"encoding/binary"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gw/warden/audit"
)

// Bounds of the pre-authentication report. Every audit row is permanent and
// chained, so what a stranger can make the gateway write must not grow with
// what the stranger sends: at most one auth.failed event per source per
// window, and at most reportMaxSources+1 sources per window (the rest are
// counted together under "*"), each of bounded size.
const (
	reportWindow     = time.Minute
	reportMaxSources = 256
	reportMaxUsers   = 8  // distinct user names kept per source
	reportUserLen    = 64 // bytes kept of each
	reportMaxKeys    = 64 // distinct rejected keys counted per source
	reportOther      = "*"
)

// preauthReport aggregates what happened before authentication (rejected
// keys, connections dropped by the limits, grace times that ran out) into
// one auth.failed event per source per window. A source's window opens at
// its first noteworthy event; flush emits the windows that have run.
//
// Concurrency: one mutex guards the records; the clock is injected.
type preauthReport struct {
	now func() time.Time
	// refused counts each refusal in the metrics, by its cause; set by
	// New, nil in tests of the report alone.
	refused func(reason string)

	mu    sync.Mutex
	bySrc map[string]*preauthRecord
}

// preauthRecord is one source's window.
type preauthRecord struct {
	since       time.Time
	attempts    int // authentication requests refused (the "none" probe aside)
	connections int // closed unauthenticated by the client or a failed handshake
	timedOut    int // of which closed by login_grace_time
	dropped     map[string]int
	evicted     int // closed to make room for a source holding fewer
	users       []string
	usersMore   int // attempts that named a user not in users (which is full)
	keys        []uint64
	keysCapped  bool
}

func newPreauthReport(now func() time.Time) *preauthReport {
	return &preauthReport{now: now, bySrc: map[string]*preauthRecord{}}
}

// record returns src's open window, opening it if need be. Past
// reportMaxSources, new sources share the "*" record. Called with r.mu held.
func (r *preauthReport) record(src string) *preauthRecord {
	if rec := r.bySrc[src]; rec != nil {
		return rec
	}
	key := src
	if len(r.bySrc) >= reportMaxSources {
		key = reportOther
		if rec := r.bySrc[key]; rec != nil {
			return rec
		}
	}
	rec := &preauthRecord{since: r.now(), dropped: map[string]int{}}
	r.bySrc[key] = rec
	return rec
}

// failed counts a refused authentication request and the user name it
// named.
func (r *preauthReport) failed(src, user string) {
	r.count("auth_rejected")
	user = printable(user, reportUserLen)
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(src)
	rec.attempts++
	for _, u := range rec.users {
		if u == user {
			return
		}
	}
	if len(rec.users) < reportMaxUsers {
		rec.users = append(rec.users, user)
	} else {
		rec.usersMore++
	}
}

// rejectedKey counts a public key that names no user. Keys are kept as 64
// bits of their SHA-256, enough to count distinct keys.
func (r *preauthReport) rejectedKey(src string, marshalled []byte) {
	sum := sha256.Sum256(marshalled)
	k := binary.BigEndian.Uint64(sum[:8])
	r.mu.Lock()
	defer r.mu.Unlock()
	rec := r.record(src)
	for _, x := range rec.keys {
		if x == k {
			return
		}
	}
	if len(rec.keys) < reportMaxKeys {
		rec.keys = append(rec.keys, k)
	} else {
		rec.keysCapped = true
	}
}

// ended counts a connection that closed without authenticating. Alone it is
// not worth an event (port scanners, load-balancer probes): it is counted
// only into a window something else opened.
func (r *preauthReport) ended(src string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.bySrc[src]; rec != nil {
		rec.connections++
	}
}

func (r *preauthReport) timedOut(src string) {
	r.count("login_grace_time")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(src).timedOut++
}

func (r *preauthReport) dropped(src, reason string) {
	if reason == dropPerSource {
		r.count("max_startups_per_source")
	} else {
		r.count("max_startups")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(src).dropped[reason]++
}

func (r *preauthReport) evicted(src string) {
	r.count("evicted")
	r.mu.Lock()
	defer r.mu.Unlock()
	r.record(src).evicted++
}

func (r *preauthReport) count(reason string) {
	if r.refused != nil {
		r.refused(reason)
	}
}

// flush returns the events of the windows that have run, or of every window
// when all is set (shutdown), oldest window first, and forgets them.
func (r *preauthReport) flush(all bool) []audit.Event {
	now := r.now()
	r.mu.Lock()
	var srcs []string
	recs := map[string]*preauthRecord{}
	for src, rec := range r.bySrc {
		if all || !now.Before(rec.since.Add(reportWindow)) {
			srcs = append(srcs, src)
			recs[src] = rec
			delete(r.bySrc, src)
		}
	}
	r.mu.Unlock()
	sort.Slice(srcs, func(i, j int) bool {
		a, b := recs[srcs[i]], recs[srcs[j]]
		return a.since.Before(b.since) || a.since.Equal(b.since) && srcs[i] < srcs[j]
	})
	events := make([]audit.Event, 0, len(srcs))
	for _, src := range srcs {
		events = append(events, recs[src].event(src, now))
	}
	return events
}

// event renders a window as its auth.failed event.
func (rec *preauthRecord) event(src string, now time.Time) audit.Event {
	var reasons []string
	switch {
	case len(rec.keys) > 0:
		reasons = append(reasons, "unknown public key")
	case rec.attempts > 0: // passwords tried, or a known key not proved
		reasons = append(reasons, "authentication refused")
	}
	if rec.timedOut > 0 {
		reasons = append(reasons, "login grace time exceeded")
	}
	if len(rec.dropped) > 0 || rec.evicted > 0 {
		reasons = append(reasons, "too many unauthenticated connections")
	}
	users := rec.users
	if users == nil {
		users = []string{}
	}
	data := map[string]any{
		"client_addr":         src,
		"since":               rec.since.UTC().Format(time.RFC3339),
		"until":               now.UTC().Format(time.RFC3339),
		"reason":              strings.Join(reasons, "; "),
		"attempts":            rec.attempts,
		"connections":         rec.connections,
		"timed_out":           rec.timedOut,
		"dropped":             rec.dropped,
		"evicted":             rec.evicted,
		"users":               users,
		"other_user_attempts": rec.usersMore,
		"keys":                len(rec.keys),
		"keys_capped":         rec.keysCapped,
	}
	return audit.Event{TS: now, Type: "auth.failed", Subject: src, Data: data}
}

// printable keeps at most n bytes of s and replaces what could act on an
// auditor's terminal or hide what was sent: C0 and C1 controls, DEL,
// bidirectional overrides and other format characters, invalid UTF-8.
func printable(s string, n int) string {
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, size := utf8.DecodeRuneInString(s[i:])
		w = size
		if r == utf8.RuneError && size == 1 || !unicode.IsPrint(r) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > n {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}
