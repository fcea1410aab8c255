package sso

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Browser sign-ins: the same identity provider, client and user mapping as
// `ssh gw login`, for a Warden page that signs a browser in (the console,
// package console). BrowserSignIn starts one and returns the IdP's URL;
// the IdP comes back to the one registered redirect URI, /oidc/callback,
// whose handler tells the two kinds apart by their state. There is no key
// to bind: the result is the Warden user, handed to the page's done
// function, which starts its own browser session.
//
// The threats are those of the SSH sign-in (doc.go) without the terminal:
//
//   - Login CSRF, an attacker finishing their own IdP sign-in and sending
//     the victim the callback URL: the callback is accepted only in the
//     browser that started the sign-in (the hash of its warden_sso
//     cookie, SameSite=Lax so that the IdP's redirect carries it,
//     __Host- under https), else refused.
//   - Replay: the state is used once; the code is redeemed with the
//     sign-in's PKCE verifier; the ID token must carry its nonce.
//   - Memory: pending browser sign-ins count towards the same bounds as
//     SSH ones (maxPending in all, maxPendingPerSrc per source) and
//     expire after PendingTTL.

// BrowserDone answers the browser once a browser sign-in has ended: user
// is the Warden user, or err a Refusal (its text may be shown) or an
// internal error.
type BrowserDone func(w http.ResponseWriter, r *http.Request, user string, err error)

// browserFlow is one pending browser sign-in, keyed by its state.
type browserFlow struct {
	base, src       string
	nonce, verifier string
	browser         [32]byte
	expires         time.Time
	done            BrowserDone
}

// IdPName is how a page names the identity provider: the issuer's host.
func (s *Service) IdPName() string {
	if u, err := url.Parse(s.opt.OIDC.Issuer); err == nil && u.Host != "" {
		return u.Host
	}
	return "your identity provider"
}

// BrowserSignIn starts a sign-in of the browser of r through the identity
// provider and returns the URL to send it to. done answers the browser at
// the callback. A Refusal (too many pending sign-ins) may be shown.
func (s *Service) BrowserSignIn(w http.ResponseWriter, r *http.Request, done BrowserDone) (string, error) {
	host, _, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
	}
	base := s.opt.BaseURL(host)
	if base == "" {
		return "", errors.New("sso: the HTTP listener is not running")
	}
	cookie, err := s.browserCookie(w, r, base)
	if err != nil {
		return "", err
	}
	state, err1 := s.random(32)
	nonce, err2 := s.random(32)
	verifier, err3 := s.random(32)
	if err := errors.Join(err1, err2, err3); err != nil {
		return "", err
	}
	to, err := s.idp.authURL(r.Context(), base+callbackPath, state, nonce, verifier)
	if err != nil {
		return "", err
	}
	src := sourceOf(r.RemoteAddr)
	f := &browserFlow{base: base, src: src, nonce: nonce, verifier: verifier, browser: sha256.Sum256([]byte(cookie)),
		expires: s.now().Add(s.opt.PendingTTL), done: done}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropExpiredBrowserLocked()
	switch {
	case len(s.byID)+len(s.browserFlows) >= maxPending:
		return "", refusal("too many sign-ins are waiting; try again in a few minutes")
	case s.bySource[src]+s.browserBySrc[src] >= maxPendingPerSrc:
		return "", refusal("too many sign-ins are waiting from your address; finish them or wait a few minutes")
	}
	s.browserFlows[state] = f
	s.browserBySrc[src]++
	return to, nil
}

// takeBrowserFlow removes and returns the browser sign-in of state, if
// it is pending and unexpired. Must hold s.mu.
func (s *Service) takeBrowserFlowLocked(state string) *browserFlow {
	f := s.browserFlows[state]
	if f == nil {
		return nil
	}
	delete(s.browserFlows, state)
	if s.browserBySrc[f.src]--; s.browserBySrc[f.src] <= 0 {
		delete(s.browserBySrc, f.src)
	}
	s.used[state] = f.expires
	if !s.now().Before(f.expires) {
		return nil
	}
	return f
}

// dropExpiredBrowserLocked forgets expired browser sign-ins. Must hold s.mu.
func (s *Service) dropExpiredBrowserLocked() {
	now := s.now()
	for st, f := range s.browserFlows {
		if !now.Before(f.expires) {
			delete(s.browserFlows, st)
			if s.browserBySrc[f.src]--; s.browserBySrc[f.src] <= 0 {
				delete(s.browserBySrc, f.src)
			}
		}
	}
}

// browserCallback finishes a browser sign-in at /oidc/callback: the
// browser must be the one that started it, then the code is redeemed and
// the identity mapped to a Warden user as for `ssh gw login`.
func (s *Service) browserCallback(w http.ResponseWriter, r *http.Request, f *browserFlow) {
	q := r.URL.Query()
	sum := sha256.Sum256([]byte(readCookie(r, f.base)))
	if subtle.ConstantTimeCompare(sum[:], f.browser[:]) != 1 {
		f.done(w, r, "", refusal("this sign-in was started in another browser; if someone sent you a sign-in link, do not use it"))
		return
	}
	if e := q.Get("error"); e != "" {
		f.done(w, r, "", refusal("the identity provider refused the sign-in"))
		return
	}
	id, err := s.idp.exchange(r.Context(), f.base+callbackPath, q.Get("code"), f.verifier, f.nonce)
	if err != nil {
		if errors.Is(err, errClaim) {
			f.done(w, r, "", refusal(strings.TrimPrefix(err.Error(), errClaim.Error()+": ")))
			return
		}
		s.log.Error("browser sign-in failed", "err", err)
		f.done(w, r, "", errors.New("the identity provider's answer could not be verified"))
		return
	}
	user, _, shown, err := s.signInUser(r.Context(), id)
	if err != nil {
		s.log.Error("browser sign-in user not mapped", "err", err)
	}
	if shown != "" {
		f.done(w, r, "", refusal(shown))
		return
	}
	f.done(w, r, user, nil)
}

// signInUser maps a verified identity to its Warden user, the one rule
// for SSH and browser sign-ins: Users.SignInUser, and with create_users
// the Creator (which also refreshes a created user's groups). shown, when
// not empty, is the refusal to show; err its cause for the log.
func (s *Service) signInUser(ctx context.Context, id identity) (user, note, shown string, err error) {
	user, ok := s.opt.Users.SignInUser(id.Username)
	// A user an earlier sign-in created gets its groups from this claim
	// again (a mover in the IdP moves at the next sign-in).
	if s.opt.OIDC.CreateUsers && (!ok || s.opt.Create.CreatedBySignIn(user)) {
		claim := id.Username
		if ok {
			claim = user
		}
		if user, note, err = s.create(ctx, claim, id.Groups); err != nil {
			q := quoteClaim(id.Username)
			return "", "", q + " (from the identity provider) could not be made a Warden user; ask an administrator", err
		}
		ok = true
	}
	if !ok {
		return "", "", quoteClaim(id.Username) + " (from the identity provider) is not a Warden user; ask an administrator to add you", nil
	}
	return user, note, "", nil
}
