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
