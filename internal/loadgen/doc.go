// Package loadgen opens many interactive SSH sessions at once, as a crowd
// of administrators would, to measure what each one costs a gateway (make
// bench) and to check that a gateway carries them all and gives everything
// back when they end (the gateway's tests).
//
// A session is what an admin's terminal is: its own SSH connection, a pty
// and a shell. [Open] sets N of them up, at most Options.Concurrency at a
// time, and counts one as set up only when a line typed into it has come
// back through the shell (a marker the shell computes, so an echo of the
// keystrokes does not count). The sessions then stay open and idle until
// [Crowd.Close], which types exit into each and waits for it to end; a
// caller may type more lines in between ([Session.Run]) to make them busy.
//
// Concurrency model: Open runs Concurrency setup goroutines that end
// before it returns. Each session then has only the goroutines of
// x/crypto's client (the connection's reader and the copy of the shell's
// output into the session's tail buffer); they end when the session's
// connection closes.
package loadgen
