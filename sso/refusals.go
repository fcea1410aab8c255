package sso

import (
	"context"
	"net/http"
	"sync"
	"time"
)

// The sign-in pages (/oidc/start, /oidc/callback) are open to anyone, and
// every refusal there is an sso.refused event (README: every bind, end and
// refusal is a chained audit event). A client spraying made-up links,
// codes or states must not grow the audit chain without limit, so these
// events are bounded as the console's sign-in refusals are: up to
// refusalBurst a minute, globally (a per-source bound would let many
// addresses write without bound); the rest are logged and counted, and the
// next event written says how many were left out (suppressed_before).
// Refusals that end a pending sign-in (refuse) need no bound: each ends
// one of the bounded pending sign-ins.

const refusalBurst = 60

type refusalBudget struct {
	mu         sync.Mutex
	minute     time.Time
	n          int
	suppressed int
}

// allow reports whether a refusal at now may be written, and if so how
// many were left out before it.
func (b *refusalBudget) allow(now time.Time) (ok bool, suppressed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m := now.Truncate(time.Minute); !m.Equal(b.minute) {
		b.minute, b.n = m, 0
	}
	if b.n >= refusalBurst {
		b.suppressed++
		return false, 0
	}
	b.n++
	suppressed, b.suppressed = b.suppressed, 0
	return true, suppressed
}

// refusePage records a refusal of a sign-in page's request within the
// budget: subject is the pending sign-in's key fingerprint when the
// request named a live one, else "". The page's answer does not depend on
// it.
func (s *Service) refusePage(ctx context.Context, r *http.Request, subject, step, reason string, data map[string]any) {
	s.log.Info("sign-in page refused", "step", step, "reason", reason, "fingerprint", subject, "browser_addr", r.RemoteAddr)
	ok, suppressed := s.refusals.allow(s.now())
	if !ok {
		return
	}
	if data == nil {
		data = map[string]any{}
	}
	data["reason"], data["step"], data["browser_addr"] = reason, step, r.RemoteAddr
	if suppressed > 0 {
		data["suppressed_before"] = suppressed
	}
	s.audit(ctx, EventRefused, "", subject, data)
}
