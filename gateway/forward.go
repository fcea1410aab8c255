package gateway

import (
	"context"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"
)

// Port forwarding (direct-tcpip, tcpip-forward, streamlocal), agent
// forwarding and X11 are refused: each opens a path between the admin and
// the host network that bypasses the recorder and the command log. Every
// refusal is logged and leaves an audit event.

// refuseChannel rejects every channel type other than "session".
func (s *Server) refuseChannel(_ *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, _ gliderssh.Context) {
	ident, _ := s.identify(conn)
	s.refuseForward(ident, truncate(conn.User(), 256), nc.ChannelType())
	_ = nc.Reject(gossh.Prohibited, "warden: "+nc.ChannelType()+" channels are not allowed through the gateway")
}

// refuseGlobalRequest rejects global requests such as tcpip-forward. The
// OpenSSH keepalive is answered "no" without an event, as sshd does.
func (s *Server) refuseGlobalRequest(gctx gliderssh.Context, _ *gliderssh.Server, req *gossh.Request) (bool, []byte) {
	switch req.Type {
	case "keepalive@openssh.com", "no-more-sessions@openssh.com", "hostkeys-00@openssh.com":
		return false, nil
	}
	var ident identity
	if conn, ok := gctx.Value(gliderssh.ContextKeyConn).(*gossh.ServerConn); ok {
		ident, _ = s.identify(conn)
	}
	s.refuseForward(ident, truncate(gctx.User(), 256), req.Type)
	return false, nil
}

// refuseForward audits a refused forwarding request or channel, within the
// user's refusal budget (postauth_report.go): each costs the client one
// packet.
func (s *Server) refuseForward(ident identity, subject, kind string) {
	actor := ""
	if ident.user != nil {
		actor = ident.user.Name
	}
	if s.auditRefusal(context.Background(), "forward.refused", kind, actor, subject, map[string]any{
		"kind": truncate(kind, 64), "client_addr": ident.clientAddr,
	}) {
		s.log.Info("forwarding refused", "user", actor, "target", subject, "kind", truncate(kind, 64))
	}
}
