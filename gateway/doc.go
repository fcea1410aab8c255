// Package gateway is Warden's SSH proxy: the path every admin session takes
// from an unmodified OpenSSH client to a managed host.
//
// A session walks through the files of this package in order:
//
//	server.go       accept: the gliderlabs/ssh listener, its lifetime, and
//	                the algorithms it offers (ssh_algorithms)
//	preauth.go      before authentication: grace time, per-source and global caps
//	preauth_report.go  what strangers did, one auth.failed event per source per minute
//	authenticate.go authenticate: the client's public key names the user,
//	                through the policy or a sign-in binding
//	target.go       the SSH user name LOGIN@HOST, parsed and validated
//	authorize.go    authorize: policy roles and grants for LOGIN@HOST, at
//	                channel open and again at the start request
//	credential.go   credential: a fresh per-session certificate from the signer
//	dial.go         dial: the managed host, its key verified by package hostkey
//	session.go      one session channel: early requests answered at once,
//	                all forwarded in order
//	bridge.go       bridge: the one place where bytes cross, in both directions
//	record.go       record: asciicast, typed lines and file operations
//	record_transfer.go  sftp and scp: parsed, or ended, or recorded raw
//	record_upload.go    recordings.store s3: the spool followed to the object store
//	guard.go        commands.deny: exec refused, typed lines not sent
//	guard_shell.go  which exec commands are a shell reading its input
//	                (ssh host sh); what cannot be told counts as one
//	guard_shellwords.go  an exec command split into words as the shell
//	                does: redirections, substitutions, quotes
//	registry.go     live sessions from channel open, ended early by grant end,
//	                kill or shutdown
//	drain.go        SIGTERM: no new channels, a notice, shutdown_grace, then close
//	reload.go       a reloaded policy ends the live sessions it no longer entitles
//	refuse.go       end: refusals as one line on stderr and exit status 1
//	forward.go      port, agent and X11 forwarding, refused and logged
//	postauth_report.go  refusals after authentication: 20 events per user
//	                and type a minute, the rest counted in one
//	                refusals.suppressed
//	conn.go         read buffers under x/crypto's connections: large only after
//	                auth; sessions per connection, connections per user
//	conn_read.go    the large read buffer, pooled, held only while the
//	                socket holds data: idle sessions hold none
//	commands.go     Warden's own command interface (a user name with no '@')
//	commands_jit.go   request, approve, deny, cancel, grants, revoke
//	commands_exceptions.go  the exception register over SSH
//	commands_sessions.go    sessions --live, watch and kill, scoped by tenant
//	commands_cooldown.go    clear-denial: an approver lifts a deny's hold
//	console_commands.go  RunCommand: the browser console runs these commands
//	                  as the signed-in user (an allow-list; same refusals)
//	commands_sso.go   login and logout (package sso); an unknown key may
//	                  connect to run login and nothing else
//	commands_console.go  console: a one-time link to the browser console
//	                  (package console), bound to the key of the connection
//	console_live.go   the console's live view and kill: watch and kill's
//	                  checks and watchers for a signed-in console user
//	breakglass.go   a grant's end: live sessions closed; the rotation worker
//	                rotates what the grant recorded, retries with backoff
//	audit_hold.go   audit events the store could not take (disk full,
//	                PostgreSQL down): held in order, bounded, retried with
//	                backoff, then one audit.delayed; the recordings
//	                uploader's reports pass here too
//	metrics.go      what the steps above count for /metrics (package
//	                metrics): ends, refusals, signing time, recording
//	                failures; nothing on the byte path
//	directory.go    identity directories: their users in Policy, and each
//	                change applied at once (leaver, mover: sessions closed,
//	                grants deprovisioned, requests cancelled)
//	cluster.go      more than one gateway on a store: kills, ended grants
//	                and directory changes over the cluster bus, strictly
//	                checked; resync after the bus reconnects
//	cluster_kill.go the other nodes' open sessions in sessions --live and
//	                the console, and a kill of one: sent, then its row
//	                watched for 5 s; fails closed
//
// Every refusal reaches the client as one line on stderr that starts with
// "warden: ", exits with status 1 and leaves an audit event. Internal causes
// go to the log and the audit event, never to the client.
//
// The gateway fails closed: if the store cannot record the session, the
// signer cannot issue a certificate, or the recorder cannot write (with
// recording.on_failure: terminate), no session proceeds.
package gateway
