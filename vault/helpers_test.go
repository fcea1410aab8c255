package vault

import (
	"math/rand/v2"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// seeded returns a deterministic random stream, so that keys and serials
// are reproducible in a test run.
func seeded(seed byte) *rand.ChaCha8 {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

// fixedClock returns a clock stopped at t.
func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// testTime is a whole second, so certificate validity compares exactly.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// req is a valid sign request; tests change one field at a time.
func req() SignRequest {
	return SignRequest{SessionID: "k7q2mxw3abcdefghijklmnopqr", User: "alice", Login: "root", TTL: 2 * time.Minute}
}

// checkUserCert asserts the fields every Warden certificate must have.
func checkUserCert(t *testing.T, cert *ssh.Certificate, r SignRequest) {
	t.Helper()
	if cert.CertType != ssh.UserCert {
		t.Errorf("cert type = %d, want user", cert.CertType)
	}
	if want := "warden:" + r.SessionID + ":" + r.User; cert.KeyId != want {
		t.Errorf("key id = %q, want %q", cert.KeyId, want)
	}
	if len(cert.ValidPrincipals) != 1 || cert.ValidPrincipals[0] != r.Login {
		t.Errorf("principals = %q, want [%q]", cert.ValidPrincipals, r.Login)
	}
	if len(cert.CriticalOptions) != 0 {
		t.Errorf("critical options = %v, want none", cert.CriticalOptions)
	}
	want := map[string]string{}
	if r.PTY {
		want["permit-pty"] = ""
	}
	if len(cert.Extensions) != len(want) {
		t.Errorf("extensions = %v, want %v", cert.Extensions, want)
	}
	for k := range want {
		if _, ok := cert.Extensions[k]; !ok {
			t.Errorf("extensions = %v, want %v", cert.Extensions, want)
		}
	}
}
