package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Browser sessions. A signed-in browser holds a random 256-bit token in an
// HttpOnly, SameSite=Strict cookie (Secure and __Host- prefixed under
// TLS); the console_sessions table keeps only its SHA-256, so a copy of the
// database or a log of queries signs nobody in. The session's CSRF token is
// derived from the cookie's token (csrfFor), so it needs no storage of its
// own and dies with the session; every state-changing request must carry
// it (form field "csrf" or header X-CSRF-Token).
//
// A session ends by sign-out, revocation from /account (any of the user's
// own sessions), 30 minutes without a request, or its user leaving the
// policy in force. Each is checked on every request, so revocation takes
// effect at the next click. last_seen is written at most once a minute
// per session (touchEvery), so browsing does not turn into a write per
// request; the idle timeout is therefore exact to within that minute.

const (
	cookieName = "warden_console"
	// hostCookieName is used under TLS: the __Host- prefix makes the
	// browser refuse the cookie unless it is Secure, host-only and for
	// Path /, so a sibling subdomain cannot plant (toss) a session of its
	// choosing into a person's browser.
	hostCookieName = "__Host-warden_console"
	idleTimeout    = 30 * time.Minute
	touchEvery     = time.Minute
)

// Ways of signing in, written to console_sessions.method.
const (
	MethodLink = "link" // a one-time link printed by `ssh GATEWAY console`
	MethodOIDC = "oidc" // the identity provider (identity.oidc)
)

// Audit event types of the console's sign-in.
const (
	EventLinkIssued     = "console.link_issued"     // ssh gw console printed a link (subject: the key fingerprint)
	EventSignIn         = "console.signin"          // a browser session started (data: method, session)
	EventSignInRefused  = "console.signin_refused"  // a link or IdP sign-in was refused (data: reason)
	EventSignOut        = "console.signout"         // the person signed out
	EventSessionRevoked = "console.session_revoked" // a session was revoked from /account
	EventSessionEnded   = "console.session_ended"   // idle timeout, the user left the policy, or the link's key is no longer theirs
	// EventRefused is a signed-in browser's request refused (subject: what
	// was asked for, e.g. "csrf", "session", "evidence"; data: reason,
	// route, path, suppressed_before when the refusal budget left some out).
	EventRefused = "console.refused"
)

// Viewer is the signed-in person of one request, as the policy in force
// sees them now.
type Viewer struct {
	User      string           // the Warden user
	Oversight policy.Oversight // tenants whose sessions they may see
	CSRF      string           // this browser session's CSRF token
	SessionID string           // the browser session's public ID
}

// authState is the sign-in's in-memory state: the refusal budgets and
// the pending IdP sign-ins (auth_oidc.go). Sessions and links are rows.
type authState struct {
	refusals refusalBudget // console.signin_refused
	// pages bounds console.refused: a signed-in browser's refused
	// requests (a missing CSRF token, another tenant's session ID, an
	// unknown evidence packet). It is its own budget so that a flood of
	// one kind cannot hide the other's events, only its own.
	pages refusalBudget
	oidc  oidcState
}

func newAuthState(c *Console) *authState { return &authState{} }

// refusalBudget bounds the audit events of refusals: a client spraying
// made-up links, IDs or forged forms must not grow the audit chain without
// limit. Up to refusalBurst events a minute are written; the rest are
// counted, logged, and the next written event says how many were left out
// (suppressed_before). The budget is global, not per source: a per-source
// budget would let an attacker with many addresses or sessions write
// without bound, while a global one bounds the chain's growth to
// refusalBurst events a minute whatever the flood, at the price that
// during a flood other refusals survive only as counts and log lines.
type refusalBudget struct {
	mu         sync.Mutex
	minute     time.Time
	n          int
	suppressed int
}

const refusalBurst = 60

// maxActionBytes bounds the body of a state-changing request.
const maxActionBytes = 64 << 10

func (b *refusalBudget) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	m := now.Truncate(time.Minute)
	if !m.Equal(b.minute) {
		b.minute, b.n = m, 0
	}
	if b.n >= refusalBurst {
		b.suppressed++
		return false
	}
	b.n++
	return true
}

func (b *refusalBudget) takeSuppressed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := b.suppressed
	b.suppressed = 0
	return n
}

func (c *Console) mountAuth(m Mux) {
	m.Handle("GET /signin", http.HandlerFunc(c.signinPage))
	m.Handle("GET /signin/link", http.HandlerFunc(c.linkPage))
	m.Handle("POST /signin/link", http.HandlerFunc(c.linkRedeem))
	m.Handle("POST /signout", c.action(c.signOut))
	m.Handle("GET /account", c.viewer(c.accountPage))
	m.Handle("POST /account/revoke", c.action(c.revoke))
	c.mountOIDC(m) // auth_oidc.go
}

// random returns n random bytes.
func (c *Console) random(n int) ([]byte, error) {
	r := c.d.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// randToken returns n random bytes as unpadded base64url.
func (c *Console) randToken(n int) (string, error) {
	b, err := c.random(n)
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// tokenHash is what the tables keep of a link's or a cookie's token.
func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// csrfFor derives a session's CSRF token from its cookie token: HMAC-SHA256
// keyed by the token. A page from another site can neither read the
// HttpOnly cookie nor this value (it is only in our pages, which the
// same-origin policy hides from it), and the database, holding only the
// token's hash, cannot produce it.
func csrfFor(tok string) string {
	m := hmac.New(sha256.New, []byte(tok))
	m.Write([]byte("warden-csrf"))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (c *Console) cookieName() string {
	if c.d.Secure {
		return hostCookieName
	}
	return cookieName
}

// setSessionCookie hands the browser its session token. No Expires: the
// cookie ends with the browser, the session earlier by the idle timeout.
func (c *Console) setSessionCookie(w http.ResponseWriter, tok string) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: tok, Path: "/", HttpOnly: true,
		Secure: c.d.Secure, SameSite: http.SameSiteStrictMode})
}

func (c *Console) clearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: c.cookieName(), Value: "", Path: "/", MaxAge: -1, HttpOnly: true,
		Secure: c.d.Secure, SameSite: http.SameSiteStrictMode})
}

// startSession signs user in on this browser with a new session and its
// cookie, outside any sign-in flow: for the package's unit tests, which
// exercise pages rather than sign-in (auth tests sign in for real).
//
// Such a session is recorded as an IdP sign-in (bound to no key): a
// link session must name its link, whose key lookup checks.
func (c *Console) startSession(w http.ResponseWriter, user string) error {
	tok, _, err := c.newSession(context.Background(), sessionStart{user: user, method: MethodOIDC})
	if err != nil {
		return err
	}
	c.setSessionCookie(w, tok)
	return nil
}

// sessionToken returns the cookie's token of r, or "".
func (c *Console) sessionToken(r *http.Request) string {
	ck, err := r.Cookie(c.cookieName())
	if err != nil || len(ck.Value) != 43 { // 32 bytes in base64url
		return ""
	}
	return ck.Value
}

// lookup returns the viewer of r, or nil when r carries no live session or
// its user is no longer in the policy (which ends the session). A store
// error is logged and answers nil: fail closed.
func (c *Console) lookup(r *http.Request) *Viewer {
	tok := c.sessionToken(r)
	if tok == "" {
		return nil
	}
	ctx := r.Context()
	bs, err := c.sessionByToken(ctx, tokenHash(tok))
	if err != nil {
		c.log.Error("console: session lookup", "err", err)
		return nil
	}
	if bs == nil {
		return nil
	}
	if !bs.live() {
		// A cookie of a session that was signed out, revoked or ended:
		// someone kept or copied it. Refused, and worth a record.
		c.refuse(ctx, r, nil, "console_session", "cookie of ended session "+bs.id+" of "+bs.user+" ("+bs.endReason+")")
		return nil
	}
	now := c.d.Now().UTC()
	if now.Sub(bs.lastSeen) > idleTimeout {
		c.endSession(ctx, bs, "idle", "", EventSessionEnded)
		return nil
	}
	pol := c.d.Policy()
	u := pol.User(bs.user)
	if u == nil {
		// Removed since sign-in (a leaver): cut off at once, for good.
		c.endSession(ctx, bs, "left", "", EventSessionEnded)
		return nil
	}
	if bs.method == MethodLink && !c.linkKeyHeld(ctx, bs) {
		// Signed in by a link, which was bound to the key that ran `ssh
		// gw console`: when that key is no longer the user's (removed
		// from the policy, a sign-in binding ended or moved), the
		// browser session ends with it, as the link would have been
		// refused. Fail closed: a link session whose link cannot be read
		// ends too.
		c.endSession(ctx, bs, "key", "", EventSessionEnded)
		return nil
	}
	if now.Sub(bs.lastSeen) >= touchEvery {
		if err := c.touchSession(ctx, bs.id, now); err != nil {
			c.log.Error("console: session last_seen not written", "session", bs.id, "err", err)
		}
	}
	return &Viewer{User: bs.user, CSRF: csrfFor(tok), SessionID: bs.id, Oversight: pol.OversightOf(u)}
}

// viewer wraps a page that needs a signed-in person: without one, a GET
// (or HEAD) goes to the sign-in page and anything else gets 401.
func (c *Console) viewer(h func(w http.ResponseWriter, r *http.Request, v *Viewer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := c.lookup(r)
		if v == nil {
			if c.sessionToken(r) != "" {
				// A dead session's cookie: drop it, so that the
				// browser stops sending it and a later use of a
				// kept copy stands out in the audit log.
				c.clearSessionCookie(w)
			}
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
			// A page's GET is how a person finds the sign-in; anything
			// else without a session is a refusal (a forged form, a
			// script with a dead cookie), audited within the budget.
			c.refuse(r.Context(), r, nil, "signin", "not signed in")
			http.Error(w, "sign in first", http.StatusUnauthorized)
			return
		}
		h(w, r, v)
	})
}

// action wraps a state-changing request (POST): a signed-in viewer and
// the session's CSRF token, compared in constant time, or 403.
func (c *Console) action(h func(w http.ResponseWriter, r *http.Request, v *Viewer)) http.Handler {
	return c.viewer(func(w http.ResponseWriter, r *http.Request, v *Viewer) {
		// A console form is a few fields; the bound keeps a signed-in
		// browser (or a forged form) from making the handler read up to
		// net/http's 10 MB, and a form that cannot be read acts on
		// nothing, whatever token came in the header.
		r.Body = http.MaxBytesReader(w, r.Body, maxActionBytes)
		if err := r.ParseForm(); err != nil {
			c.refuse(r.Context(), r, v, "form", "unreadable or oversized form")
			http.Error(w, "the form could not be read", http.StatusBadRequest)
			return
		}
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("csrf")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) != 1 {
			why := "wrong CSRF token"
			if got == "" {
				why = "missing CSRF token"
			}
			c.refuse(r.Context(), r, v, "csrf", why)
			http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, v)
	})
}

// refuse leaves the audit event a refusal of a signed-in viewer's request
// leaves (console.refused), within the pages budget: who asked (v, nil
// before sign-in), for which route and path, and the real reason, which
// the page itself does not show. A failure to append is logged; the
// answer is a refusal either way.
func (c *Console) refuse(ctx context.Context, r *http.Request, v *Viewer, subject, reason string) {
	actor := ""
	if v != nil {
		actor = v.User
	}
	p := Clean(r.URL.EscapedPath())
	if len(p) > 200 {
		p = strings.ToValidUTF8(p[:200], "")
	}
	c.log.Info("console: refused", "user", actor, "route", r.Pattern, "path", p, "reason", reason, "client_addr", r.RemoteAddr)
	if c.d.Store == nil {
		return
	}
	now := c.d.Now().UTC()
	if !c.auth.pages.allow(now) {
		return // counted; the next event written says how many were left out
	}
	data := map[string]any{"reason": reason, "route": r.Pattern, "method": r.Method, "path": p, "client_addr": r.RemoteAddr}
	if v != nil {
		data["session"] = v.SessionID
	}
	if n := c.auth.pages.takeSuppressed(); n > 0 {
		data["suppressed_before"] = n
	}
	err := c.d.Store.Append(context.WithoutCancel(ctx), audit.Event{TS: now, Type: EventRefused, Actor: actor, Subject: subject, Data: data})
	if err != nil {
		c.log.Error("console: audit event not written", "type", EventRefused, "err", err)
	}
}
