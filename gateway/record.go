package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
	"github.com/warden-gw/warden/transfer"
)

// unechoedLine stands in the command log for a line the host did not echo,
// such as a password typed at a prompt: the evidence that something was
// typed, without the secret itself.
const unechoedLine = "(input not echoed)"

// sessionRecord is everything recorded about one session channel: the
// asciicast of a terminal or command, the lines typed into a shell, and the
// file operations of sftp or legacy scp. The bridge calls it for every chunk
// before the chunk is delivered, so nothing passes unrecorded.
type sessionRecord struct {
	ss *session

	cast     *recorder.Writer      // nil for file transfers
	recInput bool                  // record keystrokes as "i" events
	lines    *recorder.LineBuilder // command lines: a shell, or an exec that reads as one
	pipe     bool                  // lines has no terminal: a denied line ends the session
	sftp     *transfer.SFTP
	scp      *transfer.SCP
	scpUp    bool // the client sends the scp protocol (scp -t)

	// terminate is recording.on_failure == "terminate": a recording error
	// ends the session instead of letting it run unrecorded.
	terminate bool

	// failed: the cast failed and on_failure is continue. Atomic because
	// castOK reads it for every chunk of both directions.
	failed atomic.Bool

	// For file transfers, which have no cast of their own: raw is a cast
	// opened when bytes arrive that no parser accounts for (stderr, or
	// everything after the parser stopped under on_failure: continue).
	row      audit.Session
	raw      atomic.Pointer[recorder.Writer]
	rawMu    sync.Mutex // opening raw
	rawErr   error      // why raw could not be opened; under rawMu
	stopOnce sync.Once  // the parser's failure is logged once
	stopErr  error      // what ends the session under terminate; set in stopOnce

	failureCounted atomic.Bool // the recording's failure is in the metrics (metrics.go)

	upload atomic.Pointer[recstore.Upload] // the spool's upload to S3; nil without (record_upload.go)

	viewers watchers // auditors watching live (ssh gw watch, the console)
	// size is the terminal's size after the last resize, cols<<32|rows,
	// zero before any: a live view that starts later opens at this size.
	size atomic.Uint64
}

// errRecording ends a session whose recording or command log failed.
var errRecording = errors.New("session recording failed")

// openRecord prepares the recording for the session's kind.
func (ss *session) openRecord(row audit.Session) (*sessionRecord, error) {
	s := ss.s
	cfg := s.Policy().Recording
	// Break-glass sessions always record keystrokes: emergency root is
	// exactly what an auditor must be able to replay key by key. So do
	// roles without file transfer: for them the only way to move data is
	// through a command's input (`cat > f`), which must then be recorded.
	role := ss.adm.role
	r := &sessionRecord{ss: ss, row: row, recInput: cfg.Input || role.BreakGlass || !role.FileTransfer, terminate: cfg.OnFailure != "continue"}
	r.setLines(ss.pty != nil)
	if ss.isTransfer() && !ss.adm.role.FileTransfer {
		// Refused before the session row, the certificate and the host:
		// the role's policy says its access is for recorded terminals.
		return nil, refusal("file transfer is not allowed for role %s", ss.adm.role.Name)
	}
	if ss.isTransfer() {
		ss.dropTransferEnv()
	}
	if ss.kind == "subsystem" {
		r.sftp = transfer.NewSFTP()
		return r, nil
	}
	if dir, target, recursive, ok := ss.scpCommand(); ok {
		r.scp = transfer.NewSCP(dir, target, recursive)
		r.scpUp = dir == transfer.Upload
		return r, nil
	}
	w, err := recorder.Create(s.Policy().DataDir, ss.castHeader(row), recorder.Options{Now: s.opt.Now})
	if err != nil {
		r.recordingFailed()
		s.audit(context.Background(), "recording.failed", row.User, ss.t.String(), map[string]any{
			"session_id": row.ID, "cause": err.Error(),
		})
		if r.terminate {
			return nil, &userError{msg: "session recording unavailable; session refused", cause: err}
		}
		s.log.Error("recording unavailable, continuing unrecorded (recording.on_failure: continue)", "session", row.ID, "err", err)
		r.failed.Store(true)
		return r, nil
	}
	r.cast = w
	r.follow(w.RelPath())
	return r, nil
}

// setLines chooses how the command lines typed into the session are
// rebuilt, for a shell that reads a terminal or one that reads a pipe, and
// puts the role's deny rules in front of them.
func (r *sessionRecord) setLines(terminal bool) {
	ss, role := r.ss, r.ss.adm.role
	r.lines, r.pipe = nil, false
	switch {
	case terminal:
		r.lines = recorder.NewLineBuilder()
	case ss.kind == "shell", ss.kind == "exec" && readsShellInput(ss.command):
		// No terminal: the shell reads a pipe, and what the client sends
		// are command lines all the same (ssh -T, piped input, ssh host sh).
		r.lines, r.pipe = recorder.NewPipeLineBuilder(), true
	}
	if r.lines != nil && len(role.Commands.Deny) > 0 {
		r.lines.Guard = func(text string) string { return denyRule(role, text) }
	}
}

// hostRefusedPTY is called when the host refused the pty that the gateway
// had already granted the client (acceptEarly), before the start request
// goes to the host and before the bridge reads any of the client's input.
//
// The host's program then reads a pipe, whatever the client's terminal
// does: no line editor, no echo, a line runs at its LF and CR is a
// character. The terminal rebuilder would forward keys as they are typed
// and "clear" a denied line with keys that such a shell takes as text,
// so the next LF would run the denied line. So lines are rebuilt exactly as
// in a session that never asked for a pty: held until their LF is checked,
// a denied line ending the session.
//
// A legacy scp command is refused: without a pty it is a file transfer,
// which the gateway parses, logs and allows by role only when it knows so
// from the start (openRecord); the recording chosen for a terminal would
// let it through unparsed.
//
// The cast header keeps the client's terminal (its size, TERM): the
// client's terminal is real, in raw mode, and the cast shows what it
// showed.
func (r *sessionRecord) hostRefusedPTY() error {
	ss := r.ss
	if ss.kind == "exec" {
		if _, _, _, scp := transfer.ParseSCPCommand(ss.command); scp {
			return refusal("host %s refused a terminal; scp does not run in a session that asked for one", ss.adm.host.Name)
		}
	}
	r.setLines(false)
	return nil
}

// scpCommand reports whether the session is a legacy scp transfer: an exec
// of exactly the command OpenSSH's scp sends (transfer.ParseSCPCommand),
// without a pty. Real scp never asks for a pty, and a terminal's line
// discipline would change the bytes after the parser saw them.
func (ss *session) scpCommand() (dir transfer.Direction, target string, recursive bool, ok bool) {
	if ss.kind != "exec" || ss.pty != nil {
		return 0, "", false, false
	}
	return transfer.ParseSCPCommand(ss.command)
}

// isTransfer reports whether the session is sftp or legacy scp.
func (ss *session) isTransfer() bool {
	_, _, _, scp := ss.scpCommand()
	return scp || (ss.kind == "subsystem" && ss.command == "sftp")
}

// castHeader is the asciicast header of the session's recording.
func (ss *session) castHeader(row audit.Session) recorder.Header {
	s := ss.s
	cols, rows, term := 80, 24, ""
	if ss.pty != nil {
		if ss.pty.Cols > 0 && ss.pty.Rows > 0 {
			cols, rows = int(ss.pty.Cols), int(ss.pty.Rows)
		}
		term = ss.pty.Term
	}
	h := recorder.Header{
		Version: 2, Width: cols, Height: rows, Timestamp: s.now().Unix(),
		Title: fmt.Sprintf("%s as %s@%s", row.User, row.Login, row.Host),
		Warden: recorder.Meta{
			SessionID: row.ID, User: row.User, Login: row.Login, Host: row.Host,
			Tenant: row.Tenant, Role: row.Role, GrantID: row.GrantID,
		},
	}
	if term != "" {
		h.Env = map[string]string{"TERM": term}
	}
	if ss.kind == "exec" {
		h.Command = ss.command
	}
	return h
}

func (r *sessionRecord) relPath() string {
	if r.cast != nil {
		return r.cast.RelPath()
	}
	if w := r.raw.Load(); w != nil {
		return w.RelPath()
	}
	return ""
}

// logStart logs the exec command before it is sent to the host, at the
// cast's start: everything the cast holds came after it.
func (ss *session) logStart(ctx context.Context) error {
	if ss.kind != "exec" {
		return nil
	}
	return ss.rec.logCommandAt(ctx, "exec", ss.command, ss.rec.lastEventOffset())
}

func (r *sessionRecord) logCommand(ctx context.Context, source, text string) error {
	return r.logCommandAt(ctx, source, text, r.castOffset())
}

// logCommandAt logs a command at offset (seconds into the cast; nil: none).
func (r *sessionRecord) logCommandAt(ctx context.Context, source, text string, offset *float64) error {
	ss := r.ss
	err := ss.s.opt.Store.LogCommand(context.WithoutCancel(ctx), audit.Command{
		SessionID: ss.id, TS: ss.s.now(), User: ss.ident.user.Name, Login: ss.t.login,
		Host: ss.adm.host.Name, Tenant: ss.adm.host.Tenant, Source: source, Command: text, Action: "allowed",
		Offset: offset,
	})
	if err != nil {
		return &userError{msg: "command log unavailable; session ended", cause: err}
	}
	return nil
}

// castOffset is where a command logged now sits in the session's cast, in
// seconds, for the player's command markers; nil without a cast to seek in
// (file transfers, a failed recording).
func (r *sessionRecord) castOffset() *float64 {
	if !r.castOK() {
		return nil
	}
	s := r.cast.Elapsed().Seconds()
	return &s
}

// lastEventOffset is the time of the cast's last event, in seconds; nil
// without a cast to seek in.
func (r *sessionRecord) lastEventOffset() *float64 {
	if !r.castOK() {
		return nil
	}
	s := r.cast.LastEvent().Seconds()
	return &s
}

// castErr applies recording.on_failure to a failed cast write.
func (r *sessionRecord) castErr(err error) error {
	if err == nil {
		return nil
	}
	r.recordingFailed()
	if r.terminate {
		return &userError{msg: "session recording failed; session terminated", cause: fmt.Errorf("%w: %v", errRecording, err)}
	}
	first := !r.failed.Swap(true)
	if first {
		ss := r.ss
		ss.s.audit(context.Background(), "recording.failed", ss.ident.user.Name, ss.t.String(), map[string]any{
			"session_id": ss.id, "cause": err.Error(), "on_failure": "continue",
		})
	}
	return nil
}

func (r *sessionRecord) castOK() bool {
	if r.cast == nil {
		return false
	}
	return !r.failed.Load()
}

// output sees host→client stdout.
func (r *sessionRecord) output(p []byte) ([]byte, error) { return p, r.onOutput(p) }

// stderr sees host→client extended data; it is part of what the user saw.
func (r *sessionRecord) stderr(p []byte) ([]byte, error) {
	r.show(p)
	if r.castOK() {
		return p, r.castErr(r.cast.Output(p))
	}
	if r.sftp != nil || r.scp != nil {
		// No protocol runs on a transfer's stderr, so what crosses it is
		// recorded raw rather than let through unseen.
		return p, r.recordRaw(p, false)
	}
	return p, nil
}

// notice records a line the gateway itself shows the user on stderr, so
// that the cast and live viewers see what the user saw.
func (r *sessionRecord) notice(p []byte) error {
	r.show(p)
	if r.castOK() {
		return r.castErr(r.cast.Output(p))
	}
	return nil
}

func (r *sessionRecord) onOutput(p []byte) error {
	r.show(p)
	if r.castOK() {
		if err := r.castErr(r.cast.Output(p)); err != nil {
			return err
		}
	}
	if r.lines != nil {
		// Lines this output settled (it showed their echo) are stamped
		// at its event, just written: a player seeking there shows them.
		if err := r.logLines(r.lines.Output(p), r.lastEventOffset()); err != nil {
			return err
		}
	}
	return r.transferOutput(p)
}

// input sees client→host bytes and returns what to send on.
func (r *sessionRecord) input(p []byte) ([]byte, error) {
	// Lines this chunk submits are stamped at the time it arrived, taken
	// before its input event is written. Every later event, output that
	// another goroutine writes meanwhile included, is stamped at or after
	// it, so the marker lies inside the recording (its own input event
	// follows when input is recorded). Taken after, it could fall past
	// the recording's last event: exit's own logout had been written.
	var at *float64
	if r.lines != nil {
		at = r.castOffset()
	}
	if r.recInput && r.castOK() {
		if err := r.castErr(r.cast.Input(p)); err != nil {
			return nil, err
		}
	}
	if r.lines != nil {
		var err error
		lines, send := r.lines.Forward(p)
		if p, err = r.takeLines(at, lines, send); err != nil {
			return nil, err
		}
	}
	return p, r.transferInput(p)
}

// takeLines logs the lines of a chunk of input, handles a denied one, and
// returns what to send to the host.
func (r *sessionRecord) takeLines(at *float64, lines []recorder.Line, send []byte) ([]byte, error) {
	for i, l := range lines {
		if l.Denied {
			if err := r.logLines(lines[:i], at); err != nil {
				return nil, err
			}
			return send, r.deniedLine(at, l, send)
		}
	}
	return send, r.logLines(lines, at)
}

// endInput is called when the client's input ends (EOF), before the EOF is
// passed to the host: a shell without a terminal runs a last line that
// has no LF, so it is checked, logged and sent now.
//
// An input that ended because the session is ending (the host exited, a
// kill, the gateway closed the client's channel) is no EOF from the
// client: the line stays unsent, and Flush logs it as not submitted.
func (r *sessionRecord) endInput() error {
	if r.lines == nil {
		return nil
	}
	r.ss.mu.Lock()
	ending := r.ss.endReason != ""
	r.ss.mu.Unlock()
	if ending {
		return nil
	}
	at := r.castOffset()
	lines, send := r.lines.EndInput()
	send, err := r.takeLines(at, lines, send)
	if err != nil {
		return err
	}
	if len(send) > 0 {
		if _, err := r.ss.hostCh.Write(send); err != nil {
			return nil // the host is gone; its closing ends the session
		}
	}
	return nil
}

// unsubmittedNote marks a line that was still being typed when the session
// ended: no Enter ran it.
const unsubmittedNote = " (not submitted; session ended)"

// truncatedNote marks a line that outgrew recorder.MaxLineBytes: keys the
// rebuilder dropped still reached the host, so the text logged is not the
// line that ran. (With deny rules such a line is refused instead.)
const truncatedNote = " (not fully captured: the line outgrew 64 KiB)"

// logLines logs typed lines as the rebuilder settles them, in the order
// they were typed, at offset (seconds into the cast; nil: none).
func (r *sessionRecord) logLines(lines []recorder.Line, offset *float64) error {
	for _, l := range lines {
		text := l.Text
		if l.Unechoed {
			text = unechoedLine
		}
		if l.Truncated {
			text += truncatedNote
		}
		if l.Unsubmitted {
			text += unsubmittedNote
		}
		if err := r.logCommandAt(context.Background(), "shell", text, offset); err != nil {
			return err
		}
	}
	return nil
}

func (r *sessionRecord) resize(cols, rows int) {
	if cols > 0 && rows > 0 {
		r.size.Store(uint64(cols)<<32 | uint64(uint32(rows)))
		if r.viewers.n.Load() > 0 {
			r.broadcast(recorder.Frame{Cols: cols, Rows: rows})
		}
	}
	if r.castOK() {
		_ = r.castErr(r.cast.Resize(cols, rows))
	}
}

// close flushes what is left: file operations still open and the cast (or
// a transfer's raw cast), returning the cast's SHA-256.
func (r *sessionRecord) close(ctx context.Context) (sha string, err error) {
	r.endWatch()
	var errs []error
	if r.lines != nil {
		// Lines settled only now were typed before the output that ended
		// the session: their markers sit at the cast's last event, inside
		// the recording, not after its end.
		errs = append(errs, r.logLines(r.lines.Flush(), r.lastEventOffset()))
	}
	errs = append(errs, r.closeTransfer())
	if r.cast != nil {
		sha, err = r.cast.Close()
		errs = append(errs, err)
	} else if w := r.raw.Load(); w != nil {
		sha, err = w.Close()
		errs = append(errs, err)
	}
	return sha, errors.Join(errs...)
}
