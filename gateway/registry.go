package gateway

import (
	"encoding/base32"
	"fmt"
	"io"
	"sync"
	"time"
)

// registry holds the live sessions so that a grant's revocation, a kill or
// a shutdown can cancel them through their context, without polling. A
// session is live from the moment its channel is admitted, before it asks
// to start, so that nothing admitted escapes a revocation.
type registry struct {
	mu       sync.Mutex
	sessions map[string]*session
	// removed holds a token after a session left, for waitEmpty.
	removed chan struct{}
}

func newRegistry() *registry {
	return &registry{sessions: map[string]*session{}, removed: make(chan struct{}, 1)}
}

func (r *registry) add(ss *session) {
	r.mu.Lock()
	r.sessions[ss.id] = ss
	r.mu.Unlock()
}

func (r *registry) remove(ss *session) {
	r.mu.Lock()
	delete(r.sessions, ss.id)
	r.mu.Unlock()
	select {
	case r.removed <- struct{}{}:
	default: // a token is already waiting
	}
}

// waitEmpty waits up to d for the last live session to leave and reports
// whether none is left (a drain's wait: woken by each removal, no polling).
func (r *registry) waitEmpty(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		r.mu.Lock()
		n := len(r.sessions)
		r.mu.Unlock()
		if n == 0 {
			return true
		}
		select {
		case <-r.removed:
		case <-timer.C:
			return false
		}
	}
}

// get returns the live session id, or nil.
func (r *registry) get(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

// snapshot returns the live sessions by ID.
func (r *registry) snapshot() map[string]*session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]*session, len(r.sessions))
	for id, ss := range r.sessions {
		out[id] = ss
	}
	return out
}

// ofGrant returns the IDs of the live sessions admitted under grantID.
func (r *registry) ofGrant(grantID int64) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, ss := range r.sessions {
		if ss.grantID == grantID {
			ids = append(ids, id)
		}
	}
	return ids
}

// cancelGrant ends every live session running under grantID and returns
// their IDs.
func (r *registry) cancelGrant(grantID int64, cause error) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []string
	for id, ss := range r.sessions {
		if ss.grantID == grantID {
			ss.cancel(cause)
			ids = append(ids, id)
		}
	}
	return ids
}

// cancelSession ends one live session; it reports whether it was live.
func (r *registry) cancelSession(id string, cause error) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	ss, ok := r.sessions[id]
	if ok {
		ss.cancel(cause)
	}
	return ok
}

func (r *registry) cancelAll(cause error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ss := range r.sessions {
		ss.cancel(cause)
	}
}

// StoreLost ends every live session of this node, which has been cut off
// from the cluster's store for so long that the other nodes are about to
// take it for dead and end its rows as interrupted (serve's heartbeat
// loop calls it). Each client reads "warden: the gateway lost its
// database; session closed". It returns how many sessions it ended.
func (s *Server) StoreLost() int {
	s.live.mu.Lock()
	defer s.live.mu.Unlock()
	for _, ss := range s.live.sessions {
		ss.cancel(errStoreLost)
	}
	return len(s.live.sessions)
}

// RevokeGrant ends the live sessions of a grant that was revoked.
func (s *Server) RevokeGrant(grantID int64) int {
	return len(s.live.cancelGrant(grantID, errGrantRevoked))
}

// Kill ends a live session; it reports whether the session was live.
func (s *Server) Kill(sessionID string) bool { return s.live.cancelSession(sessionID, errKilled) }

// LiveSessionIDs returns the IDs of the sessions live now, in no order
// (console.Deps.LiveIDs: the console's "live only" filter and live pages):
// this node's, and with a cluster bus those the other live nodes hold.
func (s *Server) LiveSessionIDs() []string {
	s.live.mu.Lock()
	ids := make([]string, 0, len(s.live.sessions))
	for id := range s.live.sessions {
		ids = append(ids, id)
	}
	s.live.mu.Unlock()
	return append(ids, s.remoteIDs()...)
}

// sessionIDEncoding is lowercase base32 without padding: letters and
// digits only, so an ID is safe in file names, URLs and shell arguments
// (it can never start with '-').
var sessionIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// newSessionID returns 26 characters from 16 random bytes, never derived
// from user input.
func newSessionID(rand io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("gateway: session id: %w", err)
	}
	return sessionIDEncoding.EncodeToString(b[:]), nil
}
