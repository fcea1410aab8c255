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
// The writer sits on the byte path of every session, so it buffers up to
// 256 KiB, escapes JSON by hand into a reused buffer (on amd64 with AVX2 a
// block scan marks the bytes to escape 32 at a time, and the runs between
// them are copied whole: safe_amd64.s), and hashes what it
// writes as it writes it: [Writer.Close] returns the SHA-256 of the file
// without reading it back. A timer flushes the buffer a second after its
// first byte, so a recording on disk is at most about a second behind the
// session. Bulk output reaches the disk without the page cache (O_DIRECT,
// whole aligned blocks of 64 KiB and more, where the file system takes it):
// copying a recording into the page cache was the largest single cost of
// recording. An idle recording holds no buffer of bulk size, no goroutine
// and no ticker: a gateway keeps a thousand of them open at once. Buffers
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
// received. The gateway feeds every chunk of input through
// [LineBuilder.Forward], which returns the lines the chunk submitted and the
// bytes to send to the host in its place, and every chunk of output through
// [LineBuilder.Output].
//
// On a terminal ([NewLineBuilder], a session with a pty) it applies the
// readline (emacs mode) editing keys, history recall of lines typed in this
// session, bracketed and unbracketed pastes, and skips escape sequences it
// does not know. Every key that runs a line submits it: Enter (Ctrl-M),
// Ctrl-J, Ctrl-O (bash's operate-and-get-next, zsh's
// accept-line-and-down-history), Alt-# (insert-comment, which with a
// numeric argument uncomments and runs), Alt-a (zsh's accept-and-hold); Ctrl-V
// makes the next key text, so Ctrl-V Enter submits nothing. Ctrl-D on a
// non-empty line, while no line editor is known to be reading, hands the
// line to the reader without a newline in the tty driver's canonical mode
// (sh, dash), and a second Ctrl-D runs it: the Guard is asked then.
//
// Where keys cannot know the line, the screen shows it: a line recalled
// from the shell's history from before the session, the match of bash's
// incremental search (Ctrl-R), a tab completion. The
// rebuilder keeps the host's output since the last LF and reads the
// cursor's row off it when a line starts (the prompt ends at the cursor)
// and when it is submitted. The Guard also reads what the screen showed
// between the prompt and the cursor, and a line the keys do not know is
// logged as the screen showed it (or as [LostLine]). The screen shows what
// the host had echoed when the key came: keys sent faster than the echo,
// as a script sends them, are not on it yet.
//
// It watches the host→client stream too: while a full-screen program holds
// the alternate screen, keys are not lines (but a line editor that turns
// bracketed paste on at a second prompt there, a shell in tmux or one left
// on the alternate screen, makes lines again: only its first line escapes); and a line the host did not
// echo, such as a password typed at a sudo prompt, is reported as
// [Line.Unechoed] with no text, so that the command log records that
// something was typed without recording the secret.
//
// A bracketed paste (ESC [200~ ... ESC [201~) is a paste only once the host
// turned mode 2004 on: a terminal sends the brackets only then. Before that
// ESC [200~ is an unknown key, and a paste end is sent to the host right
// after it, because bash's readline takes the bracket as a paste start even
// with the mode off and would keep the newlines typed after it in one line.
// Inside a paste each pasted newline is still checked by the Guard, since a
// reader that ignores the mode (sh under a program that turned it on) runs
// the line there.
//
// Without a terminal ([NewPipeLineBuilder]: ssh -T, piped input, an exec of
// a shell that reads stdin) nothing edits or echoes: a line is the bytes
// before its LF, CR and backspace included, continued by a trailing
// backslash; a last line without LF runs at end of input
// ([LineBuilder.EndInput]). The line in progress is held back, not sent,
// until the Guard has seen it whole, so no part of a denied line reaches
// the shell; a line longer than [MaxLineBytes] cannot be held: under a
// Guard it is denied, without one it is sent as it comes.
//
// The Guard (a role's commands.deny) is asked about each line as it is
// submitted, before the host could run it, in every reading the shell may
// give it: as typed, with the lines a backslash continued, and line by
// line and joined for text of several lines. A denied line's submitting
// key is not sent; on a terminal keys that make the line editor drop the
// line are sent instead. A line the rebuilder lost track of because it
// outgrew [MaxLineBytes] (keys were dropped that the host kept, such as
// text inserted at its start) is denied with [TooLongRule]: the Guard
// fails closed rather than judge part of a line.
//
// [LineBuilder.Flush], at the end of a session, returns the lines still
// waiting for their echo (as unechoed) and the line being typed, marked
// [Line.Unsubmitted]: a partial line, an unfinished paste, a line held
// back without a terminal.
//
// The echo rule errs towards hiding: while the host has bracketed paste on,
// a line editor such as bash's readline is reading, and it echoes, so the
// line is kept; otherwise the line's printable characters must appear, in
// order, in what the host displayed after the line's first key. A line sent
// in one piece with its Enter to a program that is not a line editor, or
// typed faster than the host's echo comes back, is withheld; the recording
// still holds it. Without a terminal there is no echo and nothing is
// withheld: a secret piped to a program's input is logged as a line.
//
// The rebuilt lines are evidence, not a sandbox: they show what an honest
// session typed, and they can be wrong or incomplete when
//   - history recall reaches lines from before the session, or Tab
//     completion fills in text, faster than the host's echo comes back
//     (then only the keys are known), or the line wraps and the shell
//     redraws it from the row above; zsh's history search, shown on the
//     row below the line;
//   - the shell uses vi mode (which Alt-Enter turns on in bash), custom key
//     bindings, or readline commands not modelled here (undo, yank-last-arg,
//     macros, Ctrl-X Ctrl-E which runs what an editor saved) and the screen
//     could not show; after such a key (or Tab) the line is taken from the
//     screen if it shows all that was typed;
//   - commands run inside scripts, aliases, functions or here-documents, or
//     an interpreter other than a shell reads them;
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
//   - [Feed] and [Frame] are a live view of a session (the console's live
//     page): the cast's events as they happen, with a count of the frames
//     a slow viewer lost. The gateway produces them, the console streams them.
package recorder
