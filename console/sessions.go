package console

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/warden-gw/warden/audit"
)

// The session pages (CONTRACT §7): the list at /sessions, one session at
// /sessions/ID and its recording at /sessions/ID.cast. Every route asks
// the same question first, visibleSession: may this viewer see this
// session under the policy in force? An unknown ID, a malformed one and
// another tenant's session all get the same 404, so the answer never tells
// one client that another client's session exists.

func (c *Console) mountSessions(m Mux) {
	m.Handle("GET /sessions", c.viewer(c.sessionsList))
	// Go's ServeMux cannot match "{id}.cast" in one segment, so one route
	// takes the segment and splits the suffix itself (sessionFile).
	m.Handle("GET /sessions/{file}", c.viewer(c.sessionFile))
}

// sessionFile serves /sessions/ID (the page) and /sessions/ID.cast (the
// recording).
func (c *Console) sessionFile(w http.ResponseWriter, r *http.Request, v *Viewer) {
	file := r.PathValue("file")
	if id, ok := strings.CutSuffix(file, ".cast"); ok {
		c.sessionCast(w, r, v, id)
		return
	}
	c.sessionPage(w, r, v, file)
}

// maxSessionID bounds an ID in a URL, as audit does for stored ones.
const maxSessionID = 128

// validSessionID accepts what audit accepts for a stored session ID:
// letters, digits, '-' and '_'. Anything else (a dot, a slash, an encoded
// byte) cannot name a session, and is refused before it reaches a query.
func validSessionID(id string) bool {
	if id == "" || len(id) > maxSessionID {
		return false
	}
	for i := 0; i < len(id); i++ {
		b := id[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '-' || b == '_') {
			return false
		}
	}
	return true
}

// errNoSession is visibleSession's one answer for "not for you": unknown,
// malformed and other tenants' IDs alike.
var errNoSession = errors.New("console: no such session")

// visibleSession returns session id if v may see it. Any other outcome is
// errNoSession (the cause is audited, not shown) or a store error.
func (c *Console) visibleSession(ctx context.Context, r *http.Request, v *Viewer, id string) (audit.Session, error) {
	if !validSessionID(id) {
		c.refused(ctx, r, v, "malformed session ID")
		return audit.Session{}, errNoSession
	}
	s, err := c.d.Store.Session(ctx, id)
	if errors.Is(err, audit.ErrNotFound) {
		c.refused(ctx, r, v, "unknown session "+id)
		return audit.Session{}, errNoSession
	}
	if err != nil {
		return audit.Session{}, err
	}
	if !v.Oversight.Covers(s.Tenant) {
		c.refused(ctx, r, v, "session "+id+" of tenant "+s.Tenant+" is outside the viewer's oversight")
		return audit.Session{}, errNoSession
	}
	return s, nil
}

// refused is refuse for a session route (subject "session").
func (c *Console) refused(ctx context.Context, r *http.Request, v *Viewer, reason string) {
	c.refuse(ctx, r, v, "session", reason)
}

// noSession answers errNoSession, or a store error as a 500 that shows
// nothing of its cause.
func (c *Console) noSession(w http.ResponseWriter, r *http.Request, v *Viewer, err error) {
	if errors.Is(err, errNoSession) {
		c.fail(w, r, v, http.StatusNotFound, "No such session, or not one of the tenants you oversee.")
		return
	}
	c.log.Error("console: session lookup", "path", r.URL.Path, "err", err)
	c.fail(w, r, v, http.StatusInternalServerError, "The session could not be read; the error is in the gateway's log.")
}

// isLive reports whether id is live in the gateway (Deps.LiveIDs).
func (c *Console) isLive(id string) bool {
	if c.d.LiveIDs == nil {
		return false
	}
	for _, l := range c.d.LiveIDs() {
		if l == id {
			return true
		}
	}
	return false
}
