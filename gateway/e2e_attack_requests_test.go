package gateway_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

type envRequest struct{ Name, Value string }

// TestAttackRequestsBeforeStartAreBounded: the requests a channel sends
// before it starts (env, pty-req) wait in the gateway until the host is
// connected, and a client may send them for up to the request timeout at
// the speed of its link. Past 128 requests or 64 KiB they are refused at
// once, audited and not forwarded; the ones within the bounds reach the
// host. The names are ones the gateway passes to hosts (LC_*): others are
// dropped before they are queued.
func TestAttackRequestsBeforeStartAreBounded(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "AcceptEnv LC_WARDEN_*\n"})
	c := b.goClientAs(b.alice, "root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go gossh.DiscardRequests(reqs)

	big := strings.Repeat("x", 100<<10)
	if _, err := ch.SendRequest("env", false, gossh.Marshal(envRequest{"LC_WARDEN_BIG", big})); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 200; i++ {
		if _, err := ch.SendRequest("env", false, gossh.Marshal(envRequest{fmt.Sprintf("LC_WARDEN_%d", i), "v"})); err != nil {
			t.Fatal(err)
		}
	}
	// Past the bounds the answer comes at once, before the start: queued,
	// it would come only from the host, after the start.
	ok, err := ch.SendRequest("env", true, gossh.Marshal(envRequest{"LC_WARDEN_LAST", "v"}))
	if ok || err != nil {
		t.Fatalf("env past the bounds: %v %v", ok, err)
	}
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{
		"env | grep -c '^LC_WARDEN_[0-9]'; printenv LC_WARDEN_BIG | wc -c; printenv LC_WARDEN_0"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	out, err := io.ReadAll(ch)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != "128\n0\nv\n" {
		t.Fatalf("the host saw %q, want the first 128 small variables and not the big one", out)
	}
	b.waitEvent("request.refused", "env")
}
