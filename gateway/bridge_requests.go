package gateway

import (
	"context"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// requestLoop handles a running session's channel requests, the host's and
// the client's, and what the host's connection sends unasked (hostConn), in
// the goroutine that also waits for the session's end. There used to be a
// goroutine for each of the three; with a thousand idle sessions each
// goroutine costs some 4 KiB of stack per session.
//
// A request that wants a reply is forwarded by a short-lived goroutine, so
// that a peer that never answers cannot hold up the loop: the other side's
// requests, the end of the session and a kill, grant end or shutdown are
// still seen while it waits. Until that reply, no further request of the
// same side is read, so requests and replies keep their order.
type requestLoop struct {
	ss       *session
	hostReqs <-chan *gossh.Request // nil once closed, or while one is in flight
	reqs     <-chan *gossh.Request

	// The client's EOF waits on flushed, which closes once the host's
	// output has ended (hostEOF) and its exit-status or exit-signal has
	// been forwarded, or when the host's requests end. sshd sends EOF,
	// exit-status and close back to back; a client such as PuTTY that
	// closes the channel as soon as both sides sent EOF would, through the
	// gateway's extra hop, otherwise lose the exit status (it exited 0
	// where the command exited 3).
	hostEOF <-chan struct{}
	flushed chan struct{}
	exited  bool

	hostBusy, clientBusy chan struct{}  // closed when an in-flight request got its reply
	hostPending          *gossh.Request // the host's request in flight
	hostDone             bool           // the host's requests ended
}

// release lets the client's EOF through; idempotent.
func (rl *requestLoop) release() {
	if rl.flushed != nil {
		close(rl.flushed)
		rl.flushed = nil
	}
}

func isExit(r *gossh.Request) bool { return r.Type == "exit-status" || r.Type == "exit-signal" }

// hostRequest forwards one of the host's requests, or starts forwarding it
// when it wants a reply.
func (rl *requestLoop) hostRequest(r *gossh.Request) {
	if !r.WantReply {
		rl.ss.forwardHostRequest(r)
		rl.hostForwarded(r)
		return
	}
	done := make(chan struct{})
	rl.hostBusy, rl.hostPending, rl.hostReqs = done, r, nil
	go func() {
		defer close(done)
		rl.ss.forwardHostRequest(r)
	}()
}

// hostForwarded notes a forwarded host request: after the exit status, and
// the host's EOF, the client may have its EOF.
func (rl *requestLoop) hostForwarded(r *gossh.Request) {
	if isExit(r) {
		rl.exited = true
		if rl.hostEOF == nil {
			rl.release()
		}
	}
}

// clientRequest handles one of the client's requests after the start.
func (rl *requestLoop) clientRequest(r *gossh.Request) {
	if !rl.ss.checkClientRequest(r) {
		return
	}
	if !r.WantReply {
		_, _ = rl.ss.hostCh.SendRequest(r.Type, false, r.Payload)
		return
	}
	done := make(chan struct{})
	rl.clientBusy, rl.reqs = done, nil
	go func() {
		defer close(done)
		ok, err := rl.ss.hostCh.SendRequest(r.Type, true, r.Payload)
		_ = r.Reply(ok && err == nil, nil)
	}()
}

// run returns when the session ends: the host's output and requests both
// ended, the client closed the channel, a recording failed, or ctx ended.
// It sets the end reason.
func (rl *requestLoop) run(ctx context.Context, outDone <-chan struct{}, failed <-chan error) {
	ss := rl.ss
	host := ss.host
	host.takeOver()
	for {
		select {
		case nc, ok := <-host.chans:
			host.answerChannel(nc, ok)
			continue
		case r, ok := <-host.reqs:
			host.answerRequest(r, ok)
			continue
		case r, ok := <-rl.hostReqs:
			if ok {
				rl.hostRequest(r)
				continue
			}
			rl.hostReqs, rl.hostDone = nil, true // a nil channel is never ready again
			rl.release()
			if outDone != nil {
				continue
			}
			ss.setEnd(ss.exitReasonOr(endHostGone))
		case <-rl.hostBusy:
			r := rl.hostPending
			rl.hostBusy, rl.hostPending, rl.hostReqs = nil, nil, ss.hostReqs
			rl.hostForwarded(r)
			continue
		case <-rl.hostEOF:
			rl.hostEOF = nil
			if rl.exited {
				rl.release()
			}
			continue
		case r, ok := <-rl.reqs:
			if ok {
				rl.clientRequest(r)
				continue
			}
			ss.setEnd(ss.exitReasonOr(endClientGone))
		case <-rl.clientBusy:
			rl.clientBusy, rl.reqs = nil, ss.reqs
			continue
		case <-outDone:
			if outDone = nil; !rl.hostDone {
				continue
			}
			ss.setEnd(ss.exitReasonOr(endHostGone))
		case err := <-failed:
			ss.setEnd(endRecording)
			ss.notify(err)
			ss.s.log.Error("session ended", "session", ss.id, "err", err)
		case <-ctx.Done():
			cause := context.Cause(ctx)
			reason := endFor(cause)
			ss.setEnd(reason)
			if reason != endClientGone {
				ss.notify(cause)
			}
		}
		return
	}
}

// drainHost handles what the host still sends once the session ended and
// its connection was closed, until its requests end (x/crypto closes them
// when the connection goes) or d passes, then lets the client's EOF
// through. A request wanting a reply after the end is answered no: the
// gateway ended the session, or the client is gone.
func (rl *requestLoop) drainHost(d time.Duration) {
	defer rl.release()
	t := time.NewTimer(d)
	defer t.Stop()
	if rl.hostBusy != nil {
		select {
		case <-rl.hostBusy:
			rl.hostForwarded(rl.hostPending)
		case <-t.C:
			return
		}
	}
	if rl.hostDone {
		return
	}
	for {
		select {
		case r, ok := <-rl.ss.hostReqs:
			if !ok {
				return
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
				continue
			}
			rl.ss.forwardHostRequest(r)
		case <-t.C:
			return
		}
	}
}

// drainClient answers no to what the client still asks once the session
// ended, until it closes the channel. A client that keeps it open past d
// is drained by a goroutine of its own until its connection ends: a full
// request queue would stop x/crypto's reading of the whole connection.
func (rl *requestLoop) drainClient(d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	if rl.clientBusy != nil {
		select {
		case <-rl.clientBusy:
		case <-t.C:
			go func(busy <-chan struct{}) { <-busy; refuseAll(rl.ss.reqs) }(rl.clientBusy)
			return
		}
	}
	for {
		select {
		case r, ok := <-rl.ss.reqs:
			if !ok {
				return
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		case <-t.C:
			go refuseAll(rl.ss.reqs)
			return
		}
	}
}

func refuseAll(reqs <-chan *gossh.Request) {
	for r := range reqs {
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
	}
}

// checkClientRequest vets a request of the client's after the start and
// answers it if it is not to be forwarded; true means forward it to the
// host.
func (ss *session) checkClientRequest(r *gossh.Request) bool {
	switch r.Type {
	case "window-change":
		var w windowChange
		if err := gossh.Unmarshal(r.Payload, &w); err != nil || w.Cols > maxTermDim || w.Rows > maxTermDim {
			ss.refuseRequest(r, "malformed or absurd terminal")
			return false
		}
		ss.rec.resize(int(w.Cols), int(w.Rows))
	case "shell", "exec", "subsystem", "pty-req":
		// A channel runs one thing; a second start would escape the
		// recording that was chosen for the first. Refused on the record
		// (within the user's budget), as every refusal is: a second exec
		// on a running channel is how such an escape would be tried.
		ss.refuseRequest(r, "the session has already started; a channel runs one command, shell or subsystem")
		return false
	case "env":
		// Too late to set anything: the host's session has started.
		ss.refuseRequest(r, "environment after the start")
		return false
	case "signal":
		if ss.rec != nil && ss.rec.lines != nil {
			// A signal changes the line the host's shell is editing
			// (SIGINT makes readline drop it) without a key the line
			// rebuilder sees: it would go on checking a line the host no
			// longer has. Typing Ctrl-C does the same, and is followed.
			ss.refuseRequest(r, "signals are not sent to a shell whose lines are checked; type Ctrl-C")
			return false
		}
	case "auth-agent-req@openssh.com", "x11-req":
		ss.otherRequest(r)
		return false
	}
	return true
}
