package sso

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/warden-gw/warden/recorder"
)

// Paths on the HTTP listener.
const (
	startPath    = "/oidc/start"
	callbackPath = "/oidc/callback"
	cookieName   = "warden_sso"
	// hostCookieName is used over https: the __Host- prefix makes the
	// browser refuse the cookie unless it is Secure, host-only and for
	// Path /, so a sibling subdomain (or a plain-http man in the middle)
	// cannot plant its own value in a victim's browser ("cookie
	// tossing") and so pass the callback's browser check with an
	// attacker's sign-in.
	hostCookieName = "__Host-warden_sso"
	maxFormBytes   = 4 << 10
)

// Mux is where the handlers are mounted: web.Server's Handle.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Mount adds the sign-in pages to m.
func (s *Service) Mount(m Mux) {
	m.Handle("GET "+startPath, http.HandlerFunc(s.startPage))
	m.Handle("POST "+startPath, http.HandlerFunc(s.confirm))
	m.Handle("GET "+callbackPath, http.HandlerFunc(s.callback))
}

// browserCookie returns the browser's sign-in cookie, setting a new random
// one when it has none. The cookie ties the confirm step to the callback:
// the IdP's redirect is accepted only in the browser that typed the code.
// SameSite=Lax, not Strict: the callback is a top-level navigation from
// the IdP's site, on which a Strict cookie would not be sent.
func (s *Service) browserCookie(w http.ResponseWriter, r *http.Request, base string) (string, error) {
	name, path, secure := cookieName, cookiePath(base), strings.HasPrefix(base, "https:")
	if secure {
		name, path = hostCookieName, "/"
	}
	if c, err := r.Cookie(name); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	v, err := s.random(32)
	if err != nil {
		return "", err
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: v, Path: path, HttpOnly: true, Secure: secure, SameSite: http.SameSiteLaxMode})
	return v, nil
}

// readCookie returns the browser's sign-in cookie for a sign-in whose
// links start with base, or "" when it sent none.
func readCookie(r *http.Request, base string) string {
	name := cookieName
	if strings.HasPrefix(base, "https:") {
		name = hostCookieName
	}
	c, err := r.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// csrfToken binds the confirm form to one sign-in and one browser: a form
// posted from another site, or with another browser's cookie, fails.
func (s *Service) csrfToken(id, cookie string) string {
	m := hmac.New(sha256.New, s.hmac[:])
	m.Write([]byte("csrf\x00" + id + "\x00" + cookie))
	return b64(m.Sum(nil))
}

// lookup returns the live, unexpired pending sign-in id names.
func (s *Service) lookup(id string) *pending {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.byID[id]
	if p == nil || p.finished || !s.now().Before(p.expires) {
		return nil
	}
	return p
}

// startPage shows what is being signed in, and asks for the code the
// terminal shows. It does not redirect anywhere: a link alone, sent to
// someone else, cannot start a sign-in at the IdP.
func (s *Service) startPage(w http.ResponseWriter, r *http.Request) {
	p := s.lookup(r.URL.Query().Get("id"))
	if p == nil {
		s.refusePage(r.Context(), r, "", "page", "unknown, used or expired sign-in link", nil)
		s.page(w, http.StatusNotFound, "Sign-in link not valid", "This sign-in link is unknown, used or expired. Run ssh GATEWAY login again.")
		return
	}
	cookie, err := s.browserCookie(w, r, p.base)
	if err != nil {
		s.page(w, http.StatusInternalServerError, "Error", "Warden could not start the sign-in.")
		return
	}
	s.render(w, http.StatusOK, startTmpl, map[string]any{
		"ID": p.id, "Action": p.base + startPath, "CSRF": s.csrfToken(p.id, cookie), "Fingerprint": p.fp, "KeyType": p.key.Type(),
		"ClientAddr": recorder.Quote(p.clientAddr), "Started": p.created.Format(time.RFC3339), "Expires": p.expires.Format(time.RFC3339),
	})
}

// confirm checks the CSRF token and the typed code, then sends the browser
// to the IdP with a fresh state, nonce and PKCE verifier. A sign-in is
// confirmed once: a second browser cannot take it over.
func (s *Service) confirm(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.refusePage(r.Context(), r, "", "confirm", "unreadable or oversized form", nil)
		s.page(w, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return
	}
	p := s.lookup(r.PostForm.Get("id"))
	if p == nil {
		s.refusePage(r.Context(), r, "", "confirm", "unknown, used or expired sign-in", nil)
		s.page(w, http.StatusNotFound, "Sign-in link not valid", "This sign-in link is unknown, used or expired. Run ssh GATEWAY login again.")
		return
	}
	cookie := readCookie(r, p.base)
	if cookie == "" || subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(s.csrfToken(p.id, cookie))) != 1 {
		// Audited, not only logged: a form that did not come from the
		// sign-in page in this browser is how a login CSRF (pushing a
		// victim's browser through the attacker's key's sign-in) looks.
		// The pending sign-in goes on: the form's sender may not be its
		// owner, who must still be able to finish it.
		// Within the budget (refusals.go): anyone may post this form.
		s.refusePage(r.Context(), r, p.fp, "confirm", "confirm form not sent from the sign-in page in this browser",
			map[string]any{"client_addr": p.clientAddr})
		s.page(w, http.StatusForbidden, "Not allowed", "This form was not sent from Warden's sign-in page in this browser. Open the link again.")
		return
	}
	typed := normalizeCode(r.PostForm.Get("code"))
	s.mu.Lock()
	switch {
	case p.finished:
		s.mu.Unlock()
		s.refusePage(r.Context(), r, p.fp, "confirm", "sign-in already ended", map[string]any{"client_addr": p.clientAddr})
		s.page(w, http.StatusNotFound, "Sign-in link not valid", "This sign-in has ended. Run ssh GATEWAY login again.")
		return
	case p.confirmed:
		s.mu.Unlock()
		// Another browser (or a second tab) tries to take over a sign-in
		// already on its way to the IdP: worth a record.
		s.refusePage(r.Context(), r, p.fp, "confirm", "sign-in already confirmed in a browser", map[string]any{"client_addr": p.clientAddr})
		s.page(w, http.StatusConflict, "Already confirmed", "This sign-in was already confirmed in a browser. Run ssh GATEWAY login again if that was not you.")
		return
	case subtle.ConstantTimeCompare([]byte(typed), []byte(p.code)) != 1:
		p.attempts++
		tooMany, attempts := p.attempts >= maxAttempts, p.attempts
		s.mu.Unlock()
		if tooMany {
			s.refuse(r.Context(), p, "", "too many wrong codes", "too many wrong codes were typed on the sign-in page")
			s.page(w, http.StatusForbidden, "Sign-in ended", "Too many wrong codes. Run ssh GATEWAY login again.")
			return
		}
		s.refusePage(r.Context(), r, p.fp, "confirm", "wrong code", map[string]any{"client_addr": p.clientAddr, "attempts": attempts})
		s.render(w, http.StatusForbidden, startTmpl, map[string]any{
			"ID": p.id, "Action": p.base + startPath, "CSRF": s.csrfToken(p.id, cookie), "Fingerprint": p.fp, "KeyType": p.key.Type(),
			"ClientAddr": recorder.Quote(p.clientAddr), "Started": p.created.Format(time.RFC3339), "Expires": p.expires.Format(time.RFC3339),
			"Wrong": true,
		})
		return
	}
	s.mu.Unlock()
	state, err1 := s.random(32)
	nonce, err2 := s.random(32)
	verifier, err3 := s.random(32) // 43 characters: RFC 7636 §4.1's minimum, 256 bits
	if err := errors.Join(err1, err2, err3); err != nil {
		s.page(w, http.StatusInternalServerError, "Error", "Warden could not start the sign-in.")
		return
	}
	to, err := s.idp.authURL(r.Context(), p.base+callbackPath, state, nonce, verifier)
	if err != nil {
		s.log.Error("identity provider unreachable", "err", err)
		s.page(w, http.StatusBadGateway, "Identity provider unreachable", "Warden could not reach the identity provider. Try again in a minute.")
		return
	}
	s.mu.Lock()
	if p.finished || p.confirmed {
		s.mu.Unlock()
		s.refusePage(r.Context(), r, p.fp, "confirm", "sign-in already confirmed or ended", map[string]any{"client_addr": p.clientAddr})
		s.page(w, http.StatusConflict, "Already confirmed", "This sign-in was already confirmed or has ended.")
		return
	}
	p.confirmed, p.state, p.nonce, p.verifier = true, state, nonce, verifier
	p.browser = sha256.Sum256([]byte(cookie))
	s.byState[state] = p
	s.mu.Unlock()
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// callback redeems the IdP's code. The state names the sign-in and is
// used once; the browser must be the one that confirmed it; the code is
// redeemed with the sign-in's PKCE verifier, and the ID token must carry
// its nonce. Whatever happens, the sign-in ends here.
func (s *Service) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	state := q.Get("state")
	s.mu.Lock()
	if f := s.takeBrowserFlowLocked(state); f != nil { // a browser sign-in (browser.go)
		s.mu.Unlock()
		s.browserCallback(w, r, f)
		return
	}
	p := s.byState[state]
	if p != nil {
		delete(s.byState, state)
		s.used[state] = p.expires
	}
	_, replay := s.used[state]
	s.mu.Unlock()
	if p == nil {
		// Both within the budget: anyone may call the callback.
		if replay && state != "" {
			s.refusePage(r.Context(), r, "", "callback", "sign-in state used twice", nil)
		} else {
			s.refusePage(r.Context(), r, "", "callback", "unknown sign-in state", nil)
		}
		s.log.Info("sign-in callback refused: unknown or used state", "replay", replay)
		s.page(w, http.StatusBadRequest, "Sign-in not valid", "This sign-in response is unknown or was already used. Run ssh GATEWAY login again.")
		return
	}
	sum := sha256.Sum256([]byte(readCookie(r, p.base)))
	if subtle.ConstantTimeCompare(sum[:], p.browser[:]) != 1 {
		s.refuse(r.Context(), p, "", "callback in another browser", "the sign-in was completed in a browser other than the one that confirmed the code")
		s.page(w, http.StatusForbidden, "Sign-in refused", "This sign-in was confirmed in another browser. If someone sent you a sign-in link, do not use it.")
		return
	}
	if e := q.Get("error"); e != "" {
		reason := "the identity provider refused the sign-in: " + recorder.Quote(truncate(e, 64))
		s.refuse(r.Context(), p, "", reason, reason)
		s.page(w, http.StatusForbidden, "Sign-in refused", "The identity provider refused the sign-in.")
		return
	}
	id, err := s.idp.exchange(r.Context(), p.base+callbackPath, q.Get("code"), p.verifier, p.nonce)
	if err != nil {
		msg := "the identity provider's answer could not be verified"
		if errors.Is(err, errClaim) {
			msg = strings.TrimPrefix(err.Error(), errClaim.Error()+": ")
		}
		s.log.Error("sign-in failed", "fingerprint", p.fp, "err", err)
		s.refuse(r.Context(), p, "", err.Error(), msg)
		s.page(w, http.StatusForbidden, "Sign-in failed", "Warden could not complete the sign-in.")
		return
	}
	user, note, refused, err := s.signInUser(r.Context(), id) // browser.go: the one mapping rule
	if refused != "" {
		shown := quoteClaim(id.Username)
		if err != nil {
			s.log.Error("sign-in user not created", "claim", shown, "err", err)
			s.refuse(r.Context(), p, id.Username, "user not created: "+err.Error(), refused)
			s.page(w, http.StatusForbidden, "Not a Warden user", shown+" could not be made a Warden user. Ask an administrator.")
			return
		}
		s.refuse(r.Context(), p, id.Username, "no such user", refused)
		s.page(w, http.StatusForbidden, "Not a Warden user", shown+" is not a Warden user. Ask an administrator to add you.")
		return
	}
	now := s.now()
	until := now.Add(s.KeyTTL())
	if err := s.b.bind(r.Context(), p.key, Binding{Fingerprint: p.fp, User: user, Issuer: s.opt.OIDC.Issuer, Subject: id.Subject,
		ClientAddr: p.clientAddr, BoundAt: now, ExpiresAt: until}); err != nil {
		s.log.Error("sign-in binding not stored", "user", user, "err", err)
		s.finish(p, Result{Err: refusal("the sign-in could not be recorded")})
		s.page(w, http.StatusInternalServerError, "Error", "Warden could not record the sign-in.")
		return
	}
	s.log.Info("signed in", "user", user, "fingerprint", p.fp, "until", until)
	s.finish(p, Result{User: user, Until: until, Note: note})
	s.page(w, http.StatusOK, "Signed in", "Signed in as "+user+" until "+until.Format(time.RFC3339)+". You can close this window and return to your terminal.")
}

// refuse ends p with a refusal the SSH client shows, and an audit event.
func (s *Service) refuse(ctx context.Context, p *pending, claimed, reason, shown string) {
	s.audit(ctx, EventRefused, claimed, p.fp, map[string]any{"reason": reason, "client_addr": p.clientAddr})
	s.finish(p, Result{Err: refusal("sign-in refused: " + shown)})
}

// quoteClaim is an IdP's username claim as shown to a person: quoted and
// cut to 128 bytes.
func quoteClaim(c string) string { return recorder.Quote(truncate(c, 128)) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (s *Service) page(w http.ResponseWriter, status int, title, text string) {
	s.render(w, status, msgTmpl, map[string]any{"Title": title, "Text": text})
}

func (s *Service) render(w http.ResponseWriter, status int, t *template.Template, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.Execute(w, data); err != nil {
		s.log.Error("page not rendered", "err", err)
	}
}

// The pages are plain forms: no script, no style sheet, nothing the CSP
// (default-src 'self') would have to allow. html/template escapes every
// value.
var startTmpl = template.Must(template.New("start").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden: sign in an SSH key</title></head>
<body>
<h1>Sign in an SSH key to Warden</h1>
<p><strong>Only continue if you ran <code>ssh GATEWAY login</code> yourself, just now.</strong>
Signing in gives the SSH key below your identity on Warden. If someone sent you this link,
close this page: they are trying to get your access.</p>
<table>
<tr><th>Key</th><td><code data-warden-fingerprint>{{.Fingerprint}}</code> ({{.KeyType}})</td></tr>
<tr><th>SSH client address</th><td>{{.ClientAddr}}</td></tr>
<tr><th>Started</th><td>{{.Started}}</td></tr>
<tr><th>Link expires</th><td>{{.Expires}}</td></tr>
</table>
{{if .Wrong}}<p><strong>That code is not right.</strong></p>{{end}}
<form method="post" action="{{.Action}}">
<input type="hidden" name="id" value="{{.ID}}">
<input type="hidden" name="csrf" value="{{.CSRF}}">
<label>Code shown in your terminal: <input name="code" autocomplete="off" autofocus required></label>
<button type="submit">This is my key: sign in</button>
</form>
</body></html>
`))

var msgTmpl = template.Must(template.New("msg").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Warden: {{.Title}}</title></head>
<body><h1>{{.Title}}</h1><p>{{.Text}}</p></body></html>
`))

// cookiePath is the base URL's path with /oidc/: behind a proxy that
// serves Warden under a prefix, the cookie must still come back.
func cookiePath(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return "/oidc/"
	}
	return strings.TrimSuffix(u.Path, "/") + "/oidc/"
}

// create makes the sign-in's user (identity.oidc.create_users) and says in
// note which groups it is in, or that it is in none and so reaches nothing.
// Claim groups the policy does not define are ignored and logged. Any
// error fails the sign-in closed.
func (s *Service) create(ctx context.Context, claim string, groups []string) (user, note string, err error) {
	user, in, ignored, err := s.opt.Create.CreateSignInUser(ctx, claim, groups)
	if err != nil {
		return "", "", err
	}
	if len(ignored) > 0 {
		s.log.Warn("sign-in groups the policy does not define were ignored", "user", user, "groups", ignored)
	}
	if len(in) == 0 {
		return user, "you are in no group of the policy, so you can reach no host yet; ask an administrator", nil
	}
	return user, "groups: " + strings.Join(in, ", "), nil
}
