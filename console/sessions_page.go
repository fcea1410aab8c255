package console

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
)

// The session page: details, the verified badge, and either the player
// with a row per logged command beside it, or, for a file transfer, its
// file operations. Data reaches session.js through data- attributes only
// (the CSP forbids inline script).

// LivePageHook renders a live session's page. live.go sets it; while it
// is nil, a live session's page is the recorded page with the recording
// so far. It is a variable rather than a method so that the live view
// can be added without editing this file.
var livePageHook func(c *Console, w http.ResponseWriter, r *http.Request, v *Viewer, id string)

// sessionView is what page_session.html renders.
type sessionView struct {
	S        audit.Session
	Live     bool
	Transfer bool   // sftp or scp: file operations instead of a player
	CastURL  string // "" when the session has no recording
	Commands []commandRow
	Badge    badge
	Duration string
}

// commandRow is one logged command as the page shows it.
type commandRow struct {
	ID                         int64
	TS                         time.Time
	Source, Text, Action, Rule string
	Offset                     string // seconds into the recording, for data-offset
	At                         string // the same as m:ss for people
	Approx                     bool   // no stored offset: derived from the timestamps
}

// badge is the verified badge: OK only when the recording's digest, the
// audit chain and the session.end event all agree.
type badge struct {
	State    string // "verified", "mismatch", "live" or "error"
	Problems []string
}

func (c *Console) sessionPage(w http.ResponseWriter, r *http.Request, v *Viewer, id string) {
	ctx := r.Context()
	s, err := c.visibleSession(ctx, r, v, id)
	if err != nil {
		c.noSession(w, r, v, err)
		return
	}
	if s.PolicyVersion == "" {
		if s.PolicyVersion, err = c.policyVersion(ctx, s.ID); err != nil {
			c.noSession(w, r, v, err)
			return
		}
	}
	live := s.EndedAt.IsZero() && c.isLive(s.ID)
	if live && livePageHook != nil && c.d.Live != nil {
		livePageHook(c, w, r, v, s.ID)
		return
	}
	cmds, err := c.d.Store.Commands(ctx, audit.CommandFilter{SessionID: s.ID})
	if err != nil {
		c.log.Error("console: session commands", "session", s.ID, "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "The session's commands could not be read; the error is in the gateway's log.")
		return
	}
	view := sessionView{S: s, Live: live}
	for _, cm := range cmds {
		if cm.Source == audit.SourceSFTP || cm.Source == audit.SourceSCP {
			view.Transfer = true
		}
		view.Commands = append(view.Commands, rowOf(cm, s))
	}
	// The player's markers come in time order; so do the rows.
	sort.SliceStable(view.Commands, func(i, j int) bool { return view.Commands[i].seconds() < view.Commands[j].seconds() })
	if s.RecordingPath != "" {
		view.CastURL = "/sessions/" + s.ID + ".cast"
	}
	if !s.EndedAt.IsZero() {
		view.Duration = s.EndedAt.Sub(s.StartedAt).Round(time.Second).String()
	}
	view.Badge = c.verify(ctx, s)
	allowPlayer(w)
	c.render(w, http.StatusOK, "session", v, "Session "+s.ID, view)
}

// rowOf places cm in the recording: its stored offset, or, for rows
// logged before offsets were stored, its time since the session started.
func rowOf(cm audit.Command, s audit.Session) commandRow {
	row := commandRow{ID: cm.ID, TS: cm.TS, Source: cm.Source, Text: cm.Command, Action: cm.Action, Rule: cm.Rule}
	sec, ok := commandOffset(cm)
	if !ok {
		sec = max(cm.TS.Sub(s.StartedAt).Seconds(), 0)
		row.Approx = true
	}
	row.Offset = strconv.FormatFloat(sec, 'f', 3, 64)
	m := int(sec) / 60
	row.At = fmt.Sprintf("%d:%02d", m, int(sec)-60*m)
	return row
}

func (r commandRow) seconds() float64 {
	f, _ := strconv.ParseFloat(r.Offset, 64)
	return f
}

// verify computes the badge. A live session has no seal yet.
func (c *Console) verify(ctx context.Context, s audit.Session) badge {
	if s.EndedAt.IsZero() {
		return badge{State: "live"}
	}
	problems, err := c.checkSession(ctx, s.ID)
	if err != nil {
		c.log.Error("console: check session", "session", s.ID, "err", err)
		return badge{State: "error", Problems: []string{"the check could not run; the error is in the gateway's log"}}
	}
	if len(problems) > 0 {
		return badge{State: "mismatch", Problems: problems}
	}
	return badge{State: "verified"}
}

// allowPlayer lets the page compile the player's WebAssembly terminal:
// it adds script-src 'self' 'wasm-unsafe-eval' to the listener's CSP
// (which default-src 'self' otherwise forbids). 'wasm-unsafe-eval' allows
// WebAssembly compilation only, not eval of JavaScript, and only on the
// pages that host a player.
func allowPlayer(w http.ResponseWriter) {
	h := w.Header()
	if csp := h.Get("Content-Security-Policy"); csp != "" && !strings.Contains(csp, "script-src") {
		h.Set("Content-Security-Policy", csp+"; script-src 'self' 'wasm-unsafe-eval'")
	}
}
