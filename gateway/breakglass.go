package gateway

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/rotate"
)

// rotator replaces a break-glass role's static key on a host and in Vault.
type rotator interface {
	Rotate(ctx context.Context, host *policy.Host, login, kvPath string) (rotate.Result, error)
}

// notifier delivers alerts; *notify.Webhook satisfies it.
type notifier interface {
	Notify(ctx context.Context, ev notify.Event)
}

// rotationTimeout bounds one rotation (several SSH logins and Vault calls).
const rotationTimeout = 2 * time.Minute

// GrantEnded is the workflow's OnGrantEnd hook: the grant's live sessions
// close at once, and a break-glass role's static credential is rotated,
// because a key used in an emergency must be assumed known.
func (s *Server) GrantEnded(g jit.Grant) {
	cause := errGrantRevoked
	if g.EndReason == jit.EndExpired {
		cause = errGrantExpired
	}
	s.live.cancelGrant(g.ID, cause)
	role := s.Policy().Role(g.Role)
	if role == nil || role.Credential.VaultKV == "" {
		return
	}
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.rotateAfter(g, role)
	}()
}

// rotateAfter rotates the credential on the role's host and records the
// outcome: an audit event (rotation.result, read by the evidence packet) and
// an alert. A failure stays an open item until a later rotation succeeds.
func (s *Server) rotateAfter(g jit.Grant, role *policy.Role) {
	ctx, cancel := context.WithTimeout(context.Background(), rotationTimeout)
	defer cancel()
	data := map[string]any{"grant_id": g.ID, "tenant": g.Tenant, "role": g.Role, "kv_path": role.Credential.VaultKV}
	err := s.rotateCredential(ctx, role, data)
	data["ok"] = err == nil
	text := fmt.Sprintf("break-glass credential of %s rotated after grant %d", role.Name, g.ID)
	if err != nil {
		data["error"] = err.Error()
		text = fmt.Sprintf(":rotating_light: break-glass credential of %s NOT rotated after grant %d: %s", role.Name, g.ID, notify.Escape(err.Error()))
		s.log.Error("break-glass rotation failed", "grant", g.ID, "role", role.Name, "err", err)
	}
	s.audit(ctx, "rotation.result", "warden", "grant:"+fmt.Sprint(g.ID), data)
	if s.opt.Notifier != nil {
		s.opt.Notifier.Notify(ctx, notify.Event{Type: notify.TypeRotationResult, Text: text, Fields: data})
	}
}

func (s *Server) rotateCredential(ctx context.Context, role *policy.Role, data map[string]any) error {
	if s.opt.Rotator == nil {
		return fmt.Errorf("no rotator configured")
	}
	hosts := s.Policy().HostsOf(role)
	// One static key opens one host: rotating it on a second host would
	// log in there with the key the first rotation just replaced.
	if len(hosts) != 1 || len(role.Logins) != 1 {
		return fmt.Errorf("a static credential must open exactly one host and login (role covers %d hosts, %d logins)", len(hosts), len(role.Logins))
	}
	data["host"] = hosts[0].Name
	res, err := s.opt.Rotator.Rotate(ctx, hosts[0], role.Logins[0], role.Credential.VaultKV)
	data["old_fingerprint"], data["new_fingerprint"] = res.OldFingerprint, res.NewFingerprint
	data["old_version"], data["new_version"] = res.OldVersion, res.NewVersion
	data["steps"] = res.Steps
	return err
}
