package gateway

import "time"

// FlushPreAuth writes every open window of the pre-authentication report
// now, as shutdown does, so that end-to-end tests need not wait a minute.
func FlushPreAuth(s *Server) { s.flushPreAuth(true) }

// FlushRefusals writes every open window of the refusal report now.
func FlushRefusals(s *Server) { s.flushRefusals(true) }

// SetUserLimits lowers the per-user bounds on connections and session
// channels for a test; 0 keeps a bound as it is.
func SetUserLimits(s *Server, conns, channels int) {
	s.users.mu.Lock()
	defer s.users.mu.Unlock()
	if conns > 0 {
		s.users.max = conns
	}
	if channels > 0 {
		s.users.maxChans = channels
	}
}

// PreAuthHeld returns the number of pre-authentication slots held.
func PreAuthHeld(s *Server) int {
	_, n := s.gate.held()
	return n
}

// OnAdmitted makes every session channel call f once it is authorized and
// before it joins the live registry; OnStarted, once its start request
// passed the recheck and its row is written, before its credential and
// host connection. A test of a reload racing a session's opening reloads
// from them.
func OnAdmitted(o *Options, f func()) { hooksOf(o).admitted = f }

func OnStarted(o *Options, f func(sessionID string)) { hooksOf(o).started = f }

func hooksOf(o *Options) *sessionHooks {
	if o.hooks == nil {
		o.hooks = &sessionHooks{}
	}
	return o.hooks
}

// SetAuditRetry shortens the intervals between retries of held audit
// events (audit_hold.go) for a test: first after a failed append, then
// doubling up to most.
func SetAuditRetry(o *Options, first, most time.Duration) {
	o.auditRetry = &[2]time.Duration{first, most}
}

// AuditPending reports whether audit events are held for the store, or
// their audit.delayed is still to be written.
func AuditPending(s *Server) bool {
	s.held.mu.Lock()
	defer s.held.mu.Unlock()
	return s.held.pending()
}

// AuditHeld returns whether an event of type typ is held for the store.
func AuditHeld(s *Server, typ string) bool {
	s.held.mu.Lock()
	defer s.held.mu.Unlock()
	for _, e := range s.held.held {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// SyncBuffer is the log sink for several goroutines that the package's own
// tests use, lent to the end-to-end tests.
type SyncBuffer = syncBuffer
