// Package demohost is the managed host that "warden demo" starts in-process,
// so the demo needs no sshd, no root and no setup.
//
// It is a small SSH server (github.com/gliderlabs/ssh) that behaves like an
// OpenSSH host configured to trust one user CA:
//
//   - Authentication (auth.go): only certificates signed by Options.UserCA,
//     valid now, for the requested login. Plain keys, passwords and every
//     other method are refused. Each session logs the certificate's key ID.
//   - Sessions (session.go): a login shell, or "shell -c COMMAND" for exec,
//     on a real pseudo-terminal when the client asked for one (with
//     window-change), on pipes otherwise (stderr kept apart), and the exit
//     status or exit signal sent back.
//   - SFTP (sftp.go): OpenSSH's own sftp-server as a child process, so scp
//     and sftp work exactly as against a real host.
//   - Port and X11 forwarding are refused. An agent-forwarding request is
//     acknowledged by gliderlabs, but no agent channel is ever opened.
//
// The demo host keeps no accounts (account.go). Run by an ordinary user,
// every session runs as that user, whatever login name the client used: a
// login name is only checked against the certificate's principals, so
// "root@web01" through the gateway reaches this host as login "root" but
// runs as, say, "alice"; Host.Describe says so for the demo's screen. Run
// as root, only the login "root" runs as uid 0 and every other login runs
// as an unprivileged account ("nobody"), so that a standing role is never
// root access in disguise.
package demohost
