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
	defer c.Close()
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
