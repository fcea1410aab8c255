package gateway

import (
	"context"
	"fmt"
	"io"
	"time"
)

// drainSettle bounds how long Drain waits, after it ended the sessions
// left at the end of the grace, for them to tell their clients and write
// their rows before the caller closes the connections.
const drainSettle = 10 * time.Second

// Drain stops the gateway gracefully, for SIGTERM: it stops accepting
// connections and refuses new channels on open ones, tells every live
// session "warden: gateway restarting", gives them up to grace to end by
// themselves, and then ends those left, each with its row closed as
// "shutdown" and the line "warden: gateway restarting; session closed". A
// channel admitted but not yet started is ended at once: it has nothing to
// finish. Drain returns when no session is live (or drainSettle after the
// grace); the caller then cancels Serve's context, which closes the
// connections and waits for the last rows.
func (s *Server) Drain(grace time.Duration) {
	s.draining.Store(true)
	// Shutdown closes the listeners at once and then waits for every
	// connection to close; it runs until Drain is done, and Serve's own
	// end closes what is left.
	sctx, stopShutdown := context.WithCancel(context.Background())
	defer stopShutdown()
	go func() { _ = s.srv.Shutdown(sctx) }()

	notice := fmt.Sprintf("warden: gateway restarting; this session will be closed within %s", shortDuration(grace))
	for _, ss := range s.live.snapshot() {
		if ss.hasStarted() {
			ss.tell(notice)
		} else {
			ss.cancel(errShutdown)
		}
	}
	if !s.live.waitEmpty(grace) {
		s.live.cancelAll(errShutdown)
		s.live.waitEmpty(drainSettle)
	}
}

// hasStarted reports whether the session's start request was admitted.
func (ss *session) hasStarted() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return !ss.startedAt.IsZero()
}

// tell writes one line on the client's stderr without ending the session.
// Only for a started session: its pty was fixed before startedAt was set
// under ss.mu (hasStarted), so reading it here is safe.
func (ss *session) tell(msg string) {
	nl := "\n"
	if ss.pty != nil {
		nl = "\r\n"
	}
	_, _ = io.WriteString(ss.ch.Stderr(), nl+msg+nl)
}
