package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/warden-gw/warden/recorder"
)

// The live socket speaks asciicast v2 over WebSocket, subprotocol
// "v2.asciicast", which asciinema-player 3.17.0's websocket driver offers
// (with v1.alis, v3.asciicast and raw): one text message holding the
// header line, then one message per event, [TIME, CODE, DATA], TIME in
// seconds since the stream began. Output is "o", a resize "r" ("COLSxROWS"),
// and a marker "m" tells the viewer that frames were dropped because the
// browser fell behind. The player treats a close with status 1000 as the
// end of the stream (any other status makes it reconnect), so every end
// the server chooses is a normal closure whose reason says why.
//
// Read-only: nothing the browser sends is acted on. Any data message
// closes the socket, and a close ends the view.

// liveProtocol is the one subprotocol served.
const liveProtocol = "v2.asciicast"

// liveWriteTimeout bounds one write to the browser. A browser that reads
// nothing for this long is cut off; until then the gateway drops frames
// for it (the session itself never waits for a viewer).
var liveWriteTimeout = 10 * time.Second

// liveRecheck is how often a running view checks that its browser session
// is still signed in (revoked, idled out, user removed).
var liveRecheck = time.Second

// liveSocket serves GET /sessions/{id}/live.
func (c *Console) liveSocket(w http.ResponseWriter, r *http.Request, v *Viewer) {
	id := r.PathValue("id")
	// Same origin only. The cookie is SameSite=Strict, but a WebSocket
	// handshake is not subject to CORS, so the Origin is what stops
	// another site's page from opening this socket with the viewer's
	// cookie. A browser always sends Origin on a WebSocket handshake; a
	// request without one is refused too.
	if !sameOrigin(r) {
		c.refused(r.Context(), r, v, "live view: WebSocket from origin "+truncateReason(r.Header.Get("Origin"))+" refused")
		http.Error(w, "cross-origin WebSocket refused", http.StatusForbidden)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	feed, err := c.d.Live.WatchSession(ctx, v.User, id)
	if err != nil {
		c.noSession(w, r, v, errNoSession)
		return
	}
	// Origin was checked above, against the Host the browser addressed;
	// the library's own check (same comparison) stays on.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{liveProtocol}})
	if err != nil {
		return // Accept has answered; cancel ends the feed
	}
	defer conn.CloseNow()
	if conn.Subprotocol() != liveProtocol {
		conn.Close(websocket.StatusProtocolError, "this socket speaks "+liveProtocol)
		return
	}
	// The reader only waits for the browser's close. A data message is
	// not acted on: it ends the view (websocket.Conn.CloseRead would do
	// the same, but its Close waits on its own goroutine for 15 s).
	rctx, rcancel := context.WithCancel(ctx)
	var sentData atomic.Bool
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		defer rcancel()
		if _, _, err := conn.Read(rctx); err == nil {
			sentData.Store(true)
		}
	}()
	end := c.streamFeed(rctx, conn, r, v, feed)
	if sentData.Load() {
		conn.Close(websocket.StatusPolicyViolation, "read-only view")
	} else {
		conn.Close(websocket.StatusNormalClosure, truncateReason(end))
	}
	cancel()
	<-readDone
}

// streamFeed writes feed to conn until it ends, the browser goes away or
// its session ends, and returns why, for the close frame.
func (c *Console) streamFeed(ctx context.Context, conn *websocket.Conn, r *http.Request, v *Viewer, feed recorder.Feed) string {
	start := c.d.Now()
	var buf bytes.Buffer
	// The host chose these bytes: the browser's terminal gets what draws
	// the screen, not clipboard writes, links or report requests, as
	// `ssh gw watch` does; the filter also holds back a rune split across
	// chunks, so every message is valid UTF-8.
	view := recorder.NewViewFilter(&buf)
	send := func(msg []byte) bool {
		wctx, cancel := context.WithTimeout(ctx, liveWriteTimeout)
		defer cancel()
		return conn.Write(wctx, websocket.MessageText, msg) == nil
	}
	event := func(code string, data string) bool {
		t := c.d.Now().Sub(start).Seconds()
		b, _ := json.Marshal([]any{float64(int64(t*1e6)) / 1e6, code, data})
		return send(b)
	}
	hdr, _ := json.Marshal(map[string]any{
		"version": 2, "width": feed.Header.Width, "height": feed.Header.Height,
		"timestamp": start.Unix(), "title": feed.Header.Title,
	})
	if !send(hdr) {
		return "viewer left"
	}
	recheck := time.NewTicker(liveRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-ctx.Done():
			return "viewer left"
		case <-recheck.C:
			// The browser session must still be live, for the same user:
			// a sign-out or revocation ends the view too.
			if nv := c.lookup(r); nv == nil || nv.User != v.User {
				event("o", "\r\nwarden: signed out; watch ended\r\n")
				return "signed out"
			}
		case f, ok := <-feed.Frames:
			if !ok {
				why := feed.End()
				event("o", "\r\nwarden: "+why+"\r\n")
				return why
			}
			var good bool
			switch {
			case f.Dropped > 0:
				good = event("m", fmt.Sprintf("warden: %d frames dropped; this view fell behind", f.Dropped)) &&
					event("r", fmt.Sprintf("%dx%d", f.Cols, f.Rows))
			case f.Output == nil:
				good = event("r", fmt.Sprintf("%dx%d", f.Cols, f.Rows))
			default:
				buf.Reset()
				_, _ = view.Write(f.Output)
				good = buf.Len() == 0 || event("o", buf.String())
			}
			if !good {
				return "viewer too slow or gone"
			}
		}
	}
}

// sameOrigin reports whether r's Origin names the host r was sent to.
func sameOrigin(r *http.Request) bool {
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	u, err := url.Parse(o)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	return strings.EqualFold(u.Host, r.Host)
}

// truncateReason fits a close reason into a control frame (123 bytes).
func truncateReason(s string) string {
	if len(s) <= 120 {
		return s
	}
	return s[:120]
}
