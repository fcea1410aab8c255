package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/sso"
)

// Single sign-on over SSH (CONTRACT §6): `ssh -p 2222 GATEWAY login` binds
// the key the client signed with to the identity the IdP vouches for, and
// `logout` ends that binding.
//
// A key nobody knows reaches this file only through handleSignIn. Its
// connection authenticated (VerifiedPublicKeyCallback proved the key) but
// carries no identity, so every other path refuses it: identify fails, so
// host sessions, other commands and forwarding are refused as for a
// removed key. handleSignIn accepts one session channel per connection
// and runs `login` in it, exactly that word; a shell, a subsystem or any
// other command line gets a refusal and an audit event.

// signInOnly reports whether conn authenticated with a key admitted only
// to sign in.
func signInOnly(conn *gossh.ServerConn) bool {
	return conn.Permissions != nil && conn.Permissions.Extensions[extSignIn] != ""
}

// signInUsed is kept in the connection's context: one sign-in channel per
// connection.
type signInUsed struct{}

const notKnownMsg = "this key is not known to Warden; sign in first: ssh -p PORT GATEWAY login"

// handleSignIn serves a session channel of an unknown key's connection.
func (s *Server) handleSignIn(gctx gliderssh.Context, conn *gossh.ServerConn, nc gossh.NewChannel) {
	ext := conn.Permissions.Extensions
	fp := ext[extFingerprint]
	// Within the refusal budget (postauth_report.go), under the empty
	// user name that every unknown key shares: a stranger's refused
	// channels cost one packet each, and without the budget any key at
	// all could grow the chain by one event per packet.
	refused := func(reason string) {
		s.auditRefusal(gctx, "session.refused", "sign_in", "", fp, map[string]any{"reason": reason, "client_addr": conn.RemoteAddr().String(),
			"ssh_user": truncate(conn.User(), 256)})
	}
	used, _ := gctx.Value(signInUsed{}).(*atomic.Bool)
	if used == nil {
		used = new(atomic.Bool)
		gctx.SetValue(signInUsed{}, used)
	}
	if !used.CompareAndSwap(false, true) {
		refused("second channel on a sign-in connection")
		_ = nc.Reject(gossh.Prohibited, "warden: one sign-in per connection")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	defer ch.Close()
	line, start, ok := awaitSignIn(reqs, s.opt.RequestTimeout, func(r *gossh.Request, reason string) {
		if r.Type == "auth-agent-req@openssh.com" || r.Type == "x11-req" {
			// As on any channel: forward.refused (within the budget).
			s.refuseForward(identity{clientAddr: conn.RemoteAddr().String()}, truncate(conn.User(), 256), r.Type)
			return
		}
		refused(reason)
	})
	go gossh.DiscardRequests(reqs)
	if !ok {
		return
	}
	args, err := splitArgs(line)
	if start != "exec" || err != nil || len(args) != 1 || args[0] != "login" {
		what := start
		if start == "exec" || start == "subsystem" {
			what += " " + truncate(line, 64)
		}
		refused("unknown key: " + what)
		s.log.Info("unknown key refused", "fingerprint", fp, "client_addr", conn.RemoteAddr().String(), "request", what)
		fmt.Fprintln(ch.Stderr(), "warden: "+notKnownMsg)
		_ = ch.CloseWrite()
		sendExitStatus(ch, 1)
		return
	}
	key, err := gossh.ParsePublicKey([]byte(ext[extSignIn]))
	if err != nil {
		s.log.Error("sign-in key unreadable", "err", err)
		return
	}
	status := uint32(0)
	if err := s.login(gctx, ch, conn.RemoteAddr().String(), conn.LocalAddr().String(), key); err != nil {
		refused(err.Error())
		fmt.Fprintln(ch.Stderr(), userMessage(err))
		status = 1
	}
	_ = ch.CloseWrite()
	sendExitStatus(ch, status)
}

// awaitSignIn answers a sign-in channel's setup requests and returns how
// it asked to start: "exec" with its line, "shell", or "subsystem" with
// the subsystem's name. What it answers no (a malformed start, any request
// but terminal setup) goes to refused, as every refusal is on record.
func awaitSignIn(reqs <-chan *gossh.Request, wait time.Duration, refused func(r *gossh.Request, reason string)) (line, start string, ok bool) {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case r, open := <-reqs:
			if !open {
				return "", "", false
			}
			switch r.Type {
			case "exec", "subsystem":
				var p struct{ Value string }
				if err := gossh.Unmarshal(r.Payload, &p); err != nil {
					refused(r, "unknown key: malformed "+r.Type+" request")
					_ = r.Reply(false, nil)
					continue
				}
				_ = r.Reply(true, nil)
				return p.Value, r.Type, true
			case "shell":
				_ = r.Reply(true, nil)
				return "", "shell", true
			case "pty-req", "env":
				_ = r.Reply(true, nil)
			default:
				refused(r, "unknown key: request "+truncate(r.Type, 64))
				_ = r.Reply(false, nil)
			}
		case <-timer.C:
			return "", "", false
		}
	}
}

// login runs one sign-in for key and waits for it: it prints the link and
// the code, and then the user and expiry of the binding. The sign-in ends
// with the connection.
func (s *Server) login(ctx context.Context, out io.Writer, clientAddr, localAddr string, key gossh.PublicKey) error {
	localHost, _, _ := net.SplitHostPort(localAddr)
	p, err := s.opt.SignOn.Begin(ctx, key, clientAddr, localHost)
	if err != nil {
		return signInError(err)
	}
	fmt.Fprintf(out, "To sign in, open this link in your browser:\n\n    %s\n\nand type this code there:  %s\n\n"+
		"The page must show your key %s.\nIf anyone but you ran this command, do not open the link.\n"+
		"Waiting (the link works until %s)...\n",
		p.URL, p.Code, p.Fingerprint, p.ExpiresAt.UTC().Format(time.RFC3339))
	r := p.Wait(ctx)
	if r.Err != nil {
		return signInError(r.Err)
	}
	fmt.Fprintf(out, "signed in as %s until %s\n", recorder.Quote(r.User), r.Until.UTC().Format(time.RFC3339))
	if r.Note != "" {
		fmt.Fprintf(out, "%s\n", recorder.Quote(r.Note))
	}
	return nil
}

// signInError turns a sign-in refusal into a line for the client; other
// errors stay internal.
func signInError(err error) error {
	var r sso.Refusal
	if errors.As(err, &r) {
		return refusal("%s", err.Error())
	}
	return &userError{msg: "sign-in failed; try again later", cause: err}
}

// ssoCommands are login and logout for keys Warden knows.
func (s *Server) ssoCommands() map[string]command {
	return map[string]command{
		"login":  {usage: "login", help: "sign in a key with the identity provider", run: cmdLogin},
		"logout": {usage: "logout", help: "end the sign-in of the key you connected with", run: cmdLogout},
	}
}

// cmdLogin signs in again with a key that is already bound (to renew or
// change the binding). A key in the policy needs no sign-in.
func cmdLogin(ctx context.Context, e *cmdEnv, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if e.s.opt.SignOn == nil {
		return refusal("single sign-on is not configured on this gateway")
	}
	if !e.ident.bound {
		return refusal("your key is in the policy as %s; sign-in is for keys Warden does not know", e.ident.user.Name)
	}
	return e.s.login(ctx, e.out, e.ident.clientAddr, e.ident.localAddr, e.ident.key)
}

func cmdLogout(ctx context.Context, e *cmdEnv, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	if e.s.opt.SignOn == nil || !e.ident.bound {
		return refusal("your key is not signed in (it is in the policy as %s); nothing to sign out", e.ident.user.Name)
	}
	err := e.s.opt.SignOn.Logout(ctx, e.ident.fingerprint, e.ident.user.Name)
	if errors.Is(err, sso.ErrNotBound) {
		return refusal("your key is not signed in")
	}
	if err != nil {
		return &userError{msg: "sign-out failed", cause: err}
	}
	fmt.Fprintf(e.out, "signed out: key %s is no longer bound to %s\n", e.ident.fingerprint, recorder.Quote(e.ident.user.Name))
	return nil
}

// signInOut is one live binding in whoami.
type signInOut struct {
	Fingerprint string    `json:"fingerprint"`
	ExpiresAt   time.Time `json:"expires_at"`
	Current     bool      `json:"current"` // the key of this connection
}

// signIns lists user's live bindings for whoami; nil without sign-on.
func (s *Server) signIns(ctx context.Context, ident identity) []signInOut {
	if s.opt.SignOn == nil {
		return nil
	}
	list, err := s.opt.SignOn.Bindings(ctx, ident.user.Name)
	if err != nil {
		s.log.Error("sign-in bindings not read", "user", ident.user.Name, "err", err)
		return nil
	}
	out := []signInOut{}
	for _, b := range list {
		out = append(out, signInOut{Fingerprint: b.Fingerprint, ExpiresAt: b.ExpiresAt, Current: b.Fingerprint == ident.fingerprint})
	}
	return out
}
