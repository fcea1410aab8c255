package gateway

// follow starts uploading the recording w's spool to the object store
// (recordings.store: s3) while the session lives. The local spool stays
// the recording: an upload that fails is retried and reported by the
// uploader, never a reason to end the session.
func (r *sessionRecord) follow(rel string) {
	u := r.ss.s.opt.Uploads
	if u == nil {
		return
	}
	up, err := u.Follow(rel)
	if err != nil {
		// recstore refuses a name that would not make a safe object key;
		// the recorder's own names always pass, so this is a bug, logged.
		r.ss.s.log.Error("recording not followed for upload", "session", r.row.ID, "err", err)
		return
	}
	r.upload.Store(up)
}

// finishUpload hands the ended recording, with the SHA-256 sealed in its
// session.end, to the uploader, which stores and verifies it in the
// background.
func (r *sessionRecord) finishUpload(sha string) {
	if r == nil {
		return
	}
	if up := r.upload.Load(); up != nil {
		up.Finish(sha)
	}
}
