// Package notify tells people what Warden did: it delivers alerts such as a
// new elevation request, a decision, a grant about to expire or a break-glass
// login to a chat webhook (notify.webhook_url in warden.yaml).
//
// An Event carries a Slack-compatible Text line for humans and structured
// Fields for machines. A Webhook POSTs each event as one JSON object,
//
//	{"type": "request.created", "text": "...", "fields": {...}}
//
// from a single background goroutine (Run), retrying network errors, 429 and
// 5xx answers with backoff and giving up, with a log line, after MaxAttempts.
//
// Notifications are best effort by design. Notify never blocks its caller: it
// only puts the event on a bounded queue, and drops it (with a log line) when
// the queue is full. A slow or dead webhook must never delay an approval or
// keep a grant from ending; the audit log, not the chat channel, is the
// record of what happened.
//
// Webhook URLs usually embed a bearer token (Slack's do), so the URL is never
// logged, not even inside a transport error.
package notify
