package policy

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// Keys of the sample policy, copied from testdata/policy/valid.yaml so the
// lookups are checked against the file, not against what Parse produced.
const (
	aliceLaptop  = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGRUwyk9qW9Mmucdeha8FHtYH2Kbe6QHprZkSt72g8lJ"
	aliceDesktop = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIKbPXxDaTmPXsjRNkXF6Y3T8DDEpn+66FXd2KgIOhgu"
	bobKey       = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEuQT8B1seCEjNiIV10fntEljdyeaYCyCu3S0nYBUwcI"
)

func TestUserByKey(t *testing.T) {
	c := loadValid(t)
	cert := &ssh.Certificate{Key: parseKey(t, aliceLaptop), CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}}
	ca, err := ssh.NewSignerFromKey(testPrivateKey(5))
	if err != nil {
		t.Fatal(err)
	}
	if err := cert.SignCert(bytes.NewReader(make([]byte, 64)), ca); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		key  ssh.PublicKey
		want string // user name, "" for nil
	}{
		{"first key", parseKey(t, aliceLaptop), "alice"},
		{"second key of the same user", parseKey(t, aliceDesktop), "alice"},
		{"another user", parseKey(t, bobKey), "bob"},
		{"unknown key", testKey(9), ""},
		{"nil key", nil, ""},
		{"certificate is not its key", cert, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if u := c.UserByKey(tc.key); u != nil {
				got = u.Name
			}
			if got != tc.want {
				t.Errorf("UserByKey = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLookupsByName(t *testing.T) {
	c := loadValid(t)
	if u := c.User("carol"); u == nil || u.Name != "carol" {
		t.Errorf("User(carol) = %v", u)
	}
	if r := c.Role("prod-root"); r == nil || r.Name != "prod-root" {
		t.Errorf("Role(prod-root) = %v", r)
	}
	if tn := c.Tenant("beta"); tn == nil || len(tn.Hosts) != 1 {
		t.Errorf("Tenant(beta) = %v", tn)
	}
	if c.User("mallory") != nil || c.Role("god") != nil || c.Tenant("zeta") != nil {
		t.Error("unknown names must give nil")
	}
}

func TestResolveHost(t *testing.T) {
	c := loadValid(t)
	tests := []struct {
		spec      string
		want      string   // qualified name of the host found
		ambiguous []string // choices of an *AmbiguousHostError
		unknown   bool     // wraps ErrUnknownHost
	}{
		{spec: "db01", want: "acme/db01"},
		{spec: "acme/web01", want: "acme/web01"},
		{spec: "beta/web01", want: "beta/web01"},
		{spec: "web01", ambiguous: []string{"acme/web01", "beta/web01"}},
		{spec: "web99", unknown: true},
		{spec: "acme/web99", unknown: true},
		{spec: "zeta/web01", unknown: true},
		{spec: "beta/db01", unknown: true},
		{spec: "acme/", unknown: true},
		{spec: "/web01", unknown: true},
		{spec: "acme/web01/x", unknown: true},
		{spec: "", unknown: true},
	}
	for _, tc := range tests {
		t.Run(tc.spec, func(t *testing.T) {
			h, err := c.ResolveHost(tc.spec)
			var amb *AmbiguousHostError
			switch {
			case tc.want != "":
				if err != nil || h == nil || h.QualifiedName() != tc.want {
					t.Errorf("ResolveHost = %v, %v; want %s", h, err, tc.want)
				}
			case tc.ambiguous != nil:
				if h != nil || !errors.As(err, &amb) || !slices.Equal(amb.Choices, tc.ambiguous) || amb.Name != tc.spec {
					t.Errorf("ResolveHost = %v, %v; want ambiguity between %v", h, err, tc.ambiguous)
				}
			case tc.unknown:
				if h != nil || !errors.Is(err, ErrUnknownHost) {
					t.Errorf("ResolveHost = %v, %v; want ErrUnknownHost", h, err)
				}
			}
		})
	}
}

func TestUnknownHostErrorQuotesTheSpec(t *testing.T) {
	_, err := loadValid(t).ResolveHost("web\x1b[2J")
	if want := `policy: unknown host "web\x1b[2J"`; err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestLookupsAreSafeForConcurrentUse(t *testing.T) {
	c := loadValid(t)
	alice := parseKey(t, aliceLaptop)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 100 {
				u := c.UserByKey(alice)
				h, _ := c.ResolveHost("acme/web01")
				if d := c.Authorize(u, "root", h); len(d.Requestable) != 1 {
					t.Errorf("Authorize = %+v", d)
					return
				}
				_ = c.Reachable(u)
			}
		})
	}
	wg.Wait()
}
