package sso

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// pending is one sign-in between `ssh gw login` and the IdP's redirect.
// Its fields after done are guarded by Service.mu.
type pending struct {
	id         string // in the link; 256 random bits
	code       string // what the person types; shown only in their terminal
	key        gossh.PublicKey
	fp         string
	clientAddr string
	src        string // clientAddr's source, for the per-source bound
	base       string // the links' base URL; the callback uses the same host
	created    time.Time
	expires    time.Time
	done       chan Result // buffered 1; written once by finish
	stop       func()      // stops the context hook and the expiry timer

	attempts  int      // wrong codes typed so far
	confirmed bool     // the code was typed; state, nonce and verifier are set
	browser   [32]byte // SHA-256 of the confirming browser's cookie
	state     string
	nonce     string
	verifier  string
	finished  bool
}

// Pending is a sign-in the SSH client waits on.
type Pending struct {
	URL         string    // the page to open
	Code        string    // the code to type there, e.g. "BCDF-GHJK"
	Fingerprint string    // the key being signed in
	ExpiresAt   time.Time // when the link stops working
	p           *pending
}

// Result is how a sign-in ended: the user and binding expiry, or Err, a
// refusal whose text may be shown to the person.
type Result struct {
	User  string
	Until time.Time
	Note  string // a line for the terminal after "signed in" (a created user's groups)
	Err   error
}

// Wait blocks until the sign-in ends or ctx is done.
func (p *Pending) Wait(ctx context.Context) Result {
	select {
	case r := <-p.p.done:
		return r
	case <-ctx.Done():
		return Result{Err: refusal("sign-in cancelled")}
	}
}

// Refusal is an error whose text is meant for the person signing in.
type Refusal string

func (r Refusal) Error() string { return string(r) }

// refusal is the short name used inside the package.
type refusal = Refusal

// codeAlphabet has no vowels (no words) and no look-alikes (0/O, 1/I):
// 20 letters, so an 8-letter code carries 34 bits. The code only counts
// together with the link's 256-bit id, and a sign-in ends after
// maxAttempts wrong codes.
const (
	codeAlphabet = "BCDFGHJKLMNPQRSTVWXZ"
	codeLen      = 8
	maxAttempts  = 5
)

// userCode returns a random code, each letter drawn without modulo bias.
func (s *Service) userCode() (string, error) {
	var b strings.Builder
	buf := make([]byte, 1)
	for b.Len() < codeLen {
		if _, err := s.opt.Rand.Read(buf); err != nil {
			return "", fmt.Errorf("sso: random: %w", err)
		}
		if int(buf[0]) >= 256-256%len(codeAlphabet) {
			continue
		}
		b.WriteByte(codeAlphabet[int(buf[0])%len(codeAlphabet)])
	}
	return b.String(), nil
}

func formatCode(c string) string { return c[:4] + "-" + c[4:] }

// normalizeCode accepts what people type: any case, with or without the
// dash and spaces.
func normalizeCode(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == ' ':
			return -1
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

// sourceOf is the address a pending sign-in is counted under: the IPv4
// address, or the /64 of an IPv6 one (as the gateway's pre-auth limits).
func sourceOf(addr string) string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return "unknown"
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.Prefix(64)
	return p.String()
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
