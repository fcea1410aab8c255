package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/promtest"
	"github.com/warden-gw/warden/metrics"
)

func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func scrape(t *testing.T, url, token string) promtest.Families {
	t.Helper()
	f, err := promtest.Scrape(http.DefaultClient, url, token)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// What the gateway reports is exposed under the documented names, with the
// Go and process collectors beside it.
func TestMetricsExposeWhatWasCounted(t *testing.T) {
	live := 3
	m := metrics.New(metrics.Options{Live: func() int { return live }})
	m.SessionEnded("exit", 100, 2000)
	m.SessionEnded("exit", 5, 7)
	m.SessionEnded("killed", 0, 0)
	m.Refused("session.refused", "not authorized")
	m.CredentialSigned("builtin", 2*time.Millisecond, nil)
	m.CredentialSigned("vault", 6*time.Second, errors.New("timeout"))
	m.RecordingFailed()
	url := serve(t, m.Handler(metrics.HandlerOptions{}))

	f := scrape(t, url, "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"warden_sessions_live", nil, 3},
		{"warden_sessions_ended_total", []string{"reason", "exit"}, 2},
		{"warden_sessions_ended_total", []string{"reason", "killed"}, 1},
		{"warden_sessions_ended_total", []string{"reason", "grant_expired"}, 0},
		{"warden_session_bytes_total", []string{"direction", "in"}, 105},
		{"warden_session_bytes_total", []string{"direction", "out"}, 2007},
		{"warden_refusals_total", []string{"event", "session.refused", "reason", "not_authorized"}, 1},
		{"warden_credential_sign_seconds", []string{"backend", "builtin", "result", "ok"}, 1},
		{"warden_credential_sign_seconds", []string{"backend", "vault", "result", "error"}, 1},
		{"warden_recording_errors_total", nil, 1},
	} {
		got, ok := f.Value(c.name, c.labels...)
		if !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := f.Value("go_goroutines"); !ok {
		t.Error("no Go collector (go_goroutines)")
	}
	if _, ok := f.Value("process_open_fds"); !ok {
		t.Error("no process collector (process_open_fds)")
	}
	if _, ok := f.Value("warden_grants_active"); ok {
		t.Error("warden_grants_active without a store")
	}
	live = 0
	if got := scrape(t, url, "").Get("warden_sessions_live"); got != 0 {
		t.Errorf("live after the sessions left: %v", got)
	}
}

// An attacker who chooses what is refused (SSH request and channel types,
// user names, end reasons that do not exist) cannot create series: every
// value outside the known sets is "other".
func TestMetricsLabelsStayBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	for i := range 5000 {
		m.Refused("forward.refused", fmt.Sprintf("evil-%d@attacker", i))
		m.Refused(fmt.Sprintf("made.up.%d", i), "not authorized")
		m.SessionEnded(fmt.Sprintf("reason-%d", i), 1, 1)
		m.CredentialSigned(fmt.Sprintf("backend-%d", i), time.Millisecond, nil)
	}
	m.Refused("forward.refused", strings.Repeat("x", 1<<20))
	m.Refused("request.refused", "pty-req")
	f := scrape(t, serve(t, m.Handler(metrics.HandlerOptions{})), "")
	if n := f.Series("warden_refusals_total"); n != 3 {
		t.Errorf("refusal series: %d, want 3 (forward.refused/other, other/not_authorized, request.refused/pty-req)", n)
	}
	if got := f.Get("warden_refusals_total", "event", "forward.refused", "reason", "other"); got != 5001 {
		t.Errorf("forward.refused other = %v, want 5001", got)
	}
	if got := f.Get("warden_refusals_total", "event", "other", "reason", "not_authorized"); got != 5000 {
		t.Errorf("other events = %v, want 5000", got)
	}
	if got := f.Get("warden_refusals_total", "event", "request.refused", "reason", "pty-req"); got != 1 {
		t.Errorf("a known request type: %v", got)
	}
	if got := f.Get("warden_sessions_ended_total", "reason", "other"); got != 5000 {
		t.Errorf("unknown end reasons: %v, want 5000 under other", got)
	}
	if vs := f.LabelValues("warden_credential_sign_seconds", "backend"); len(vs) != 1 || vs[0] != "other" {
		t.Errorf("backends: %v", vs)
	}
}

// A nil *Metrics counts nothing and does not panic: code and tests without
// metrics need no checks.
func TestNilMetricsCountNothing(t *testing.T) {
	var m *metrics.Metrics
	m.SessionEnded("exit", 1, 1)
	m.Refused("session.refused", "x")
	m.CredentialSigned("builtin", time.Second, nil)
	m.RecordingFailed()
	h := http.NotFoundHandler()
	if got := m.SCIM(h); fmt.Sprint(got) != fmt.Sprint(h) {
		t.Error("nil metrics wrapped the SCIM handler")
	}
}

// The store-backed gauges are read at most once per cache period however
// many scrapes come, concurrently or not; a failed read leaves the series
// out and is counted.
func TestStoreGaugesCached(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	reads := 0
	fail := false
	readCount := func() int { mu.Lock(); defer mu.Unlock(); return reads }
	m := metrics.New(metrics.Options{
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now },
		Counts: func(ctx context.Context) (metrics.Counts, error) {
			mu.Lock()
			defer mu.Unlock()
			reads++
			if fail {
				return metrics.Counts{}, errors.New("database is locked")
			}
			return metrics.Counts{GrantsActive: 2, RequestsPending: reads}, nil
		},
	})
	url := serve(t, m.Handler(metrics.HandlerOptions{}))
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := promtest.Scrape(http.DefaultClient, url, ""); err != nil && !strings.Contains(err.Error(), "status 503") {
				t.Error(err) // 503: more than two scrapes at once
			}
		}()
	}
	wg.Wait()
	// The concurrent scrapes' slots are freed just after their answers:
	// a 503 here means one was still held.
	f, err := promtest.Scrape(http.DefaultClient, url, "")
	for i := 0; err != nil && strings.Contains(err.Error(), "status 503") && i < 100; i++ {
		time.Sleep(10 * time.Millisecond)
		f, err = promtest.Scrape(http.DefaultClient, url, "")
	}
	if err != nil {
		t.Fatal(err)
	}
	if reads := readCount(); reads != 1 || f.Get("warden_grants_active") != 2 || f.Get("warden_requests_pending") != 1 {
		t.Fatalf("reads %d, grants %v, pending %v: want one read", reads, f.Get("warden_grants_active"), f.Get("warden_requests_pending"))
	}
	mu.Lock()
	now = now.Add(5 * time.Second)
	mu.Unlock()
	if f := scrape(t, url, ""); readCount() != 2 || f.Get("warden_requests_pending") != 2 {
		t.Fatalf("after the cache period: reads %d, pending %v", readCount(), f.Get("warden_requests_pending"))
	}
	mu.Lock()
	now, fail = now.Add(5*time.Second), true
	mu.Unlock()
	f = scrape(t, url, "")
	if _, ok := f.Value("warden_grants_active"); ok {
		t.Error("a failed read still shows a value")
	}
	if f.Get("warden_metrics_store_errors_total") != 1 {
		t.Errorf("store errors: %v", f.Get("warden_metrics_store_errors_total"))
	}
}

// With a token, /metrics answers 401 to a request without it or with
// another one (also one that shares a prefix, or differs in length), and
// the right one works. Guesses are audited once per source a minute, and
// the token never reaches the audit chain.
func TestMetricsTokenRequired(t *testing.T) {
	ctx := context.Background()
	st, err := audit.Open(ctx, t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const token = "metrics-token-0123456789abcdef"
	m := metrics.New(metrics.Options{})
	url := serve(t, m.Handler(metrics.HandlerOptions{Token: token, Audit: st}))
	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"wrong token", "Bearer not-the-token-at-all-000000"},
		{"prefix", "Bearer " + token[:len(token)-1]},
		{"longer", "Bearer " + token + "x"},
		{"basic scheme", "Basic " + token},
		{"token without scheme", token},
	} {
		req, _ := http.NewRequest("GET", url, nil)
		if tc.header != "" {
			req.Header.Set("Authorization", tc.header)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: status %d, want 401 with a Bearer challenge", tc.name, resp.StatusCode)
		}
	}
	f := scrape(t, url, token)
	if got := f.Get("warden_metrics_unauthorized_total"); got != 6 {
		t.Errorf("unauthorized counted %v, want 6", got)
	}
	if _, err := promtest.Scrape(http.DefaultClient, url, "wrong-token-000000000000000"); err == nil {
		t.Error("a wrong token was accepted")
	}
	var n int
	var data string
	if err := st.DB().QueryRow(`SELECT count(*), COALESCE(max(data), '') FROM audit_events WHERE type = ?`, metrics.EventUnauthorized).Scan(&n, &data); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d audit events for one source in a minute, want 1", n)
	}
	if strings.Contains(data, token[:8]) || !strings.Contains(data, "missing bearer token") {
		t.Errorf("audit data %s", data)
	}
}

// ReadToken refuses what would make the token no protection, and trims
// the newline editors add.
func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	short, good := filepath.Join(dir, "short"), filepath.Join(dir, "good")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	os.WriteFile(good, []byte("  metrics-token-0123456789\n"), 0o600)
	if _, err := metrics.ReadToken(short); err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Errorf("short token: %v", err)
	}
	if _, err := metrics.ReadToken(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "metrics_token_file") {
		t.Errorf("missing file: %v", err)
	}
	if tok, err := metrics.ReadToken(good); err != nil || tok != "metrics-token-0123456789" {
		t.Errorf("good token: %q %v", tok, err)
	}
}

// SCIM requests are counted by method and code; a method the client makes
// up is "unknown", so it cannot add series.
func TestSCIMRequestsBounded(t *testing.T) {
	m := metrics.New(metrics.Options{})
	h := m.SCIM(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			w.WriteHeader(http.StatusCreated)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	url := serve(t, h)
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("EVIL%d", i), url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := http.Post(url, "application/scim+json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A request is counted when the handler returns, which may be just
	// after the client has its answer.
	murl := serve(t, m.Handler(metrics.HandlerOptions{}))
	f := scrape(t, murl, "")
	for deadline := time.Now().Add(time.Minute); f.Get("warden_scim_requests_total", "method", "post", "code", "201") != 1 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		f = scrape(t, murl, "")
	}
	if got := f.Get("warden_scim_requests_total", "method", "unknown", "code", "401"); got != 50 {
		t.Errorf("made-up methods: %v, want 50 under unknown", got)
	}
	if got := f.Get("warden_scim_requests_total", "method", "post", "code", "201"); got != 1 {
		t.Errorf("post 201: %v", got)
	}
	if n := f.Series("warden_scim_requests_total"); n != 2 {
		t.Errorf("%d SCIM series, want 2", n)
	}
}
