package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// Defaults of WebhookOptions.
const (
	defaultMaxAttempts = 5
	defaultQueueSize   = 256
	defaultTimeout     = 10 * time.Second
	maxBackoff         = 30 * time.Second
	// maxDrain bounds how much of a response body is read so the
	// connection can be reused; webhook answers are a few bytes ("ok").
	maxDrain = 64 << 10
)

// WebhookOptions configures a Webhook. The zero value is ready to use.
type WebhookOptions struct {
	// Client sends the requests. Nil means a client with a 10 s timeout
	// that does not follow redirects: a redirected POST turns into a GET
	// and the alert would be lost without an error.
	Client *http.Client
	// Logger receives failed deliveries and dropped events; nil means
	// slog.Default().
	Logger *slog.Logger
	// MaxAttempts bounds the deliveries of one event, the first included;
	// zero or less means 5.
	MaxAttempts int
	// Backoff is the wait before retry number attempt (1 before the second
	// delivery); nil means 1s, 2s, 4s, ... up to 30s.
	Backoff func(attempt int) time.Duration
	// QueueSize is how many events may wait for delivery; zero or less
	// means 256. Notify drops events beyond it.
	QueueSize int
}

// Webhook delivers events as JSON POSTs to one URL. Create it with
// NewWebhook, start one goroutine on Run, and call Close to stop. Notify is
// safe for concurrent use.
type Webhook struct {
	url     string
	client  *http.Client
	log     *slog.Logger
	max     int
	backoff func(int) time.Duration
	queue   chan queued

	mu      sync.RWMutex // guards closed against sends racing Close
	closed  bool
	closing chan struct{} // closed by Close
}

// queued is an encoded event waiting for delivery.
type queued struct {
	typ  string
	body []byte
}

// payload is the JSON body of a POST.
type payload struct {
	Type   string         `json:"type"`
	Text   string         `json:"text"`
	Fields map[string]any `json:"fields"`
}

// NewWebhook returns a Webhook that posts to rawURL. The URL is kept only
// for sending: it is never logged, since it usually carries a token.
func NewWebhook(rawURL string, opt WebhookOptions) *Webhook {
	w := &Webhook{
		url:     rawURL,
		client:  opt.Client,
		log:     opt.Logger,
		max:     opt.MaxAttempts,
		backoff: opt.Backoff,
		closing: make(chan struct{}),
	}
	if w.client == nil {
		w.client = &http.Client{
			Timeout: defaultTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	if w.log == nil {
		w.log = slog.Default()
	}
	if w.max <= 0 {
		w.max = defaultMaxAttempts
	}
	if w.backoff == nil {
		w.backoff = defaultBackoff
	}
	size := opt.QueueSize
	if size <= 0 {
		size = defaultQueueSize
	}
	w.queue = make(chan queued, size)
	return w
}

// defaultBackoff doubles from one second and stays at 30 seconds.
func defaultBackoff(attempt int) time.Duration {
	if attempt < 1 {
		attempt = 1
	}
	if attempt > 6 {
		return maxBackoff
	}
	return min(time.Second<<(attempt-1), maxBackoff)
}

// Notify queues ev for delivery and returns at once. It never blocks: when
// the queue is full, or the Webhook is closed, ev is dropped and logged.
// Fields are encoded now, so the caller may reuse the map. ctx is not used
// for delivery, which outlives the caller's request.
func (w *Webhook) Notify(ctx context.Context, ev Event) {
	fields := ev.Fields
	if fields == nil {
		fields = map[string]any{}
	}
	body, err := json.Marshal(payload{Type: ev.Type, Text: ev.Text, Fields: fields})
	if err != nil {
		w.log.ErrorContext(ctx, "notify: event dropped: cannot encode it", "type", ev.Type, "err", err)
		return
	}
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.log.WarnContext(ctx, "notify: event dropped: webhook closed", "type", ev.Type)
		return
	}
	select {
	case w.queue <- queued{typ: ev.Type, body: body}:
	default:
		w.log.WarnContext(ctx, "notify: event dropped: queue full", "type", ev.Type, "queue", cap(w.queue))
	}
}

// Close stops accepting events. Run then delivers the events already queued
// and returns. Close does not wait for Run; calling it again does nothing.
func (w *Webhook) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.closing)
	}
}

// Run delivers queued events one at a time until Close has been called and
// the queue is empty, or until ctx is done (which also cuts short a delivery
// or backoff in progress). Call it from exactly one goroutine.
func (w *Webhook) Run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-w.queue:
			w.deliver(ctx, q)
		case <-w.closing:
			// No Notify can enqueue once closing is closed, so what is
			// in the queue now is all there will ever be.
			for {
				select {
				case q := <-w.queue:
					w.deliver(ctx, q)
				default:
					return
				}
			}
		}
	}
}

// deliver posts q until it succeeds, fails for good, or runs out of attempts.
func (w *Webhook) deliver(ctx context.Context, q queued) {
	for attempt := 1; ; attempt++ {
		retry, err := w.post(ctx, q.body)
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			w.log.Warn("notify: event dropped: shutting down", "type", q.typ, "attempts", attempt)
			return
		}
		if !retry || attempt >= w.max {
			w.log.Error("notify: webhook delivery failed; giving up", "type", q.typ, "attempts", attempt, "err", err)
			return
		}
		w.log.Debug("notify: webhook delivery failed; will retry", "type", q.typ, "attempt", attempt, "err", err)
		t := time.NewTimer(w.backoff(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			w.log.Warn("notify: event dropped: shutting down", "type", q.typ, "attempts", attempt)
			return
		case <-t.C:
		}
	}
}

// post sends body once. retry reports whether another attempt may succeed:
// network errors, 429 and 5xx are worth retrying, other answers are not.
func (w *Webhook) post(ctx context.Context, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		// The parse error quotes the URL; say only that it is bad.
		return false, errors.New("notify: invalid webhook URL")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "warden")
	resp, err := w.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("notify: post: %w", withoutURL(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		return false, nil
	case code == http.StatusTooManyRequests || code >= 500:
		return true, fmt.Errorf("notify: webhook answered %s", resp.Status)
	default:
		return false, fmt.Errorf("notify: webhook answered %s", resp.Status)
	}
}

// withoutURL strips the *url.Error wrapper that net/http puts around every
// transport error, because its message quotes the full URL, token included.
func withoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
