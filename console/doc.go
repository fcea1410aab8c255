// Package console is Warden's auditor and approver console in the browser
// (CONTRACT §7): the pages on http_listen that let auditors replay, search
// and watch sessions, and approvers decide requests, without a shell on the
// gateway.
//
// The console shows a person exactly what the SSH command interface would:
// who the viewer is comes from a browser session bound to a Warden user
// (signed in by a one-time link from `ssh gw console`, or through the
// identity provider), and what they may see and do is decided again on
// every request from the policy in force (policy.Config.OversightOf and the
// gateway's own commands). A user removed from the policy or the directory
// loses the console at their next click, and a browser signed in by a link
// loses it once that link's key is no longer the user's.
//
// Every refusal of a signed-in browser's request (a missing CSRF token,
// another tenant's ID, a dead session's cookie) is a console.refused event
// (Console.refuse), within one global budget of 60 a minute so that no
// flood can grow the audit chain; the rest are counted in the next event's
// suppressed_before.
//
// Files:
//
//	console.go   Deps, the Console, page rendering, the Viewer of a request
//	auth*.go     sign-in (one-time links, OIDC), browser sessions, CSRF
//	sessions*.go the sessions list, search and the session page
//	live*.go     live view over WebSocket and the kill button
//	decide*.go   requests, grants, exceptions and evidence pages
//
// Pages are server-rendered html/template with one stylesheet and scripts
// served from the embedded static/ directory: no inline script, nothing
// from a CDN, and the web server's CSP (default-src 'self') forbids both.
package console
