package gateway_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
)

// TestAttackRefusalsDoNotGrowTheChainWithoutBound: an authenticated client
// sends what the gateway refuses, thousands of times, each for one cheap
// packet: tcpip-forward global requests, direct-tcpip and x11 channel
// opens, session channels to a host it may not reach, a subsystem other
// than sftp asked again and again on one channel, unknown commands. The
// chain is permanent, so it must not gain a row each: per user, type and
// minute, the first 20 refusals are events of their own and the rest one
// refusals.suppressed event with their counts and targets. The forwarding
// noise sent first does not use up the events of the probes that follow.
func TestAttackRefusalsDoNotGrowTheChainWithoutBound(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	const n = 300
	c := b.goClientAs(b.alice, "root@web01")
	for i := 0; i < n; i++ {
		if ok, _, err := c.SendRequest("tcpip-forward", true, gossh.Marshal(struct {
			Addr string
			Port uint32
		}{"127.0.0.1", uint32(10000 + i)})); ok || err != nil {
			t.Fatalf("tcpip-forward %d: %v %v", i, ok, err)
		}
		if _, err := c.Dial("tcp", "127.0.0.1:22"); err == nil {
			t.Fatal("direct-tcpip admitted")
		}
	}
	// One channel asks for a forbidden subsystem over and over; it may
	// ask again after a refusal, so the loop is one channel's.
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if err := s.RequestSubsystem("x"); err == nil {
			t.Fatal("subsystem x admitted")
		}
	}
	s.Close()
	// Channels to a host alice may not reach, refused at open.
	denied := b.goClientAs(b.alice, "root@nohost")
	for i := 0; i < n/10; i++ {
		if out, errOut, code := runGoErr(denied, "id"); code != 1 || !strings.Contains(errOut, "unknown host nohost") {
			t.Fatalf("unknown host: %d %q %q", code, out, errOut)
		}
	}
	cmd := b.goClientAs(b.alice, "gw")
	for i := 0; i < n/10; i++ {
		if _, _, code := runGoErr(cmd, "no-such-command"); code != 2 {
			t.Fatalf("unknown command: status %d", code)
		}
	}

	gateway.FlushRefusals(b.gw)
	total := 0
	for _, typ := range []string{"forward.refused", "session.refused", "command.refused"} {
		n := len(b.events(typ))
		if n != 20 {
			t.Fatalf("%d %s events for one user in one minute, want 20 and an aggregate", n, typ)
		}
		total += n
	}
	b.waitEvent("session.refused", "subsystem not allowed")
	agg := b.events("refusals.suppressed")
	if len(agg) != 1 || agg[0].Actor != "alice" {
		t.Fatalf("aggregate events %+v", agg)
	}
	counts, _ := agg[0].Data["counts"].(map[string]any)
	sum := 0
	for _, v := range counts {
		i, _ := v.(json.Number).Int64()
		sum += int(i)
	}
	want := 2*n + n + n/10 + n/10 - total
	if sum != want || number(t, agg[0].Data, "suppressed") != want {
		t.Fatalf("aggregate counts %v (sum %d), want %d suppressed: %+v", counts, sum, want, agg[0])
	}
	for _, k := range []string{"forward.refused tcpip-forward", "forward.refused direct-tcpip", "session.refused not authorized", "command.refused"} {
		if _, ok := counts[k]; !ok {
			t.Errorf("no count for %q in %v", k, counts)
		}
	}
	subjects := fmt.Sprint(agg[0].Data["subjects"])
	if !strings.Contains(subjects, "root@nohost") {
		t.Errorf("the probed target is not among the subjects: %s", subjects)
	}
	// Another user's refusals are not lost in alice's burst.
	if _, errOut, code := b.run(b.bob, "root@nohost", "id"); code != 1 || !strings.Contains(errOut, "unknown host") {
		t.Fatalf("bob: %d %q", code, errOut)
	}
	b.waitEvent("session.refused", "bob")
}
