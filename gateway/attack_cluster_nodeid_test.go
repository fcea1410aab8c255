package gateway

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/policy"
)

// Attack (a node_id the policy takes that the bus refused): node_id is 1
// to 63 of a-z, 0-9, '.', '_', '-' (README), so "-gw-b" and ".gw-b" load;
// but the other nodes checked a sender's name with the host-name rule,
// which refuses a leading '-' or '.', and dropped every message of such a
// node. A grant revoked there, or a user deprovisioned, went on on the
// other nodes until the 30 s re-read, and a kill sent from it never ran.
// The bus takes what the policy takes.
func TestAttackMessagesOfEveryValidNodeIDAreHeard(t *testing.T) {
	for _, id := range []string{"-gw-b", ".gw-b", "gw_b", "9"} {
		cfg, err := policy.Parse([]byte(fmt.Sprintf("node_id: %q\n", id)), "warden.yaml")
		if err != nil || cfg.NodeID != id {
			t.Fatalf("node_id %q: %v (the policy's shape changed: change this test)", id, err)
		}
		s := &Server{opt: Options{Now: time.Now}, log: slog.Default(), live: newRegistry(), busNode: "gw-a"}
		var grantCause, killCause error
		s.live.add(&session{id: strings.Repeat("a", 26), grantID: 7, cancel: func(err error) { grantCause = err }})
		s.live.add(&session{id: strings.Repeat("b", 26), cancel: func(err error) { killCause = err }})
		s.onGrantEnded([]byte(fmt.Sprintf(`{"grant":7,"end_reason":"revoked","node":%q}`, id)))
		s.onKill([]byte(fmt.Sprintf(`{"session":%q,"actor":"carol","reason":"r","node":%q}`, strings.Repeat("b", 26), id)))
		if grantCause != errGrantRevoked {
			t.Errorf("node %q: grant_ended not acted on (cause %v)", id, grantCause)
		}
		if killCause != errKilled {
			t.Errorf("node %q: kill not acted on (cause %v)", id, killCause)
		}
	}
}
