package exceptions

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// t0 is "now" for the register under test.
var t0 = time.Date(2026, 11, 15, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

func newClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.Set(t)
	return c
}
func (c *fakeClock) Now() time.Time  { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

// newRegister opens a real store in a temporary data directory.
func newRegister(t *testing.T) (*Register, *fakeClock) {
	t.Helper()
	clk := newClock(t0)
	st, err := audit.Open(context.Background(), t.TempDir(), audit.Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &Register{Store: st, DB: st.DB(), Now: clk.Now}, clk
}

func sample() Exception {
	return Exception{Tenant: "acme", Owner: "alice", Reason: "legacy backup agent needs root ssh",
		Controls: "source IP allow-list; weekly log review", ExpiresAt: t0.Add(30 * 24 * time.Hour), CreatedBy: "carol"}
}

func mustAdd(t *testing.T, r *Register, e Exception) Exception {
	t.Helper()
	got, err := r.Add(context.Background(), e)
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	return got
}

func events(t *testing.T, r *Register) []audit.Event {
	t.Helper()
	evs, err := r.Store.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAddStoresEntryWithItsAuditEvent(t *testing.T) {
	r, _ := newRegister(t)
	got := mustAdd(t, r, sample())
	if got.ID != 1 || got.Tenant != "acme" || got.Owner != "alice" || got.CreatedBy != "carol" ||
		!got.CreatedAt.Equal(t0) || !got.ExpiresAt.Equal(sample().ExpiresAt) || got.Closed() || got.Expired {
		t.Fatalf("Add = %+v", got)
	}
	again, err := r.Get(context.Background(), got.ID)
	if err != nil || again != got {
		t.Fatalf("Get = %+v, %v; want %+v", again, err, got)
	}
	evs := events(t, r)
	if len(evs) != 1 || evs[0].Type != EventAdded || evs[0].Actor != "carol" || evs[0].Subject != "1" ||
		evs[0].Data["owner"] != "alice" || evs[0].Data["controls"] != sample().Controls {
		t.Fatalf("events = %+v", evs)
	}
}

func TestAddRefusesInvalidEntriesAndWritesNothing(t *testing.T) {
	for name, mutate := range map[string]func(*Exception){
		"tenant with slash":       func(e *Exception) { e.Tenant = "../acme" },
		"empty owner":             func(e *Exception) { e.Owner = "" },
		"owner with at":           func(e *Exception) { e.Owner = "alice@evil" },
		"empty created_by":        func(e *Exception) { e.CreatedBy = "" },
		"blank reason":            func(e *Exception) { e.Reason = "   " },
		"reason with newline":     func(e *Exception) { e.Reason = "ok\nFAKE LINE" },
		"reason with escape":      func(e *Exception) { e.Reason = "ok \x1b[2J" },
		"reason with RLO":         func(e *Exception) { e.Reason = "ok \u202e gnp.exe" },
		"reason not utf-8":        func(e *Exception) { e.Reason = "ok \xff" },
		"reason too long":         func(e *Exception) { e.Reason = strings.Repeat("é", MaxReason+1) },
		"controls too long":       func(e *Exception) { e.Controls = strings.Repeat("x", MaxControls+1) },
		"empty controls":          func(e *Exception) { e.Controls = "" },
		"expiry in the past":      func(e *Exception) { e.ExpiresAt = t0.Add(-time.Hour) },
		"expiry exactly now":      func(e *Exception) { e.ExpiresAt = t0 },
		"expiry beyond max term":  func(e *Exception) { e.ExpiresAt = t0.Add(MaxTerm + time.Hour) },
		"expiry the zero time":    func(e *Exception) { e.ExpiresAt = time.Time{} },
		"tenant with upper first": func(e *Exception) { e.Tenant = "Acme" },
	} {
		t.Run(name, func(t *testing.T) {
			r, _ := newRegister(t)
			e := sample()
			mutate(&e)
			_, err := r.Add(context.Background(), e)
			if !errors.Is(err, ErrInvalid) || !strings.HasPrefix(err.Error(), "exceptions: ") {
				t.Fatalf("Add = %v, want an exceptions: error matching ErrInvalid", err)
			}
			if list, _ := r.List(context.Background(), Filter{IncludeClosed: true}); len(list) != 0 {
				t.Fatalf("refused entry was stored: %+v", list)
			}
			if evs := events(t, r); len(evs) != 0 {
				t.Fatalf("refused entry left events: %+v", evs)
			}
		})
	}
}

func TestAddAcceptsLongestTermAndLongestText(t *testing.T) {
	r, _ := newRegister(t)
	e := sample()
	e.ExpiresAt = t0.Add(MaxTerm)
	e.Reason = strings.Repeat("é", MaxReason)
	e.Controls = strings.Repeat("c", MaxControls)
	if _, err := r.Add(context.Background(), e); err != nil {
		t.Fatalf("Add at the limits: %v", err)
	}
}

func TestListFlagsExpiredEntriesAndFilters(t *testing.T) {
	r, clk := newRegister(t)
	ctx := context.Background()
	soon, later := sample(), sample()
	soon.ExpiresAt = t0.Add(24 * time.Hour)
	later.Owner, later.ExpiresAt = "bob", t0.Add(72*time.Hour)
	other := sample()
	other.Tenant = "beta"
	other.ExpiresAt = t0.Add(24 * time.Hour)
	a, b, c := mustAdd(t, r, soon), mustAdd(t, r, later), mustAdd(t, r, other)
	closedOne := mustAdd(t, r, soon)
	if _, err := r.Close(ctx, closedOne.ID, "carol", "agent replaced"); err != nil {
		t.Fatal(err)
	}
	clk.Set(t0.Add(48 * time.Hour)) // a, c and closedOne's expiry have passed

	ids := func(list []Exception) (out []int64) {
		for _, e := range list {
			out = append(out, e.ID)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		f    Filter
		want []int64
	}{
		{"default lists open entries, expired ones included", Filter{}, []int64{a.ID, b.ID, c.ID}},
		{"expired only", Filter{ExpiredOnly: true}, []int64{a.ID, c.ID}},
		{"expired only ignores closed ones", Filter{ExpiredOnly: true, IncludeClosed: true}, []int64{a.ID, c.ID}},
		{"include closed", Filter{IncludeClosed: true}, []int64{a.ID, b.ID, c.ID, closedOne.ID}},
		{"one tenant", Filter{Tenant: "beta"}, []int64{c.ID}},
		{"one owner", Filter{Owner: "bob"}, []int64{b.ID}},
		{"judged at an earlier time", Filter{ExpiredOnly: true, Now: t0}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			list, err := r.List(ctx, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); !equalIDs(got, tc.want) {
				t.Fatalf("ids = %v, want %v", got, tc.want)
			}
			for _, e := range list {
				at := tc.f.Now
				if at.IsZero() {
					at = clk.Now()
				}
				if e.Expired != (!e.Closed() && e.ExpiresAt.Before(at)) {
					t.Fatalf("entry %d Expired = %v at %v", e.ID, e.Expired, at)
				}
			}
		})
	}
}

func equalIDs(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestEntryExpiringNowIsStillValid(t *testing.T) {
	e := sample()
	if e.ExpiredAt(e.ExpiresAt) || !e.ExpiredAt(e.ExpiresAt.Add(time.Microsecond)) {
		t.Fatal("expiry boundary: want valid at ExpiresAt and expired just after")
	}
	e.ClosedAt = t0
	if e.ExpiredAt(e.ExpiresAt.Add(time.Hour)) {
		t.Fatal("a closed entry is never expired")
	}
}

func TestCloseRecordsWhoWhenWhyAndAnEvent(t *testing.T) {
	r, clk := newRegister(t)
	e := mustAdd(t, r, sample())
	clk.Set(e.ExpiresAt.Add(time.Hour)) // closing an expired entry is how it is resolved
	got, err := r.Close(context.Background(), e.ID, "dave", "root login removed")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ClosedAt.Equal(clk.Now()) || got.ClosedBy != "dave" || got.CloseNote != "root login removed" ||
		got.Expired || got.Status() != StatusClosed {
		t.Fatalf("Close = %+v", got)
	}
	evs := events(t, r)
	last := evs[len(evs)-1]
	if last.Type != EventClosed || last.Actor != "dave" || last.Subject != "1" || last.Data["was_expired"] != true {
		t.Fatalf("close event = %+v", last)
	}
}

func TestCloseRefusals(t *testing.T) {
	r, _ := newRegister(t)
	ctx := context.Background()
	e := mustAdd(t, r, sample())
	if _, err := r.Close(ctx, e.ID, "dave", "done"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		id       int64
		by, note string
		want     error
	}{
		{"second close", e.ID, "dave", "again", ErrAlreadyClosed},
		{"unknown ID", 99, "dave", "x", ErrNotFound},
		{"zero ID", 0, "dave", "x", ErrInvalid},
		{"empty note", e.ID, "dave", "", ErrInvalid},
		{"note with control", e.ID, "dave", "a\rb", ErrInvalid},
		{"note too long", e.ID, "dave", strings.Repeat("n", MaxNote+1), ErrInvalid},
		{"bad closer name", e.ID, "Dave Smith", "x", ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(events(t, r))
			if _, err := r.Close(ctx, tc.id, tc.by, tc.note); !errors.Is(err, tc.want) {
				t.Fatalf("Close = %v, want %v", err, tc.want)
			}
			if after := len(events(t, r)); after != before {
				t.Fatalf("refused close appended %d events", after-before)
			}
		})
	}
	got, _ := r.Get(ctx, e.ID)
	if got.CloseNote != "done" {
		t.Fatalf("the first closure was overwritten: %+v", got)
	}
}

func TestConcurrentClosesCloseOnce(t *testing.T) {
	r, _ := newRegister(t)
	e := mustAdd(t, r, sample())
	var wg sync.WaitGroup
	var ok, refused atomic.Int32
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := r.Close(context.Background(), e.ID, "dave", "done")
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, ErrAlreadyClosed):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || refused.Load() != 7 {
		t.Fatalf("closes: %d succeeded, %d refused; want 1 and 7", ok.Load(), refused.Load())
	}
}

func TestReadOnlyRegisterRefusesWrites(t *testing.T) {
	w, _ := newRegister(t)
	r := &Register{DB: w.DB, Now: w.Now}
	if _, err := r.Add(context.Background(), sample()); err == nil {
		t.Fatal("Add on a read-only register succeeded")
	}
	if _, err := r.Close(context.Background(), 1, "dave", "x"); err == nil {
		t.Fatal("Close on a read-only register succeeded")
	}
}

func TestAddTxRollsBackWithTheCallersTransaction(t *testing.T) {
	r, _ := newRegister(t)
	boom := errors.New("caller failed later")
	err := r.Store.Update(context.Background(), func(tx *audit.Tx) error {
		if _, err := r.AddTx(tx, sample()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v", err)
	}
	if list, _ := r.List(context.Background(), Filter{IncludeClosed: true}); len(list) != 0 {
		t.Fatalf("entry survived the rollback: %+v", list)
	}
	if evs := events(t, r); len(evs) != 0 {
		t.Fatalf("event survived the rollback: %+v", evs)
	}
}

func TestJSONFormFlagsExpiry(t *testing.T) {
	e := sample()
	e.ID, e.CreatedAt, e.Expired = 7, t0, true
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["expired"] != true || m["status"] != "expired" || m["id"] != 7.0 || m["expires_at"] != "2026-12-15T12:00:00Z" {
		t.Fatalf("json = %s", b)
	}
	if _, ok := m["closed_at"]; ok {
		t.Fatalf("open entry has closed_at: %s", b)
	}
}
