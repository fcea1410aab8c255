package vault

import (
	"context"
	"time"

	"github.com/hashicorp/vault/api"
)

// Backoff between re-login attempts after renewal ended and Vault could
// not be reached; Sign also logs in on demand, so this only keeps a token
// ready for the next session.
const (
	minRelogin = time.Second
	maxRelogin = 30 * time.Second
)

// relogin logs in again unless another caller already did since login
// generation seen, and hands the new token to the client and the renewal
// goroutine.
func (v *Vault) relogin(ctx context.Context, seen uint64) error {
	v.loginMu.Lock()
	defer v.loginMu.Unlock()
	if v.gen.Load() != seen {
		return nil
	}
	anon, err := v.client.Clone()
	if err != nil {
		return err
	}
	// A clone picks up VAULT_TOKEN from the environment; logins must not
	// present a token.
	anon.ClearToken()
	s, err := v.auth.login(ctx, anon)
	if err != nil {
		return err
	}
	v.client.SetToken(s.Auth.ClientToken)
	v.gen.Add(1)
	select {
	case <-v.renewed:
	default:
	}
	v.renewed <- s
	v.log.Info("vault: logged in", "method", v.auth.cfg.Method, "ttl", time.Duration(s.Auth.LeaseDuration)*time.Second, "renewable", s.Auth.Renewable)
	return nil
}

// watch keeps the current token alive with a LifetimeWatcher. When renewal
// ends (max TTL reached, or the token was revoked and renewal failed until
// its lease ran out), an AppRole login is repeated with backoff until it
// succeeds. A configured token cannot be replaced by Warden: renewal ending
// is logged, and Sign fails closed once the token has expired, trying the
// token file again on each refusal.
func (v *Vault) watch(ctx context.Context) {
	defer v.wg.Done()
	var (
		w       *api.LifetimeWatcher
		done    <-chan error
		renewCh <-chan *api.RenewOutput
		retry   <-chan time.Time
		backoff = minRelogin
	)
	stop := func() {
		if w != nil {
			w.Stop()
		}
		w, done, renewCh = nil, nil, nil
	}
	defer stop()
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-v.renewed:
			stop()
			retry, backoff = nil, minRelogin
			w, done, renewCh = v.startWatcher(s)
		case out := <-renewCh:
			if out != nil && out.Secret != nil && out.Secret.Auth != nil {
				v.log.Debug("vault: token renewed", "ttl", time.Duration(out.Secret.Auth.LeaseDuration)*time.Second)
			}
		case err := <-done:
			stop()
			if v.auth.cfg.Method != AuthAppRole {
				v.log.Warn("vault: token renewal ended; sessions fail closed once it expires", "err", err)
				continue
			}
			v.log.Info("vault: token renewal ended; logging in again", "err", err)
			retry = time.After(0)
		case <-retry:
			retry = nil
			lctx, cancel := context.WithTimeout(ctx, v.timeout)
			err := v.relogin(lctx, v.gen.Load())
			cancel()
			if err != nil {
				v.log.Warn("vault: log in again failed", "err", err, "retry_in", backoff)
				retry = time.After(backoff)
				backoff = min(2*backoff, maxRelogin)
			}
		}
	}
}

// startWatcher starts renewing s. A token without a lease (such as a root
// token) never expires and needs no watcher.
func (v *Vault) startWatcher(s *api.Secret) (*api.LifetimeWatcher, <-chan error, <-chan *api.RenewOutput) {
	if s.Auth == nil || s.Auth.LeaseDuration <= 0 {
		return nil, nil, nil
	}
	w, err := v.client.NewLifetimeWatcher(&api.LifetimeWatcherInput{Secret: s})
	if err != nil {
		v.log.Warn("vault: cannot watch token lifetime", "err", err)
		return nil, nil, nil
	}
	go w.Start()
	return w, w.DoneCh(), w.RenewCh()
}
