package console

import (
	"net"
	"net/http"
	"net/url"
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
	if c.sessionToken(r) != "" {
		c.clearSessionCookie(w) // a dead session's cookie (see viewer)
	}
	c.render(w, http.StatusOK, "signin", nil, "Sign in", map[string]any{"OIDC": c.oidcOffered(), "IdP": c.idpName(), "SSH": c.sshCommand(r)})
}

// sshCommand is the `ssh ... console` the sign-in page tells people to
// run: the SSH port from SSHAddr, and the host from SSHAddr when it
// names one, else the host of the console's own address (http_public_url,
// http_listen's host, or the host the browser reached, as a link would
// name it). What is not known stays a placeholder (PORT, GATEWAY).
func (c *Console) sshCommand(r *http.Request) string {
	host, port, addr := "", "", ""
	if c.d.SSHAddr != nil {
		addr = c.d.SSHAddr()
	}
	if h, p, err := net.SplitHostPort(addr); err == nil {
		if p != "0" && p != "" {
			port = p
		}
		if ip := net.ParseIP(h); h != "" && (ip == nil || !ip.IsUnspecified()) {
			host = h
		}
	}
	if host == "" && c.d.BaseURL != nil {
		reached, _, err := net.SplitHostPort(r.Host)
		if err != nil {
			reached = r.Host
		}
		if !hostName(reached) {
			reached = "" // a Host header is the client's say: only a plain name or address is shown
		}
		if u, err := url.Parse(c.d.BaseURL(reached)); err == nil && hostName(u.Hostname()) {
			host = u.Hostname()
		}
	}
	if host == "" {
		host = "GATEWAY"
	}
	switch port {
	case "":
		return "ssh -p PORT " + host + " console"
	case "22":
		return "ssh " + host + " console"
	}
	return "ssh -p " + port + " " + host + " console"
}

// hostName reports whether h is a plain host name or IP address: letters,
// digits, '.', '-' and ':' (IPv6), at most 253 bytes.
func hostName(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for i := 0; i < len(h); i++ {
		b := h[i]
		if !('a' <= b && b <= 'z' || 'A' <= b && b <= 'Z' || '0' <= b && b <= '9' || b == '.' || b == '-' || b == ':') {
			return false
		}
	}
	return true
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
		c.refuse(r.Context(), r, v, "console_session", "revoke: no live session "+Clean(truncate(id, 64))+" of the viewer")
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
