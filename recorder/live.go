package recorder

// A live view of a session (the console's live page) receives the same
// events a recording gets, as they happen: the types below are what the
// gateway hands a viewer and what the console streams to the browser's
// player. They live here, with the cast they mirror, so that neither the
// gateway nor the console has to import the other.

// Frame is one event of a live view: host output ("o"), a resize ("r"),
// or a notice that frames were lost because the viewer fell behind.
type Frame struct {
	// Output is what the host sent; nil for a resize or a drop notice.
	Output []byte
	// Cols and Rows are the terminal's size after a resize; with Dropped,
	// its size now (a lost resize must not leave the view the wrong size).
	Cols, Rows int
	// Dropped counts the frames lost since the last one delivered: the
	// session never waits for a viewer, so a slow one loses frames.
	Dropped int64
}

// Feed is a read-only live view of one session.
type Feed struct {
	// Header describes the session; Width and Height are the terminal's
	// size when the view started.
	Header Header
	// Frames delivers the session's events. It is closed when the session
	// ends, the viewer loses the right to watch it, or the view's context
	// ends.
	Frames <-chan Frame
	// End, once Frames is closed, says why in one line for the viewer
	// ("session ended", "you no longer oversee this session").
	End func() string
}
