package console

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/warden-gw/warden/policy"
)

// Browser sessions. A signed-in browser holds a random token in an
// HttpOnly, SameSite=Strict cookie; the server keeps only its SHA-256, so a
// leaked database or memory dump does not hand out live sessions. Each
// session has its own CSRF token, which every state-changing request must
// carry (form field "csrf" or header X-CSRF-Token).
//
// This first version keeps sessions in memory; the sign-in helper replaces
// it with persistent, listed and revocable sessions (idle timeout 30 min).

const (
	cookieName  = "warden_console"
	idleTimeout = 30 * time.Minute
)

// Viewer is the signed-in person of one request, as the policy in force
// sees them now.
type Viewer struct {
	User      string           // the Warden user
	Oversight policy.Oversight // tenants whose sessions they may see
	CSRF      string           // this browser session's CSRF token
	SessionID string           // the browser session's public ID
}

type browserSession struct {
	id       string // public ID (listing, revoking); not the cookie
	user     string
	csrf     string
	lastSeen time.Time
}

type authState struct {
	c        *Console
	mu       sync.Mutex
	sessions map[[32]byte]*browserSession // by SHA-256 of the cookie token
}

func newAuthState(c *Console) *authState {
	return &authState{c: c, sessions: map[[32]byte]*browserSession{}}
}

func (c *Console) mountAuth(m Mux) {}

// randToken returns n random bytes as unpadded base64url.
func (c *Console) randToken(n int) (string, error) {
	r := c.d.Rand
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// startSession signs user in on this browser: a new session and its cookie.
func (c *Console) startSession(w http.ResponseWriter, user string) error {
	tok, err := c.randToken(32)
	if err != nil {
		return err
	}
	id, err := c.randToken(9)
	if err != nil {
		return err
	}
	csrf, err := c.randToken(32)
	if err != nil {
		return err
	}
	a := c.auth
	a.mu.Lock()
	a.sessions[sha256.Sum256([]byte(tok))] = &browserSession{id: id, user: user, csrf: csrf, lastSeen: c.d.Now()}
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: tok, Path: "/", HttpOnly: true,
		Secure: c.d.Secure, SameSite: http.SameSiteStrictMode})
	return nil
}

// lookup returns the viewer of r, or nil when r carries no live session or
// its user is no longer in the policy.
func (c *Console) lookup(r *http.Request) *Viewer {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil
	}
	a := c.auth
	now := c.d.Now()
	key := sha256.Sum256([]byte(ck.Value))
	a.mu.Lock()
	bs := a.sessions[key]
	if bs != nil && now.Sub(bs.lastSeen) > idleTimeout {
		delete(a.sessions, key)
		bs = nil
	}
	if bs != nil {
		bs.lastSeen = now
	}
	var v *Viewer
	if bs != nil {
		v = &Viewer{User: bs.user, CSRF: bs.csrf, SessionID: bs.id}
	}
	a.mu.Unlock()
	if v == nil {
		return nil
	}
	pol := c.d.Policy()
	u := pol.User(v.User)
	if u == nil {
		return nil // removed since sign-in: cut off at once
	}
	v.Oversight = pol.OversightOf(u)
	return v
}

// viewer wraps a page that needs a signed-in person: without one, a GET
// goes to the sign-in page and anything else gets 401.
func (c *Console) viewer(h func(w http.ResponseWriter, r *http.Request, v *Viewer)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := c.lookup(r)
		if v == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/signin", http.StatusSeeOther)
				return
			}
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
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("csrf")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(v.CSRF)) != 1 {
			http.Error(w, "missing or wrong CSRF token", http.StatusForbidden)
			return
		}
		h(w, r, v)
	})
}
