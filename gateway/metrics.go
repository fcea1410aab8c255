package gateway

import (
	"time"
)

// observer counts what the gateway does for GET /metrics; *metrics.Metrics
// satisfies it. Each call is a counter increment: nothing here may block a
// session. Options.Metrics nil counts nothing.
type observer interface {
	// SessionEnded is called once per session row, at its end, with the
	// bytes it carried (so the byte path itself counts nothing extra).
	SessionEnded(reason string, bytesIn, bytesOut int64)
	// Refused is called for every refusal, by its audit event type and
	// its kind, whether or not the audit event was suppressed.
	Refused(event, kind string)
	// CredentialSigned is called after every certificate request.
	CredentialSigned(backend string, took time.Duration, err error)
	// RecordingFailed is called once per session whose recording failed.
	RecordingFailed()
}

// noMetrics is the observer of a gateway without metrics.
type noMetrics struct{}

func (noMetrics) SessionEnded(string, int64, int64)             {}
func (noMetrics) Refused(string, string)                        {}
func (noMetrics) CredentialSigned(string, time.Duration, error) {}
func (noMetrics) RecordingFailed()                              {}

// recordingFailed counts the session's recording failure, once however
// many writes failed (both directions may fail before the session ends).
func (r *sessionRecord) recordingFailed() {
	if !r.failureCounted.Swap(true) {
		r.ss.s.opt.Metrics.RecordingFailed()
	}
}

// LiveSessions returns the number of session channels in the live
// registry: admitted, started or not, and not yet ended.
func (s *Server) LiveSessions() int {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	return len(s.live.sessions)
}
