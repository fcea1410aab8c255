package recorder

import "time"

// Elapsed returns how far into the recording an event written now would
// be stamped: the time since the start on the clock of the events, never
// less than the last event's time. The command log stores it with each
// command (commands.offset), so a player can seek to the command.
func (w *Writer) Elapsed() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	us := max(w.now().Sub(w.start).Microseconds(), w.lastUS)
	return time.Duration(us) * time.Microsecond
}

// LastEvent returns the time of the last event written, from the start
// (zero before any). A line the command log settles only when the session
// closes was typed before the output that ended it: it is stamped here,
// not after the recording's end.
func (w *Writer) LastEvent() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Duration(w.lastUS) * time.Microsecond
}
