package demohost

import (
	"fmt"
	"os/exec"

	gliderssh "github.com/gliderlabs/ssh"
)

// handleSFTP serves the sftp subsystem (sftp, and scp since OpenSSH 9.0) by
// running OpenSSH's sftp-server with the channel as its stdin and stdout.
// Reusing the real server keeps the demo host exactly as compatible as an
// OpenSSH host, without a second SFTP implementation to trust.
func (h *Host) handleSFTP(s gliderssh.Session) {
	h.logSession(s, "sftp", false)
	path, err := exec.LookPath(h.sftpServer)
	if err != nil {
		h.log.Warn("demohost: sftp refused: no sftp-server", "path", h.sftpServer, "err", err)
		fmt.Fprintf(s.Stderr(), "demohost: sftp is not available on the demo host: %s is missing (Debian package openssh-sftp-server)\n", h.sftpServer)
		_ = s.Exit(1)
		return
	}
	cmd := exec.CommandContext(s.Context(), path)
	h.prepare(cmd, s, "")
	h.exit(s, runPipes(cmd, s))
}
