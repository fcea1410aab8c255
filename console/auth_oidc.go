package console

import (
	"context"
	"errors"
	"net/http"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/sso"
)

// Sign-in through the identity provider (identity.oidc). /signin offers a
// button that POSTs to /signin/oidc; package sso runs the authorization
// code flow with PKCE, state and nonce, comes back on the one redirect URI
// registered at the IdP (/oidc/callback), checks that the callback reached
// the browser that started it, and maps the IdP's username claim to a
// Warden user by the same rule as `ssh gw login` (sso.Service.signInUser:
// policy and directory users, identity.oidc.create_users). The console
// then starts a browser session of method "oidc", for a user that must be
// in the policy in force.
//
// The callback's answer is a page, not a redirect: the browser arrives
// there from the IdP's site, and a SameSite=Strict cookie set on that
// cross-site navigation is not sent on the redirects that continue it.
// The page's link (same-site, from our own page) carries it.

// SignOn is what the console asks of single sign-on for SSH keys
// (sso.Service): whether a key is bound to a user now.
type SignOn interface {
	BoundUser(ctx context.Context, fingerprint string) (string, bool)
}

// OIDC is the identity provider's browser sign-in (sso.Service); nil
// leaves the console to one-time links.
type OIDC interface {
	IdPName() string
	BrowserSignIn(w http.ResponseWriter, r *http.Request, done sso.BrowserDone) (string, error)
}

// oidcState is kept for symmetry with the links: IdP sign-ins in flight
// live in package sso, bounded there.
type oidcState struct{}

func (c *Console) mountOIDC(m Mux) {
	m.Handle("POST /signin/oidc", http.HandlerFunc(c.oidcStart))
}

// oidcOffered reports whether /signin offers the identity provider.
func (c *Console) oidcOffered() bool { return c.d.OIDC != nil }

// idpName is how /signin names the identity provider.
func (c *Console) idpName() string {
	if c.d.OIDC == nil {
		return ""
	}
	return c.d.OIDC.IdPName()
}

// oidcStart sends the browser to the identity provider. It needs no CSRF
// token: a page elsewhere that posts here only starts a sign-in that
// the victim's own IdP session finishes as the victim; the login-CSRF
// direction (the attacker's identity in the victim's browser) is closed at
// the callback, which must reach the browser that started.
func (c *Console) oidcStart(w http.ResponseWriter, r *http.Request) {
	if c.d.OIDC == nil {
		http.NotFound(w, r)
		return
	}
	to, err := c.d.OIDC.BrowserSignIn(w, r, c.oidcDone)
	var ref sso.Refusal
	switch {
	case errors.As(err, &ref):
		c.refuseOIDC(r, "", err.Error())
		c.fail(w, r, nil, http.StatusTooManyRequests, "Sign-in refused: "+err.Error()+".")
		return
	case err != nil:
		c.log.Error("console: identity provider", "err", err)
		c.fail(w, r, nil, http.StatusBadGateway, "Warden could not reach the identity provider. Try again in a minute.")
		return
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// oidcDone answers the IdP's callback for a console sign-in.
func (c *Console) oidcDone(w http.ResponseWriter, r *http.Request, user string, err error) {
	if err != nil {
		c.refuseOIDC(r, "", err.Error())
		msg := "Warden could not complete the sign-in."
		var ref sso.Refusal
		if errors.As(err, &ref) {
			msg = "Sign-in refused: " + Clean(err.Error()) + "."
		}
		c.fail(w, r, nil, http.StatusForbidden, msg)
		return
	}
	if c.d.Policy().User(user) == nil {
		c.refuseOIDC(r, user, "not a user of the policy in force")
		c.fail(w, r, nil, http.StatusForbidden, "Sign-in refused: you are not a Warden user.")
		return
	}
	tok, sid, err := c.newSession(r.Context(), sessionStart{user: user, method: MethodOIDC, clientAddr: r.RemoteAddr, userAgent: cleanAgent(r.UserAgent())})
	if err != nil {
		c.log.Error("console: start session", "err", err)
		c.fail(w, r, nil, http.StatusInternalServerError, "Warden could not complete the sign-in.")
		return
	}
	c.log.Info("console sign-in", "user", user, "method", MethodOIDC, "session", sid, "client_addr", r.RemoteAddr)
	c.setSessionCookie(w, tok)
	c.render(w, http.StatusOK, "signed_in", nil, "Signed in", user)
}

// refuseOIDC records a refused IdP sign-in (within the refusal budget).
func (c *Console) refuseOIDC(r *http.Request, user, why string) {
	c.log.Info("console sign-in refused", "method", MethodOIDC, "reason", why, "client_addr", r.RemoteAddr)
	now := c.d.Now().UTC()
	if !c.auth.refusals.allow(now) {
		return
	}
	e := audit.Event{TS: now, Type: EventSignInRefused, Actor: user, Data: map[string]any{
		"method": MethodOIDC, "reason": why, "client_addr": r.RemoteAddr, "user_agent": cleanAgent(r.UserAgent())}}
	if n := c.auth.refusals.takeSuppressed(); n > 0 {
		e.Data["suppressed_before"] = n
	}
	if err := c.d.Store.Append(context.WithoutCancel(r.Context()), e); err != nil {
		c.log.Error("console: audit event not written", "type", e.Type, "err", err)
	}
}
