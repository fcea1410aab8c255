// Package recstore keeps session recordings where the policy says
// (recordings.store): in the data directory ([Local], the default) or in an
// S3-compatible object store ([S3], through minio-go).
//
// # The spool and the object store
//
// The recorder always writes its file under DATA/recordings first, exactly
// as without S3: the spool. With S3, an [Uploader] follows each spool while
// its session lives and, at most every interval (10 s by default), puts what
// was appended since as one segment object:
//
//	PREFIX/YYYY-MM-DD/SESSION_ID.cast.parts/OFFSET
//
// where OFFSET is the segment's first byte in the spool, 16 decimal digits.
// S3 has no append, so a growing file becomes immutable byte ranges; naming
// them by offset (not by a counter) makes a re-upload of the same range
// idempotent and lets a reader check that the segments tile the spool from
// byte 0 without a gap. A segment always ends at a newline, so the
// segments concatenated are a valid asciicast of the session so far, at most
// one interval behind.
//
// When the session ends, its sealed SHA-256 (the digest the session.end
// event binds) is known. The uploader then puts the whole spool as one
// object, PREFIX/YYYY-MM-DD/SESSION_ID.cast, reads it back and compares its
// SHA-256 with the sealed one, and only then deletes the segments and, last,
// the local spool. A failed step is retried every interval; until it
// succeeds the spool stays, so nothing is lost while the store is down.
//
// # Failures
//
// A failed upload never ends a session: the local spool is the recording,
// and only its failure ends one (recording.on_failure, as without S3). The
// first failure of a session is logged and reported once as
// recording.upload_failed, through the gateway's hold of audit events
// ([Uploader.ReportTo]: appended once the database takes writes, should it
// be away too) or else the Events hook; later tries go on quietly.
//
// A gateway killed mid-session leaves a spool whose segments lag by up to
// one interval. At the next start, after audit.CloseOrphans has ended the
// session as interrupted and sealed the spool's digest, [Uploader.Recover]
// uploads every spool whose final object is missing, verified like any
// other, and reports recording.gap: how many bytes of the spool the object
// store lacked at the kill (the spool's length less the segments' coverage).
//
// # A node that dies, and comes back
//
// A node that stops heartbeating is taken for dead, and a survivor ends its
// open sessions (audit.Store.ReapDeadNodes). The survivor has no spool of
// them, so it seals what the object store holds ([S3.SealRemote]): the
// segments, which must tile the recording from byte 0 (a gap, no segments,
// or a recording path that is not this session's own leaves the session
// without a digest and with a recording_note instead). Once the
// session.end binding that digest is committed, [S3.StoreSealed] makes the
// final object out of the segments, reads it back against the digest and
// removes the segments; until then readers concatenate the segments, which
// hash to the same digest.
//
// The dead node's spool may hold up to one interval more than the seal.
// When the node comes back, [Uploader.Recover] finds the spool of an ended
// session that does not hash to its sealed digest. The sealed recording
// stays the recording: the final object (made from the segments if the
// reaper did not get to it) is never replaced. The spool must start with
// exactly its bytes; what follows is stored as the tail object
//
//	PREFIX/YYYY-MM-DD/SESSION_ID.cast.tail
//
// (not a valid asciicast on its own: it continues the final object at byte
// "offset"), read back, and reported as recording.tail_recovered
// {session_id, bytes, sha256, object, offset}, whose digest the chain then
// binds; then the segments and the spool go. A spool whose start differs
// from the sealed recording, or a store holding other bytes under these
// names, is a recording.conflict: nothing in the store is written, and the
// spool is kept, renamed SPOOL.cast.conflict, so that later starts leave it.
//
// An upload never replaces a final object: one already there with other
// bytes (a survivor sealed the session while this node was cut off from
// the database) stops the upload and leaves the spool to Recover. A
// session this node could not seal (its row would not end: the database
// was away, or a survivor had reaped it) gets no final object at all, only
// the rest of its spool as segments; Recover sorts it out against the seal
// at the next start, finding the sealed run of segments from byte 0 even
// when a node cut off from the database (not dead) went on adding some.
//
// # Names
//
// Object keys are built only from a recording path that passes
// recorder.CheckRelPath and has exactly the shape the recorder writes,
// recordings/YYYY-MM-DD/SESSION_ID.cast with a valid session ID ([Key]);
// when a survivor seals a session, SESSION_ID must also be that session's.
// The path comes from the database, which anyone who can write it can edit,
// so nothing else may reach a key: no "..", no other folder, no other
// bucket's objects.
//
// # Reading
//
// [Store.Open] returns a recording from either store. For S3 it prefers the
// final object; then the local spool, when this node has it (a live session,
// or one whose final upload is still pending); then the segments
// concatenated (a live or interrupted session recorded by another node).
// Errors match recorder.ErrUnsafePath for a refused path and os.ErrNotExist
// for a recording that is nowhere.
//
// # Concurrency
//
// The Uploader runs one goroutine per followed recording (segments) and one
// per finishing recording (final object), all tracked by one WaitGroup and
// stopped by [Uploader.Close]. Each goroutine owns its recording's state;
// the only shared state is the client, which is safe for concurrent use.
package recstore
