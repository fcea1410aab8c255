package gateway

import (
	"encoding/binary"
	"io"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// refuse tells the client why its session cannot run and ends the channel.
//
// OpenSSH prints stderr data only once the session has started, so the
// channel's outstanding and following requests are accepted (without doing
// anything), the line goes to stderr, exit status 1 follows, and the channel
// closes (RFC 4254 §6.10: exit-status before close). pty, when the client
// asked for a terminal, turns "\n" into "\r\n" because the client's terminal
// is in raw mode.
func refuse(ch gossh.Channel, reqs <-chan *gossh.Request, outstanding []*gossh.Request, msg string, pty bool, wait time.Duration) {
	started := false
	for _, r := range outstanding {
		if isStart(r.Type) {
			started = true
		}
		_ = r.Reply(true, nil)
	}
	if !started {
		started = awaitStart(reqs, wait)
	}
	go gossh.DiscardRequests(reqs)
	if started {
		nl := "\n"
		if pty {
			nl = "\r\n"
		}
		_, _ = io.WriteString(ch.Stderr(), msg+nl)
		sendExitStatus(ch, 1)
	}
	_ = ch.CloseWrite()
	_ = ch.Close()
}

// awaitStart answers a refused channel's requests until the client asks to
// start a shell, command or subsystem, so that the refusal can be shown.
func awaitStart(reqs <-chan *gossh.Request, wait time.Duration) bool {
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				return false
			}
			_ = r.Reply(true, nil)
			if isStart(r.Type) {
				return true
			}
		case <-timer.C:
			return false
		}
	}
}

func isStart(typ string) bool {
	return typ == "shell" || typ == "exec" || typ == "subsystem"
}

func sendExitStatus(ch gossh.Channel, status uint32) {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], status)
	_, _ = ch.SendRequest("exit-status", false, b[:])
}
