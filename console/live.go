package console

import (
	"context"
	"errors"
	"net/http"

	"github.com/warden-gw/warden/recorder"
)

// The live view (issue 10): the page of a live session plays it in the
// browser as it happens, over a read-only WebSocket (live_socket.go), and
// gives overseers a kill button with a confirm step and a reason. The
// console decides nothing itself: watching and killing go through Live,
// the gateway's own `ssh gw watch` and `ssh gw kill` checks, tenant scope
// and audit events included.
//
// Routes (mountLive):
//
//	GET  /sessions/{id}/watch   the live page (the session page shows it too, via livePage)
//	GET  /sessions/{id}/live    the WebSocket the page's player reads
//	POST /sessions/{id}/kill    end the session (CSRF; form field "reason" required)

// Live is the gateway's live-session oversight as the console uses it;
// gateway.Server implements it. Every method checks, under the policy in
// force, that user oversees the session's tenant; any refusal (another
// tenant's session, one that ended or never existed, a user who oversees
// nothing) is one error the console shows as the 404 of an unknown ID.
type Live interface {
	// LiveSession describes a live session user may watch.
	LiveSession(ctx context.Context, user, id string) (recorder.Header, error)
	// WatchSession starts a read-only view of it; the feed ends with the
	// session, with ctx, or when user loses the right to watch it.
	WatchSession(ctx context.Context, user, id string) (recorder.Feed, error)
	// KillSession ends it and audits reason. An error that has a
	// BadInput() string method is a bad reason (400, that line shown).
	KillSession(ctx context.Context, user, id, reason string) error
}

// badInput is an error about what the person typed, with the line to
// show them.
type badInput interface{ BadInput() string }

// The session page of a live session is the live page.
func init() { livePageHook = (*Console).livePage }

func (c *Console) mountLive(m Mux) {
	if c.d.Live == nil {
		return // no gateway (a console served without one): no live view
	}
	m.Handle("GET /sessions/{id}/watch", c.viewer(func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		c.livePage(w, r, v, r.PathValue("id"))
	}))
	m.Handle("GET /sessions/{id}/live", c.viewer(c.liveSocket))
	m.Handle("POST /sessions/{id}/kill", c.action(c.liveKill))
}

// livePageData is what templates/page_live.html shows.
type livePageData struct {
	ID      string
	Title   string // "alice as root@web01"
	Tenant  string
	Cols    int
	Rows    int
	CanKill bool
}

// livePage renders the live page of session id for v, or the 404 of an
// unknown ID when v may not watch it. The session page (sessions helper)
// calls it for a session that is live.
func (c *Console) livePage(w http.ResponseWriter, r *http.Request, v *Viewer, id string) {
	if c.d.Live == nil {
		c.noSession(w, r, v, errNoSession)
		return
	}
	h, err := c.d.Live.LiveSession(r.Context(), v.User, id)
	if err != nil {
		c.noSession(w, r, v, errNoSession)
		return
	}
	allowPlayer(w) // the player's terminal is WebAssembly (sessions_page.go)
	// Whoever may watch may kill: `ssh gw kill` is open to the same
	// overseers (approvers and auditors of the tenant) as `ssh gw watch`.
	c.render(w, http.StatusOK, "live", v, "Live: "+h.Title, livePageData{
		ID: h.Warden.SessionID, Title: h.Title, Tenant: h.Warden.Tenant,
		Cols: h.Width, Rows: h.Height, CanKill: !v.Oversight.None(),
	})
}

// killResult is what templates/page_live_killed.html shows.
type killResult struct {
	ID, Reason string
}

// liveKill ends a live session: POST with the CSRF token (c.action) and a
// reason. Refusals are the 404 of an unknown ID; the gateway audits them.
func (c *Console) liveKill(w http.ResponseWriter, r *http.Request, v *Viewer) {
	id := r.PathValue("id")
	reason := r.PostFormValue("reason")
	err := c.d.Live.KillSession(r.Context(), v.User, id, reason)
	var bad badInput
	switch {
	case errors.As(err, &bad):
		c.fail(w, r, v, http.StatusBadRequest, bad.BadInput())
	case err != nil:
		c.noSession(w, r, v, errNoSession)
	default:
		c.log.Info("console: session killed", "user", v.User, "session", id)
		c.render(w, http.StatusOK, "live_killed", v, "Session terminated", killResult{ID: id, Reason: reason})
	}
}
