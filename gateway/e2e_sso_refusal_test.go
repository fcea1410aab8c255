package gateway_test

import (
	"os"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestRefusalSignInChannelsAreBounded: a key nobody knows may connect to
// sign in, one channel per connection; every further channel is refused
// and audited. Those refusals are as cheap for the stranger as any other
// after authentication (one packet each), so they must count against the
// refusal budget (postauth_report.go: 20 events of a type per user and
// minute, the rest aggregated) rather than grow the chain by one event
// per packet.
func TestRefusalSignInChannelsAreBounded(t *testing.T) {
	sb := newSSOBed(t)
	c := strangerClient(t, sb)
	first, _, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	const tries = 100
	for i := 0; i < tries; i++ {
		if ch, _, err := c.OpenChannel("session", nil); err == nil {
			ch.Close()
			t.Fatalf("channel %d on a sign-in connection accepted", i+2)
		}
	}
	sb.waitEvent("session.refused", "second channel")
	if n := len(sb.events("session.refused")); n == 0 || n > 20 {
		t.Fatalf("%d session.refused events for %d refused channels in a minute, want at most 20 (the rest aggregated)", n, tries)
	}
}

// TestRefusalSignInChannelRequestsAreAudited: on an unknown key's sign-in
// channel, what is neither a start nor terminal setup (agent forwarding,
// a made-up request, a malformed exec) is answered no, and on the record
// like the unknown key's other refusals (agent forwarding as
// forward.refused, as on any channel).
func TestRefusalSignInChannelRequestsAreAudited(t *testing.T) {
	sb := newSSOBed(t)
	c := strangerClient(t, sb)
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go gossh.DiscardRequests(reqs)
	for _, r := range []struct {
		typ     string
		payload []byte
		event   string
	}{
		{"auth-agent-req@openssh.com", nil, "forward.refused"},
		{"made-up@example.com", nil, "session.refused"},
		{"exec", []byte{0, 0, 0, 9, 'x'}, "session.refused"},
	} {
		if ok, err := ch.SendRequest(r.typ, true, r.payload); ok || err != nil {
			t.Fatalf("%s: ok=%v err=%v, want refused", r.typ, ok, err)
		}
		sb.waitEvent(r.event, r.typ)
	}
}

// strangerClient connects with the key nobody knows, as a raw x/crypto
// client (which can send what OpenSSH does not); closed at the test's end.
func strangerClient(t *testing.T, sb *ssoBed) *gossh.Client {
	t.Helper()
	raw, err := os.ReadFile(sb.stranger.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	c, err := gossh.Dial("tcp", "127.0.0.1:"+sb.port, &gossh.ClientConfig{
		User: "me", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(sb.hostKey), Timeout: 10 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
