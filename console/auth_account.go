package console

import (
	"net/http"
	"time"
)

// /signin explains how to sign in; /account lists the viewer's browser
// sessions with a revoke button each; /signout ends this one. Revoking
// is limited to the viewer's own sessions: another user's session ID is
// answered as an unknown one.

func (c *Console) signinPage(w http.ResponseWriter, r *http.Request) {
	if v := c.lookup(r); v != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "signin", nil, "Sign in", map[string]any{"OIDC": c.oidcOffered(), "IdP": c.idpName()})
}

// accountRow is one browser session on /account.
type accountRow struct {
	ID, Method, ClientAddr, UserAgent string
	Created, LastSeen                 time.Time
	Current                           bool
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, v *Viewer) {
	list, err := c.liveSessions(r.Context(), v.User)
	if err != nil {
		c.log.Error("console: account", "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "Warden could not list your sessions.")
		return
	}
	var rows []accountRow
	for _, b := range list {
		rows = append(rows, accountRow{ID: b.id, Method: b.method, ClientAddr: b.clientAddr, UserAgent: b.userAgent,
			Created: b.created, LastSeen: b.lastSeen, Current: b.id == v.SessionID})
	}
	c.render(w, http.StatusOK, "account", v, "Account", map[string]any{"Sessions": rows, "IdleTimeout": idleTimeout.String()})
}

// revoke ends one of the viewer's sessions (POST, CSRF-checked).
func (c *Console) revoke(w http.ResponseWriter, r *http.Request, v *Viewer) {
	id := r.PostFormValue("session")
	b, err := c.sessionOf(r.Context(), v.User, id)
	if err != nil {
		c.log.Error("console: revoke", "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "Warden could not revoke the session.")
		return
	}
	if b == nil || !b.live() {
		c.fail(w, r, v, http.StatusNotFound, "No such session of yours.")
		return
	}
	c.endSession(r.Context(), b, "revoked", v.User, EventSessionRevoked)
	if b.id == v.SessionID {
		c.clearSessionCookie(w)
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/account", http.StatusSeeOther)
}

// signOut ends this browser's session (POST, CSRF-checked).
func (c *Console) signOut(w http.ResponseWriter, r *http.Request, v *Viewer) {
	if b, err := c.sessionOf(r.Context(), v.User, v.SessionID); err == nil && b != nil {
		c.endSession(r.Context(), b, "signout", "", EventSignOut)
	}
	c.clearSessionCookie(w)
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}
