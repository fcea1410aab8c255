package sso

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// idpTimeout bounds every request to the identity provider: discovery,
// keys, token and userinfo.
const idpTimeout = 10 * time.Second

// provider is the OpenID Provider as Warden's confidential client sees it.
// Discovery happens at the first sign-in and is kept once it worked, so a
// gateway starts while its IdP is down and recovers when it returns.
type provider struct {
	issuer, clientID, secret   string
	usernameClaim, groupsClaim string
	httpc                      *http.Client

	mu  sync.Mutex
	op  *oidc.Provider
	cfg oauth2.Config
	ver *oidc.IDTokenVerifier
}

func (p *provider) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, p.httpc)
}

// discover returns the provider's endpoints, fetching them once.
func (p *provider) discover(ctx context.Context) (*oidc.Provider, oauth2.Config, *oidc.IDTokenVerifier, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.op != nil {
		return p.op, p.cfg, p.ver, nil
	}
	ctx, cancel := context.WithTimeout(ctx, idpTimeout)
	defer cancel()
	// The issuer in the discovery document must equal the configured one
	// (go-oidc checks): a document served for another issuer is refused.
	op, err := oidc.NewProvider(p.ctx(ctx), p.issuer)
	if err != nil {
		return nil, oauth2.Config{}, nil, fmt.Errorf("sso: discover %s: %w", p.issuer, err)
	}
	p.op = op
	p.cfg = oauth2.Config{ClientID: p.clientID, ClientSecret: p.secret, Endpoint: op.Endpoint(),
		Scopes: []string{oidc.ScopeOpenID, "profile", "email"}}
	// The verifier checks the signature against the provider's keys (the
	// key set is fetched from jwks_uri and refreshed by go-oidc), the
	// issuer, the audience (our client_id) and expiry.
	p.ver = op.Verifier(&oidc.Config{ClientID: p.clientID})
	return p.op, p.cfg, p.ver, nil
}

// authURL is where the browser goes to sign in: the authorization code
// flow with state, nonce and a PKCE S256 challenge.
// redirect is the callback URL on the same host as the page that sent the
// browser, so that the browser's cookie comes back with it.
func (p *provider) authURL(ctx context.Context, redirect, state, nonce, verifier string) (string, error) {
	_, cfg, _, err := p.discover(ctx)
	if err != nil {
		return "", err
	}
	cfg.RedirectURL = redirect
	return cfg.AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// identity is what a completed sign-in says about the person.
type identity struct {
	Subject  string
	Username string
	Groups   []string
}

// errClaim marks a sign-in whose claims do not name a user; its text is
// safe to show.
var errClaim = errors.New("claim")

// exchange redeems code with the PKCE verifier, verifies the ID token and
// its nonce, and reads the username and groups claims: from the ID token,
// or from the userinfo endpoint when the ID token leaves them out (many
// IdPs keep the ID token small). Userinfo answers for the token's subject
// only: a different sub is refused (OpenID Connect Core §5.3.2).
func (p *provider) exchange(ctx context.Context, redirect, code, verifier, nonce string) (identity, error) {
	op, cfg, ver, err := p.discover(ctx)
	if err != nil {
		return identity{}, err
	}
	cfg.RedirectURL = redirect
	ctx, cancel := context.WithTimeout(p.ctx(ctx), idpTimeout)
	defer cancel()
	tok, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		return identity{}, fmt.Errorf("sso: redeem code: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return identity{}, errors.New("sso: token response has no id_token")
	}
	idt, err := ver.Verify(ctx, raw)
	if err != nil {
		return identity{}, fmt.Errorf("sso: verify id_token: %w", err)
	}
	// The nonce ties the ID token to this browser's sign-in: a token
	// minted for another authorization request is refused.
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return identity{}, errors.New("sso: id_token nonce does not match the sign-in")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return identity{}, fmt.Errorf("sso: id_token claims: %w", err)
	}
	if _, has := claims[p.usernameClaim]; !has {
		ui, err := op.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			return identity{}, fmt.Errorf("sso: userinfo: %w", err)
		}
		if ui.Subject != idt.Subject {
			return identity{}, errors.New("sso: userinfo is about another subject")
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err != nil {
			return identity{}, fmt.Errorf("sso: userinfo claims: %w", err)
		}
		for k, v := range extra {
			if _, has := claims[k]; !has {
				claims[k] = v
			}
		}
	}
	id := identity{Subject: idt.Subject}
	name, ok := claims[p.usernameClaim].(string)
	if !ok || name == "" {
		return identity{}, fmt.Errorf("%w: the identity provider sent no %s", errClaim, p.usernameClaim)
	}
	id.Username = name
	if gs, ok := claims[p.groupsClaim].([]any); ok {
		for _, g := range gs {
			if s, ok := g.(string); ok {
				id.Groups = append(id.Groups, s)
			}
		}
	}
	return id, nil
}
