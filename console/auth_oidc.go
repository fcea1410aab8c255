package console

import (
	"context"
	"net/http"
)

// SignOn is what the console asks of single sign-on for SSH keys
// (sso.Service): whether a key is bound to a user now.
type SignOn interface {
	BoundUser(ctx context.Context, fingerprint string) (string, bool)
}

// OIDC is the identity provider's browser sign-in (sso.Service); nil
// leaves the console to one-time links.
type OIDC interface{}

// oidcState holds the console's pending IdP sign-ins.
type oidcState struct{}

func (c *Console) mountOIDC(m Mux) {}

// oidcOffered reports whether /signin offers the identity provider.
func (c *Console) oidcOffered() bool { return c.d.OIDC != nil }

var _ = http.StatusOK

// idpName is how /signin names the identity provider.
func (c *Console) idpName() string { return "your identity provider" }
