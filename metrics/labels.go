package metrics

import "strings"

// other is the label value of everything outside a label's fixed set.
const other = "other"

// endReasons are the values of sessions.end_reason (CONTRACT §5, §6, §8).
var endReasons = set(
	"exit", "signal", "client_disconnected", "host_disconnected", "host_unreachable",
	"host_key_mismatch", "credential_failed", "recording_failed", "refused",
	"grant_expired", "grant_revoked", "killed", "shutdown", "internal_error",
	"host_refused", "deprovisioned", "policy_changed", "interrupted",
)

// refusalEvents are the audit event types of refusals.
var refusalEvents = set(
	"auth.failed", "connection.refused", "session.refused", "request.refused",
	"forward.refused", "command.refused", "command.denied",
)

// refusalReasons are the reasons the gateway gives a refusal in its
// metrics: the short kinds it budgets refusals by (postauth_report.go),
// spaces as underscores; the end reasons of sessions refused after they
// were admitted; the SSH request and channel types it refuses; and the
// pre-authentication causes. Request and channel types are chosen by the
// client, which is why only those known here are kept.
var refusalReasons = union(endReasons, set(
	// session.refused, connection.refused
	"too_many_sessions", "too_many_connections", "identity_no_longer_in_policy",
	"bad_target", "not_authorized", "subsystem_not_allowed", "command_contains_a_nul_byte",
	"sign_in",
	// request.refused: setup requests past their bounds
	"pty-req", "env", "window-change",
	// forward.refused: channel and request types
	"direct-tcpip", "forwarded-tcpip", "tcpip-forward", "cancel-tcpip-forward",
	"direct-streamlocal@openssh.com", "forwarded-streamlocal@openssh.com",
	"streamlocal-forward@openssh.com", "cancel-streamlocal-forward@openssh.com",
	"auth-agent-req@openssh.com", "auth-agent@openssh.com", "x11-req", "x11", "tun@openssh.com",
	// command.refused, command.denied
	"usage", "exec", "shell",
	// auth.failed
	"auth_rejected", "login_grace_time", "max_startups_per_source", "max_startups", "evicted",
))

// backends are the credential backends (credentials.backend).
var backends = set("builtin", "vault")

// bounded returns v when it is in the set, else "other".
func bounded(s map[string]bool, v string) string {
	if s[v] {
		return v
	}
	return other
}

// reasonLabel turns a refusal's kind ("too many sessions", "pty-req") into
// its label value, or "other".
func reasonLabel(kind string) string {
	if kind == "" {
		return "none" // the refusal has no kind (command.refused)
	}
	if len(kind) > 64 {
		return other
	}
	return bounded(refusalReasons, strings.ReplaceAll(strings.ToLower(kind), " ", "_"))
}

func set(vs ...string) map[string]bool {
	m := make(map[string]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m
}

func union(a, b map[string]bool) map[string]bool {
	m := make(map[string]bool, len(a)+len(b))
	for v := range a {
		m[v] = true
	}
	for v := range b {
		m[v] = true
	}
	return m
}
