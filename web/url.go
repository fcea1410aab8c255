package web

import (
	"net"
	"net/url"
	"strings"
)

// BaseURL returns the base of the links Warden prints, without a trailing
// slash: http_public_url when set, else the listener's scheme and address.
// When the listener is bound to every address (":8022", "0.0.0.0:8022"),
// host names the address the person reached Warden at (the SSH
// connection's local address), since that one reaches this machine.
func (s *Server) BaseURL(host string) string {
	if s.opt.PublicURL != "" {
		return strings.TrimSuffix(s.opt.PublicURL, "/")
	}
	scheme := "http"
	if s.https {
		scheme = "https"
	}
	addr := s.listening()
	if addr == nil {
		return ""
	}
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return ""
	}
	// The configured host (a name people know) with the bound port (the
	// real one when http_listen asked for port 0).
	h, _, _ := net.SplitHostPort(s.opt.Listen)
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		h = host
	}
	if h == "" {
		h = "localhost"
	}
	return (&url.URL{Scheme: scheme, Host: net.JoinHostPort(strings.Trim(h, "[]"), port)}).String()
}

// listening returns the listener's address once Serve runs, else nil.
func (s *Server) listening() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}
