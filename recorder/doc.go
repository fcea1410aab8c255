// Package recorder keeps the evidence of what happened in a terminal session:
// an asciicast v2 recording of the bytes that crossed the bridge, and the
// command lines a shell received, rebuilt from the keystrokes.
//
// # Recordings
//
// [Create] opens DATA/recordings/YYYY-MM-DD/SESSION_ID.cast (mode 0600, in
// directories of mode 0700: recordings hold what administrators typed) and
// writes the asciicast v2 header, with Warden's own "warden" object naming
// the session, user, login, host, tenant, role and grant. The bridge then
// feeds every chunk through [Writer.Output], [Writer.Input] and
// [Writer.Resize], which append "o", "i" and "r" events timed in seconds
// since the start, with microsecond precision, from an injected clock.
//
// The writer sits on the byte path of every session, so it buffers 64 KiB,
// escapes JSON by hand into a reused buffer, and hashes what it writes as it
// writes it: [Writer.Close] returns the SHA-256 of the file without reading
// it back. A background goroutine flushes the buffer every second, so a
// recording on disk is at most about a second behind the session. Buffers
// handed to the disk when full may end inside an event, so a crash can tear
// the last line: [RepairTail] cuts it when the gateway restarts, and a
// writer whose disk filled cuts its file back the same way at Close. The
// first write error sticks:
// every later call returns it and [Writer.Err] reports it, so the gateway can
// end a session that can no longer be recorded (recording.on_failure:
// terminate).
//
// Terminal output is UTF-8 in practice but arrives in arbitrary chunks, so a
// rune split across two chunks is held back (at most three bytes) until the
// next event of the same stream; bytes that are not UTF-8 become U+FFFD. JSON
// strings must be valid Unicode, and players reject files that are not.
//
// # Command lines
//
// [LineBuilder] rebuilds, from the client→host byte stream, the lines a shell
// received: it applies the readline (emacs mode) editing keys, history
// recall of lines typed in this session, bracketed and unbracketed pastes,
// and skips escape sequences it does not know. It watches the host→client
// stream too: while a full-screen program holds the alternate screen, keys
// are not lines; and a line the host did not echo, such as a password typed
// at a sudo prompt, is reported as [Line.Unechoed] with no text, so that the
// command log records that something was typed without recording the secret.
//
// The echo rule errs towards hiding: while the host has bracketed paste on,
// a line editor such as bash's readline is reading, and it echoes, so the
// line is kept; otherwise the line's printable characters must appear, in
// order, in what the host displayed after the line's first key. A line sent
// in one piece with its Enter to a program that is not a line editor, or
// typed faster than the host's echo comes back, is withheld; the recording
// still holds it.
//
// The rebuilt lines are evidence, not a sandbox: they show what an honest
// session typed, and they can be wrong or incomplete when
//   - history recall reaches lines from before the session (Up arrow beyond
//     this session's own lines), or Ctrl-R searches history;
//   - Tab completion fills in text: the completion is only on the screen,
//     never in the input, so Tab inserts nothing here;
//   - the shell uses vi mode, custom key bindings, or readline commands not
//     modelled here (undo, transpose, yank-last-arg, macros);
//   - commands run inside scripts, aliases, functions or here-documents;
//   - a program reads its input without echoing it, or echoes something else.
//
// The recording keeps what the screen showed, and the keys when input
// recording is on, so an auditor can always replay the session ([Play]).
//
// # What reaches a person's terminal
//
// Recordings keep every byte the host sent, hostile ones included: that is
// the evidence. What is shown to people is made safe on the way out, in one
// place per kind of output:
//   - [Quote] escapes a stored value for a listing (every CLI table and error
//     line, the SSH command interface's tables): C0 and C1 controls, bytes
//     that are not UTF-8, and bidi and other invisible format characters.
//   - [ViewFilter] passes live or replayed terminal output ([Play], ssh gw
//     watch) through an allow-list of drawing sequences, and drops what acts
//     on the viewer's machine: OSC 52 clipboard writes, titles, hyperlinks,
//     DCS/APC/PM/SOS strings and requests that make the terminal answer.
//   - [OpenRecording] is the one check before a path read from the database
//     is opened: clean, relative, inside the data directory, no symbolic
//     link ([CheckRelPath] is its lexical half, also applied on write).
package recorder
