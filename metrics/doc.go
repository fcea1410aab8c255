// Package metrics is Warden's Prometheus exposition: what the gateway, the
// workflow and the SCIM server did, counted cheaply where it happens and
// served as text on GET /metrics of the HTTP listener (http_listen).
//
// A scrape walks through these files:
//
//	metrics.go   the registry (its own, not the global one) with the Go and
//	             process collectors, and the counters the gateway moves
//	labels.go    the bounded label sets: every value not known in advance
//	             becomes "other"
//	gauges.go    gauges read at scrape time: live sessions from the
//	             gateway's registry, active grants and pending requests
//	             from the store through a short cache
//	scim.go      SCIM requests by method and status code
//	handler.go   the /metrics handler: open, or behind a bearer token
//	             (metrics_token_file), compared in constant time
//
// The metrics, all prefixed warden_:
//
//	warden_sessions_live                     gauge: session channels in the live registry
//	warden_sessions_ended_total{reason}      counter: sessions.end_reason of each ended session
//	warden_session_bytes_total{direction}    counter: bytes of ended sessions, "in" (client to host) and "out"
//	warden_refusals_total{event,reason}      counter: refusals by audit event type and reason, counted
//	                                         also when the event itself was suppressed (postauth_report.go)
//	warden_credential_sign_seconds{backend,result}  histogram: time to get a session certificate,
//	                                         backend builtin or vault, result ok or error
//	warden_grants_active                     gauge: grants giving access now
//	warden_requests_pending                  gauge: requests waiting for a decision
//	warden_recording_errors_total            counter: recordings that could not be opened or written,
//	                                         and transfer streams that did not parse
//	warden_scim_requests_total{method,code}  counter: SCIM requests answered
//	warden_metrics_store_errors_total        counter: scrapes whose store counts failed
//	warden_metrics_unauthorized_total        counter: /metrics requests refused for their token
//
// Cardinality is an attack surface: a label value taken from what a client
// sends (a user name, an SSH request type, an HTTP method) would let anyone
// who can reach the gateway create series without bound and exhaust the
// memory of Warden and of Prometheus. So every label value is drawn from a
// fixed set in labels.go; what is not in it is counted under "other". No
// metric carries a user, host, tenant or session label.
//
// Concurrency: counters and histograms are the client library's, safe for
// concurrent use and lock-free on the hot path; the gateway counts a
// session's bytes once, when it ends, not per chunk. The store-backed
// gauges are computed at most once per cache period (a mutex holds other
// scrapes meanwhile), so scrapes cannot load the database. Every method of
// a nil *Metrics does nothing, so code under test may run without one.
package metrics
