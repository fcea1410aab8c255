package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuffer collects log output from the delivery goroutine.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// testLogger logs every level as text into a logBuffer.
func testLogger() (*slog.Logger, *logBuffer) {
	buf := &logBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// hit is one request the test server received.
type hit struct {
	method, contentType string
	body                []byte
}

// server answers requests with the status codes in order (the last one
// repeats) and records what it received.
type server struct {
	*httptest.Server
	mu    sync.Mutex
	hits  []hit
	codes []int
}

func newServer(t *testing.T, codes ...int) *server {
	t.Helper()
	s := &server{codes: codes}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.hits = append(s.hits, hit{r.Method, r.Header.Get("Content-Type"), body})
		code := s.codes[min(len(s.hits), len(s.codes))-1]
		s.mu.Unlock()
		w.WriteHeader(code)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *server) received() []hit {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.hits)
}

// noWait is a Backoff that records the attempts it was asked about and
// never waits, so retries are exact without sleeping.
type noWait struct {
	mu       sync.Mutex
	attempts []int
}

func (n *noWait) Backoff(attempt int) time.Duration {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.attempts = append(n.attempts, attempt)
	return 0
}

// drain closes w and runs it until the queue is delivered.
func drain(w *Webhook) {
	w.Close()
	w.Run(context.Background())
}

func TestWebhookRetriesUntilDelivered(t *testing.T) {
	srv := newServer(t, 500, 502, 200)
	log, logs := testLogger()
	var b noWait
	w := NewWebhook(srv.URL+"/hook", WebhookOptions{Client: srv.Client(), Logger: log, Backoff: b.Backoff})
	w.Notify(context.Background(), Event{
		Type:   TypeRequestCreated,
		Text:   "alice requested *prod-root* for 1h",
		Fields: map[string]any{"request_id": 17, "user": "alice", "role": "prod-root"},
	})
	drain(w)

	hits := srv.received()
	if len(hits) != 3 {
		t.Fatalf("server got %d requests, want 3 (two failures, one success)", len(hits))
	}
	if !slices.Equal(b.attempts, []int{1, 2}) {
		t.Errorf("backoff asked for attempts %v, want [1 2]", b.attempts)
	}
	for i, h := range hits {
		if h.method != http.MethodPost || h.contentType != "application/json" {
			t.Errorf("request %d: %s with Content-Type %q", i, h.method, h.contentType)
		}
		if !bytes.Equal(h.body, hits[0].body) {
			t.Errorf("retry %d sent a different body", i)
		}
	}
	var got struct {
		Type   string         `json:"type"`
		Text   string         `json:"text"`
		Fields map[string]any `json:"fields"`
	}
	if err := json.Unmarshal(hits[2].body, &got); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, hits[2].body)
	}
	if got.Type != TypeRequestCreated || got.Text != "alice requested *prod-root* for 1h" {
		t.Errorf("body type/text = %q / %q", got.Type, got.Text)
	}
	if got.Fields["request_id"] != float64(17) || got.Fields["user"] != "alice" || got.Fields["role"] != "prod-root" {
		t.Errorf("fields = %v", got.Fields)
	}
	if strings.Contains(logs.String(), "giving up") {
		t.Errorf("delivered event logged as failed:\n%s", logs)
	}
}

func TestWebhookDeliveryOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		codes    []int
		attempts int // MaxAttempts
		wantHits int
		wantLog  string
	}{
		{"gives up after max attempts", []int{503}, 3, 3, "giving up"},
		{"default max attempts is five", []int{500}, 0, 5, "giving up"},
		{"rate limit is retried", []int{429, 204}, 3, 2, ""},
		{"client error is not retried", []int{400}, 5, 1, "400 Bad Request"},
		{"not found is not retried", []int{404}, 5, 1, "giving up"},
		{"first success sends once", []int{200}, 5, 1, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newServer(t, tc.codes...)
			log, logs := testLogger()
			var b noWait
			w := NewWebhook(srv.URL, WebhookOptions{Client: srv.Client(), Logger: log, MaxAttempts: tc.attempts, Backoff: b.Backoff})
			w.Notify(context.Background(), Event{Type: TypeGrantEnded, Text: "grant 5 expired"})
			drain(w)
			if n := len(srv.received()); n != tc.wantHits {
				t.Errorf("server got %d requests, want %d", n, tc.wantHits)
			}
			out := logs.String()
			if tc.wantLog == "" && strings.Contains(out, "giving up") {
				t.Errorf("unexpected failure log:\n%s", out)
			}
			if tc.wantLog != "" && !strings.Contains(out, tc.wantLog) {
				t.Errorf("log lacks %q:\n%s", tc.wantLog, out)
			}
		})
	}
}

func TestWebhookSendsEmptyFieldsObject(t *testing.T) {
	srv := newServer(t, 200)
	w := NewWebhook(srv.URL, WebhookOptions{Client: srv.Client()})
	w.Notify(context.Background(), Event{Type: "x", Text: "hello"})
	drain(w)
	hits := srv.received()
	if len(hits) != 1 || string(hits[0].body) != `{"type":"x","text":"hello","fields":{}}` {
		t.Fatalf("hits = %q", hits)
	}
}

func TestNotifyNeverBlocks(t *testing.T) {
	t.Run("hung server", func(t *testing.T) {
		release := make(chan struct{})
		var once sync.Once
		hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer hung.Close()
		defer once.Do(func() { close(release) })

		log, logs := testLogger()
		w := NewWebhook(hung.URL, WebhookOptions{Client: hung.Client(), Logger: log, QueueSize: 2})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		// However the delivery goroutine is placed, no more than the queue
		// plus one in-flight event fit; the rest must be dropped, not wait.
		for i := 0; i < 50; i++ {
			w.Notify(context.Background(), Event{Type: TypeRequestCreated, Text: "x"})
		}
		if !strings.Contains(logs.String(), "queue full") {
			t.Errorf("dropped events not logged:\n%s", logs)
		}
		cancel() // cuts the hung POST short
		<-done
	})
	t.Run("no delivery goroutine", func(t *testing.T) {
		log, logs := testLogger()
		w := NewWebhook("http://127.0.0.1:1/never", WebhookOptions{Logger: log, QueueSize: 1})
		for i := 0; i < 10; i++ {
			w.Notify(context.Background(), Event{Type: TypeGrantExpiring})
		}
		if n := strings.Count(logs.String(), "queue full"); n != 9 {
			t.Errorf("%d drops logged, want 9:\n%s", n, logs)
		}
	})
}

func TestWebhookNeverLogsURL(t *testing.T) {
	const token = "T000/B000/XXXXsecretXXXX"
	failing := newServer(t, 500)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // connection refused: net/http wraps that in a *url.Error
	for name, base := range map[string]string{"server error": failing.URL, "transport error": dead.URL, "malformed": "http://[::1"} {
		t.Run(name, func(t *testing.T) {
			log, logs := testLogger()
			var b noWait
			w := NewWebhook(base+"/services/"+token+"?token="+token, WebhookOptions{Logger: log, MaxAttempts: 2, Backoff: b.Backoff})
			w.Notify(context.Background(), Event{Type: TypeRotationResult, Text: "rotation failed"})
			drain(w)
			out := logs.String()
			if !strings.Contains(out, "giving up") {
				t.Fatalf("failure not logged:\n%s", out)
			}
			if strings.Contains(out, "secret") || strings.Contains(out, "/services/") {
				t.Errorf("log reveals the webhook URL:\n%s", out)
			}
		})
	}
}

func TestWebhookDoesNotFollowRedirects(t *testing.T) {
	target := newServer(t, 200)
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusFound)
	}))
	defer redirect.Close()
	log, logs := testLogger()
	w := NewWebhook(redirect.URL, WebhookOptions{Logger: log})
	w.Notify(context.Background(), Event{Type: TypeGrantEnded})
	drain(w)
	if n := len(target.received()); n != 0 {
		t.Errorf("redirect target got %d requests", n)
	}
	if !strings.Contains(logs.String(), "302 Found") {
		t.Errorf("redirect not reported:\n%s", logs)
	}
}

func TestNotifyDropsWhatCannotBeSent(t *testing.T) {
	srv := newServer(t, 200)
	log, logs := testLogger()
	w := NewWebhook(srv.URL, WebhookOptions{Client: srv.Client(), Logger: log})
	w.Notify(context.Background(), Event{Type: "bad", Fields: map[string]any{"c": make(chan int)}})
	w.Close()
	w.Notify(context.Background(), Event{Type: "late"})
	w.Close() // a second Close is harmless
	w.Run(context.Background())
	if n := len(srv.received()); n != 0 {
		t.Errorf("server got %d requests, want none", n)
	}
	out := logs.String()
	if !strings.Contains(out, "cannot encode") || !strings.Contains(out, "webhook closed") {
		t.Errorf("drops not logged:\n%s", out)
	}
}

func TestWebhookDeliversInOrder(t *testing.T) {
	srv := newServer(t, 200)
	w := NewWebhook(srv.URL, WebhookOptions{Client: srv.Client()})
	for _, typ := range []string{"a", "b", "c"} {
		w.Notify(context.Background(), Event{Type: typ})
	}
	drain(w)
	var got []string
	for _, h := range srv.received() {
		var p payload
		if err := json.Unmarshal(h.body, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p.Type)
	}
	if !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("order %v", got)
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := map[int]time.Duration{
		0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second,
		5: 16 * time.Second, 6: 30 * time.Second, 7: 30 * time.Second, 1000: 30 * time.Second,
	}
	for attempt, d := range want {
		if got := defaultBackoff(attempt); got != d {
			t.Errorf("defaultBackoff(%d) = %s, want %s", attempt, got, d)
		}
	}
}
