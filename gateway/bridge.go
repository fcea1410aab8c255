package gateway

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// The bridge's copy buffers. A pump waits for data holding only a
// pumpWaitSize buffer of its own: with a thousand idle sessions, three
// pumps each, what a waiting pump holds is most of what a session costs.
// When a read fills it, more is queued (bulk output), and the pump reads
// through a pooled pumpBulkSize buffer until a read comes back short.
// 128 KiB rather than one 32 KiB packet: x/crypto returns a window
// adjustment to the host for every Read, so bigger reads of queued output
// mean fewer of those small packets (each its own write call).
const (
	pumpWaitSize = 512
	pumpBulkSize = 128 << 10
)

var bufPool = sync.Pool{New: func() any { b := make([]byte, pumpBulkSize); return &b }}

// pump is the one copy loop of the gateway: every byte of every session, in
// either direction, shell, exec or sftp, crosses here. tap sees each chunk
// before it is delivered and returns what to deliver: the chunk itself, or
// (for a denied command line) a replacement. A chunk that cannot be
// recorded is not delivered. n counts bytes read from src. Neither tap nor
// dst keeps the chunk, so the buffer under it can change hands after.
func pump(dst io.Writer, src io.Reader, n *atomic.Int64, tap func([]byte) ([]byte, error)) error {
	wait := make([]byte, pumpWaitSize)
	var bulk *[]byte // from bufPool while reads fill their buffer
	defer func() {
		if bulk != nil {
			bufPool.Put(bulk)
		}
	}()
	buf := wait
	for {
		k, rerr := src.Read(buf)
		if k > 0 {
			out, err := tap(buf[:k])
			if err != nil {
				return err
			}
			if _, err := dst.Write(out); err != nil {
				return nil // the receiving side is gone; its closing ends the session
			}
			n.Add(int64(k))
		}
		if rerr != nil {
			return nil // EOF or the channel closed
		}
		switch {
		case k == len(buf) && bulk == nil:
			bulk = bufPool.Get().(*[]byte)
			buf = *bulk
		case k < len(buf) && bulk != nil:
			bufPool.Put(bulk)
			bulk, buf = nil, wait
		}
	}
}

// bridge runs the session until the host's side ends, the client goes, or
// ctx is cancelled (grant end, kill, shutdown).
func (ss *session) bridge(ctx context.Context) {
	failed := make(chan error, 3)
	fail := func(err error) {
		if err != nil {
			select {
			case failed <- err:
			default:
			}
		}
	}

	// Host → client: stdout and stderr, then half-closed to the client by
	// the pump that ends last. The client's EOF waits until the host's
	// requests sent before its EOF (exit-status, as sshd sends it) are
	// forwarded: a client such as PuTTY closes the channel once both sides
	// sent EOF, and would never see the exit status.
	outDone, hostEOF, flushed := make(chan struct{}), make(chan struct{}), make(chan struct{})
	var outLeft atomic.Int32
	outLeft.Store(2)
	outEnded := func() {
		if outLeft.Add(-1) > 0 {
			return
		}
		close(hostEOF)
		<-flushed
		_ = ss.ch.CloseWrite()
		close(outDone)
	}
	go func() {
		defer outEnded()
		fail(pump(ss.ch, ss.hostCh, &ss.bytesOut, ss.rec.output))
	}()
	go func() {
		defer outEnded()
		fail(pump(ss.ch.Stderr(), ss.hostCh.Stderr(), &ss.bytesOut, ss.rec.stderr))
	}()

	// Client → host: stdin, whose EOF is half-closed to the host and does not
	// end the session (a command may still be writing its output).
	inDone := make(chan struct{})
	go func() {
		defer close(inDone)
		err := pump(ss.hostCh, ss.ch, &ss.bytesIn, ss.rec.input)
		if err == nil {
			// A shell without a terminal runs a last line with no LF at
			// EOF: it was held back until now, to be checked first.
			err = ss.rec.endInput()
		}
		if err != nil {
			// Not after a failure: an EOF would let the host's program
			// exit 0 and report that, racing the gateway's exit status 1.
			fail(err)
			return
		}
		_ = ss.hostCh.CloseWrite()
	}()

	// The channel requests of both sides, and what the host sends unasked,
	// are handled by this goroutine, in the loop that waits for the
	// session's end (bridge_requests.go): three goroutines fewer for each
	// of a thousand idle sessions.
	rl := &requestLoop{ss: ss, hostReqs: ss.hostReqs, reqs: ss.reqs, hostEOF: hostEOF, flushed: flushed}
	rl.run(ctx, outDone, failed)

	// Whatever ended it, close the host side first so no more output is
	// produced, then the client's; wait for the pumps so the recording is
	// complete before it is closed. The host's last requests are still
	// handled in order (refused once the gateway ended the session) until
	// its channel is gone, which also lets the host's EOF through to the
	// client.
	_ = ss.hostCh.Close()
	go ss.host.serve(nil) // what the host sends unasked, until its connection is gone
	_ = ss.host.Close()
	rl.drainHost(5 * time.Second)
	waitTimeout(outDone, 5*time.Second)
	_ = ss.ch.Close()
	waitTimeout(inDone, 5*time.Second)
	rl.drainClient(5 * time.Second)
}

// notify shows the client why the gateway ended its session, and sets exit
// status 1, unless the host already reported one.
func (ss *session) notify(cause error) {
	msg := userMessage(cause)
	switch {
	case errors.Is(cause, errGrantExpired):
		msg = fmt.Sprintf("warden: grant %d expired at %s; session closed", ss.adm.grantID, ss.adm.deadline.UTC().Format("15:04:05Z"))
	case errors.Is(cause, errGrantRevoked):
		msg = fmt.Sprintf("warden: grant %d was revoked; session closed", ss.adm.grantID)
	case errors.Is(cause, errKilled):
		msg = "warden: session terminated by an administrator"
	case errors.Is(cause, errDeprovisioned):
		msg = "warden: access removed by the directory; session closed"
	case errors.Is(cause, errShutdown):
		msg = "warden: gateway restarting; session closed"
	case errors.Is(cause, errStoreLost):
		msg = "warden: the gateway lost its database; session closed"
	}
	nl := "\n"
	if ss.pty != nil {
		nl = "\r\n"
	}
	_, _ = io.WriteString(ss.ch.Stderr(), nl+msg+nl)
	ss.mu.Lock()
	reported := ss.exitStatus != nil
	ss.mu.Unlock()
	if !reported {
		sendExitStatus(ss.ch, 1)
	}
}

// exitReasonOr is "exit" once the host reported an exit status, else
// fallback. An exit-signal has already set "signal".
func (ss *session) exitReasonOr(fallback string) string {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.exitStatus != nil {
		return endExit
	}
	return fallback
}

// forwardHostRequest passes one of the host's channel requests
// (exit-status, exit-signal, eow@openssh.com, …) to the client, noting the
// exit status for the session row.
func (ss *session) forwardHostRequest(r *gossh.Request) {
	if (r.Type == "exit-status" || r.Type == "exit-signal") && ss.endedByGateway() {
		// The gateway ended the session (kill, grant end, recording
		// failure) and gave the client its own status 1; the host's
		// program, exiting because its input closed, must not
		// overwrite it with a 0.
		if r.WantReply {
			_ = r.Reply(false, nil)
		}
		return
	}
	switch r.Type {
	case "exit-status":
		if len(r.Payload) >= 4 {
			st := int(binary.BigEndian.Uint32(r.Payload))
			ss.mu.Lock()
			ss.exitStatus = &st
			ss.mu.Unlock()
		}
	case "exit-signal":
		ss.setEnd(endSignal)
	}
	ok, err := ss.ch.SendRequest(r.Type, r.WantReply, r.Payload)
	if r.WantReply {
		_ = r.Reply(ok && err == nil, nil)
	}
}

// endedByGateway reports whether the gateway, not the host, ended the
// session: an end reason is set and it is not the host's exit signal.
func (ss *session) endedByGateway() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.endReason != "" && ss.endReason != endSignal
}

// finish closes the recording and the session row. EndSession writes the
// session.end event in the same transaction, sealed with the recording's
// SHA-256 and the digest of the session's command rows, so every command
// must be logged before this point: the store refuses later ones.
func (ss *session) finish(ctx context.Context) {
	s := ss.s
	var sha string
	var recErr error
	if ss.rec != nil {
		sha, recErr = ss.rec.close(ctx)
		if recErr != nil {
			s.log.Error("recording did not close cleanly", "session", ss.id, "err", recErr)
		}
	}
	ss.mu.Lock()
	end := audit.SessionEnd{
		EndedAt: s.now(), Reason: ss.endReason, ExitStatus: ss.exitStatus,
		RecordingPath: ss.rec.relPathOrEmpty(), RecordingSHA256: sha,
		BytesIn: ss.bytesIn.Load(), BytesOut: ss.bytesOut.Load(),
		Actor: ss.ident.user.Name, Subject: ss.t.String(),
	}
	ss.mu.Unlock()
	s.opt.Metrics.SessionEnded(end.Reason, end.BytesIn, end.BytesOut)
	if err := s.opt.Store.EndSession(context.WithoutCancel(ctx), ss.id, end); err != nil {
		if retriable(err) { // end_retry.go: the store is unreachable; written when it is back
			s.log.Error("session row not closed; retrying until the store takes it", "session", ss.id, "err", err)
			rec := ss.rec
			s.ends.add(ss.id, end, func(sealed bool) {
				if sealed {
					rec.finishUpload(sha)
				} else {
					rec.finishUpload("") // not sealed: the upload keeps the spool
				}
			})
			return
		}
		s.log.Error("session row not closed", "session", ss.id, "err", err)
		sha = "" // not sealed: the upload keeps the spool
	}
	ss.rec.finishUpload(sha)
}

func (r *sessionRecord) relPathOrEmpty() string {
	if r == nil {
		return ""
	}
	return r.relPath()
}

func waitTimeout(c <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c:
	case <-t.C:
	}
}
