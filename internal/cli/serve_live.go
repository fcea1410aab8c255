package cli

import (
	"context"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/recorder"
)

// serveLive gives the console the gateway's live view and kill
// (console.Live). The console is built before the gateway, so each call
// looks the gateway up; until it runs, no session is live.
type serveLive struct{ r *running }

func (s serveLive) LiveSession(ctx context.Context, user, id string) (recorder.Header, error) {
	if g := s.r.srv; g != nil {
		return g.LiveSession(ctx, user, id)
	}
	return recorder.Header{}, gateway.ErrNoLiveSession
}

func (s serveLive) WatchSession(ctx context.Context, user, id string) (recorder.Feed, error) {
	if g := s.r.srv; g != nil {
		return g.WatchSession(ctx, user, id)
	}
	return recorder.Feed{}, gateway.ErrNoLiveSession
}

func (s serveLive) KillSession(ctx context.Context, user, id, reason string) error {
	if g := s.r.srv; g != nil {
		return g.KillSession(ctx, user, id, reason)
	}
	return gateway.ErrNoLiveSession
}

// liveIDs lists the gateway's live sessions for the console's session
// list (console.Deps.LiveIDs).
func (s serveLive) liveIDs() []string {
	if g := s.r.srv; g != nil {
		return g.LiveSessionIDs()
	}
	return nil
}
