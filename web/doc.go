// Package web is Warden's HTTP listener (http_listen, CONTRACT §6 and §7):
// one net/http server that other packages mount their handlers on, with
// optional TLS, and the two probes every deployment needs.
//
// A request walks through these files:
//
//	server.go  the listener: timeouts, optional TLS, graceful shutdown
//	             with warden serve, and the security headers every
//	             response carries
//	probes.go  GET /healthz (alive, no auth) and GET /readyz (the
//	             database and the credential backend answer, no auth)
//	url.go     the base URL of every link Warden prints: http_public_url,
//	             else the listener's own address
//
// Other packages mount on Server.Handle: /oidc/ (package sso) and, later,
// /scim/v2/ and the console. Handlers get the security headers from the
// server; what a page needs beyond them (cookies, CSRF tokens) it does
// itself.
//
// Concurrency: Handle may be called only before Serve. The readiness
// result is cached for a second, computed by at most one request at a time,
// so that an unauthenticated client hammering /readyz cannot turn into a
// load on the database or Vault.
package web
