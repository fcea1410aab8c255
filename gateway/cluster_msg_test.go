package gateway

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/jit"
)

// A bus payload is read whole and strictly, or not at all.
func TestDecodeMsgIsStrict(t *testing.T) {
	var k killMsg
	if err := decodeMsg([]byte(`{"session":"aaaaaaaaaaaaaaaaaaaaaaaaaa","actor":"carol","reason":"r","node":"gw-b"}`), &k); err != nil || k.Actor != "carol" {
		t.Fatalf("good message: %+v %v", k, err)
	}
	for _, bad := range []string{
		``, `null x`, `{"session":"a"} {}`, `{"session":"a","extra":1}`, `{"session":5}`, `[1]`,
		`{"session":"` + strings.Repeat("a", cluster.MaxPayload) + `"}`,
	} {
		var m killMsg
		if err := decodeMsg([]byte(bad), &m); err == nil {
			t.Errorf("accepted %.60q", bad)
		}
	}
	for _, r := range []string{"", "Revoked", "revoked!", strings.Repeat("a", 33)} {
		if checkEndReason(r) == nil {
			t.Errorf("end reason %q accepted", r)
		}
	}
	if checkNode("gw a") == nil || checkNode("GW") == nil || checkNode(strings.Repeat("a", 64)) == nil ||
		checkNode("") != nil || checkNode("gw-a.example") != nil || checkNode("-gw") != nil {
		t.Error("node names")
	}
	if grantCause("expired") != errGrantExpired || grantCause("deprovisioned") != errGrantRevoked {
		t.Error("grant causes")
	}
}

// fakeGrants is the workflow as resync reads it: grant 1 running, grant 2
// revoked, grant 3 expired.
type fakeGrants struct{ elevation }

func (fakeGrants) ActiveGrants(context.Context) ([]jit.Grant, error) {
	return []jit.Grant{{ID: 1, ExpiresAt: time.Now().Add(time.Hour)}}, nil
}

func (fakeGrants) AllGrants(context.Context) ([]jit.Grant, error) {
	return []jit.Grant{{ID: 1, ExpiresAt: time.Now().Add(time.Hour)}, {ID: 2, EndReason: jit.EndRevoked},
		{ID: 3, EndReason: jit.EndExpired}}, nil
}

// After the bus reconnects, each live session of a grant that ended while
// messages may have been lost ends with the grant's cause; the others run
// on. A kill for a session this node does not hold does nothing.
func TestResyncEndsSessionsOfEndedGrants(t *testing.T) {
	s := &Server{opt: Options{JIT: fakeGrants{}, Now: time.Now}, log: slog.Default(), live: newRegistry()}
	causes := map[string]*error{}
	for i, g := range []int64{1, 2, 3, 0} {
		id := strings.Repeat(string(rune('a'+i)), 26)
		var cause error
		s.live.add(&session{id: id, grantID: g, cancel: func(err error) {
			if cause == nil {
				cause = err
			}
		}})
		causes[id] = &cause
	}
	s.onKill([]byte(`{"session":"zzzzzzzzzzzzzzzzzzzzzzzzzz","actor":"carol","reason":""}`))
	s.resync()
	want := map[string]error{strings.Repeat("a", 26): nil, strings.Repeat("b", 26): errGrantRevoked,
		strings.Repeat("c", 26): errGrantExpired, strings.Repeat("d", 26): nil}
	for id, w := range want {
		if got := *causes[id]; got != w {
			t.Errorf("session %s: cause %v; want %v", id[:1], got, w)
		}
	}
}
