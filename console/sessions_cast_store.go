package console

import (
	"errors"
	"net/http"
	"os"

	"github.com/warden-gw/warden/audit"
)

// sessionCastStored serves /sessions/ID.cast from the configured
// recordings store (recordings.store: s3): the final object, this node's
// spool, or the segments of a live or interrupted session. The store
// checks the stored path before it becomes an object key or a file name
// (recstore.Key, recorder.OpenRecording), and hands out whole lines only.
func (c *Console) sessionCastStored(w http.ResponseWriter, r *http.Request, v *Viewer, s audit.Session) {
	rec, err := c.d.Recordings.Open(r.Context(), s.RecordingPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.fail(w, r, v, http.StatusNotFound, "The recording of this session is missing from the recordings store.")
			return
		}
		c.log.Error("console: open recording", "session", s.ID, "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "The recording could not be opened; the error is in the gateway's log.")
		return
	}
	defer rec.Close()
	c.sendCast(w, r, s.ID, rec, rec.Size)
}
