package console

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/warden-gw/warden/recorder"
)

// fakeLive stands in for the gateway in the console's unit tests: one live
// session of tenant acme, overseen by the users the test's policy says. The
// real gateway's checks have their own tests (gateway/e2e_console_live_test.go);
// these test what the console does with them.
type fakeLive struct {
	tc     *testConsole
	id     string
	frames chan recorder.Frame
	mu     sync.Mutex
	end    string
	killed []string // "user:reason"
	ended  chan struct{}
}

func (f *fakeLive) may(user, id string) bool {
	pol := f.tc.pol.Load()
	u := pol.User(user)
	return id == f.id && u != nil && pol.OversightOf(u).Covers("acme")
}

func (f *fakeLive) LiveSession(ctx context.Context, user, id string) (recorder.Header, error) {
	if !f.may(user, id) {
		return recorder.Header{}, errors.New("no live session")
	}
	return recorder.Header{Version: 2, Width: 100, Height: 30, Title: "dan as root@web01",
		Warden: recorder.Meta{SessionID: id, Tenant: "acme"}}, nil
}

func (f *fakeLive) WatchSession(ctx context.Context, user, id string) (recorder.Feed, error) {
	if !f.may(user, id) {
		return recorder.Feed{}, errors.New("no live session")
	}
	out := make(chan recorder.Frame)
	go func() {
		defer close(f.ended)
		defer close(out)
		for {
			select {
			case fr, ok := <-f.frames:
				if !ok {
					f.mu.Lock()
					f.end = "session ended"
					f.mu.Unlock()
					return
				}
				select {
				case out <- fr:
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return recorder.Feed{Header: recorder.Header{Version: 2, Width: 100, Height: 30, Title: "dan as root@web01"},
		Frames: out, End: func() string { f.mu.Lock(); defer f.mu.Unlock(); return f.end }}, nil
}

type badReason struct{}

func (badReason) Error() string    { return "bad reason" }
func (badReason) BadInput() string { return "a reason is required" }

func (f *fakeLive) KillSession(ctx context.Context, user, id, reason string) error {
	if reason == "" {
		return badReason{}
	}
	if !f.may(user, id) {
		return errors.New("no live session")
	}
	f.mu.Lock()
	f.killed = append(f.killed, user+":"+reason)
	f.mu.Unlock()
	return nil
}

const liveID = "abcdefghijklmnopqrstuvwxyz"

func newLiveConsole(t *testing.T) (*testConsole, *fakeLive) {
	t.Helper()
	tc := newTestConsole(t)
	fl := &fakeLive{tc: tc, id: liveID, frames: make(chan recorder.Frame, 1024), ended: make(chan struct{})}
	tc.c.d.Live = fl
	mux := http.NewServeMux()
	tc.c.Mount(mux)
	tc.srv.Config.Handler = mux
	return tc, fl
}

// dialLive opens the live socket as cl would from the console's own origin.
func dialLive(t *testing.T, tc *testConsole, cl *http.Client, id, origin string) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	if origin == "" {
		origin = tc.srv.URL
	}
	u := "ws" + strings.TrimPrefix(tc.srv.URL, "http") + "/sessions/" + id + "/live"
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h := http.Header{"Origin": {origin}}
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: cl, HTTPHeader: h, Subprotocols: []string{"v1.alis", "v2.asciicast", "v3.asciicast", "raw"}})
}

func readMsg(t *testing.T, c *websocket.Conn) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.MessageText {
		t.Fatalf("message type %v", typ)
	}
	return string(b)
}

// TestLiveSocketStreamsAsciicast: the socket speaks asciicast v2 as the
// player's websocket driver reads it: the header, then [t, "o", text]
// events with the host's drawing kept and its clipboard write removed, a
// resize, a drop marker, and a normal closure (1000) when the session ends.
func TestLiveSocketStreamsAsciicast(t *testing.T) {
	tc, fl := newLiveConsole(t)
	cl, _ := tc.signIn(t, "ann")
	c, resp, err := dialLive(t, tc, cl, liveID, "")
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "v2.asciicast" {
		t.Fatalf("subprotocol %q", c.Subprotocol())
	}
	var hdr map[string]any
	if err := json.Unmarshal([]byte(readMsg(t, c)), &hdr); err != nil || hdr["version"] != 2.0 || hdr["width"] != 100.0 || hdr["height"] != 30.0 {
		t.Fatalf("header %v %v", hdr, err)
	}
	// A rune split across two chunks arrives whole; OSC 52 never does.
	fl.frames <- recorder.Frame{Output: []byte("hello \xc3")}
	fl.frames <- recorder.Frame{Output: []byte("\xa9\x1b]52;c;ZXZpbA==\x07 \x1b[31mred\x1b[0m")}
	fl.frames <- recorder.Frame{Cols: 120, Rows: 40}
	fl.frames <- recorder.Frame{Dropped: 7, Cols: 120, Rows: 40}
	var text strings.Builder
	var sawResize, sawMarker bool
	for !sawMarker {
		var ev []any
		if err := json.Unmarshal([]byte(readMsg(t, c)), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("event %v: %v", ev, err)
		}
		if _, ok := ev[0].(float64); !ok {
			t.Fatalf("time %v", ev[0])
		}
		switch ev[1] {
		case "o":
			text.WriteString(ev[2].(string))
		case "r":
			sawResize = sawResize || ev[2] == "120x40"
		case "m":
			sawMarker = strings.Contains(ev[2].(string), "7 frames dropped")
		}
	}
	if got := text.String(); got != "hello é \x1b[31mred\x1b[0m" || !sawResize {
		t.Fatalf("output %q, resize %v", got, sawResize)
	}
	close(fl.frames)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("close: %v", err)
			}
			break
		}
		last = string(b)
	}
	if !strings.Contains(last, "warden: session ended") {
		t.Fatalf("last event %q", last)
	}
}

// TestAttackLiveSocketRefusals: the socket opens for nobody but a
// signed-in overseer of the session's tenant, from the console's own
// origin. Another tenant's approver gets exactly the answer of an unknown
// ID; a page of another origin (or none) is refused before any watch.
func TestAttackLiveSocketRefusals(t *testing.T) {
	tc, _ := newLiveConsole(t)
	body := func(resp *http.Response) string {
		if resp == nil {
			return ""
		}
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	gus, _ := tc.signIn(t, "gus") // globex's approver
	_, r1, err1 := dialLive(t, tc, gus, liveID, "")
	_, r2, err2 := dialLive(t, tc, gus, "zzzzzzzzzzzzzzzzzzzzzzzzzz", "")
	if err1 == nil || err2 == nil || r1.StatusCode != 404 || r2.StatusCode != 404 || body(r1) != body(r2) {
		t.Fatalf("other tenant: %v %v; unknown: %v %v", err1, r1, err2, r2)
	}
	dan, _ := tc.signIn(t, "dan") // oversees nothing
	if _, r, err := dialLive(t, tc, dan, liveID, ""); err == nil || r.StatusCode != 404 {
		t.Fatalf("operator: %v %v", err, r)
	}
	ann, _ := tc.signIn(t, "ann")
	for _, origin := range []string{"https://evil.example", "http://127.0.0.1.evil.example", "null"} {
		if _, r, err := dialLive(t, tc, ann, liveID, origin); err == nil || r == nil || r.StatusCode != 403 {
			t.Fatalf("origin %s: %v %v", origin, err, r)
		}
	}
	// No cookie: no socket.
	if _, r, err := dialLive(t, tc, tc.client(t), liveID, ""); err == nil || r == nil || r.StatusCode != http.StatusSeeOther {
		t.Fatalf("anonymous: %v %v", err, r)
	}
	// The same overseer, same origin: it opens.
	c, r, err := dialLive(t, tc, ann, liveID, "")
	if err != nil {
		t.Fatalf("ann: %v %v", err, r)
	}
	c.CloseNow()
}

// TestAttackLiveSocketReadOnly: whatever the browser sends is not passed
// on: a data message closes the socket and ends the view.
func TestAttackLiveSocketReadOnly(t *testing.T) {
	tc, fl := newLiveConsole(t)
	ann, _ := tc.signIn(t, "ann")
	c, _, err := dialLive(t, tc, ann, liveID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	readMsg(t, c) // header
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = c.Write(ctx, websocket.MessageText, []byte("rm -rf /\r"))
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if s := websocket.CloseStatus(err); s != websocket.StatusPolicyViolation && s != websocket.StatusNormalClosure && s != -1 {
				t.Fatalf("close %v", err)
			}
			break
		}
	}
	select {
	case <-fl.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the view runs on after the browser sent data")
	}
}

// TestAttackLiveSocketSignedOutMidWatch: a viewer removed from the policy
// while watching is cut off within seconds, by the console's own check
// of the browser session (the gateway checks oversight too).
func TestAttackLiveSocketSignedOutMidWatch(t *testing.T) {
	tc, fl := newLiveConsole(t)
	ann, _ := tc.signIn(t, "ann")
	c, _, err := dialLive(t, tc, ann, liveID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	readMsg(t, c)
	tc.pol.Store(twoTenants(t, "ann"))
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("close: %v", err)
			}
			break
		}
		last = string(b)
	}
	if !strings.Contains(last, "signed out; watch ended") {
		t.Fatalf("last %q", last)
	}
	<-fl.ended
}

// TestLivePageAndKill: an overseer's live page carries the player and a
// kill form; the kill needs the CSRF token (403 without, nothing killed),
// a reason (400), and is refused like an unknown ID for another tenant.
func TestLivePageAndKill(t *testing.T) {
	tc, fl := newLiveConsole(t)
	ann, csrf := tc.signIn(t, "ann")
	resp, err := ann.Get(tc.srv.URL + "/sessions/" + liveID + "/watch")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`id="warden-live"`, `data-ws-path="/sessions/` + liveID + `/live"`, `data-warden-kill-form`,
		`/static/player/asciinema-player.min.js`, `/static/live.js`, `name="reason"`, `required`} {
		if resp.StatusCode != 200 || !strings.Contains(string(page), want) {
			t.Fatalf("page %d lacks %s:\n%s", resp.StatusCode, want, page)
		}
	}
	gus, gusCSRF := tc.signIn(t, "gus")
	r1, _ := gus.Get(tc.srv.URL + "/sessions/" + liveID + "/watch")
	r2, _ := gus.Get(tc.srv.URL + "/sessions/zzzzzzzzzzzzzzzzzzzzzzzzzz/watch")
	b1, _ := io.ReadAll(r1.Body)
	b2, _ := io.ReadAll(r2.Body)
	if r1.StatusCode != 404 || r2.StatusCode != 404 || string(b1) != string(b2) {
		t.Fatalf("other tenant page %d, unknown %d", r1.StatusCode, r2.StatusCode)
	}

	kill := func(cl *http.Client, id string, form url.Values) (int, string) {
		resp, err := cl.PostForm(tc.srv.URL+"/sessions/"+id+"/kill", form)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := kill(ann, liveID, url.Values{"reason": {"x"}}); code != 403 {
		t.Fatalf("no CSRF: %d", code)
	}
	if code, body := kill(ann, liveID, url.Values{"csrf": {csrf}}); code != 400 || !strings.Contains(body, "a reason is required") {
		t.Fatalf("no reason: %d %s", code, body)
	}
	c1, b3 := kill(gus, liveID, url.Values{"csrf": {gusCSRF}, "reason": {"mine now"}})
	c2, b4 := kill(gus, "zzzzzzzzzzzzzzzzzzzzzzzzzz", url.Values{"csrf": {gusCSRF}, "reason": {"mine now"}})
	if c1 != 404 || c2 != 404 || b3 != b4 {
		t.Fatalf("other tenant kill %d, unknown %d", c1, c2)
	}
	if len(fl.killed) != 0 {
		t.Fatalf("killed %v", fl.killed)
	}
	if code, body := kill(ann, liveID, url.Values{"csrf": {csrf}, "reason": {"rogue <b>root</b>"}}); code != 200 ||
		!strings.Contains(body, "data-warden-killed") || !strings.Contains(body, "rogue &lt;b&gt;root&lt;/b&gt;") {
		t.Fatalf("kill: %d %s", code, body)
	}
	if len(fl.killed) != 1 || fl.killed[0] != "ann:rogue <b>root</b>" {
		t.Fatalf("killed %v", fl.killed)
	}
}

// TestLiveSocketCutsOffAStalledBrowser: a browser that reads nothing is
// cut off once a write has waited liveWriteTimeout, and the view ends
// (the gateway then stops keeping frames for it). The browser's socket
// keeps a 4 KiB receive buffer so that the server's writes block soon.
func TestLiveSocketCutsOffAStalledBrowser(t *testing.T) {
	old := liveWriteTimeout
	t.Cleanup(func() { liveWriteTimeout = old }) // runs after the server closed
	liveWriteTimeout = 300 * time.Millisecond
	tc, fl := newLiveConsole(t)
	ann, _ := tc.signIn(t, "ann")
	tr := &http.Transport{DialContext: (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}).DialContext}
	defer tr.CloseIdleConnections()
	c, _, err := dialLive(t, tc, &http.Client{Jar: ann.Jar, Transport: tr}, liveID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	chunk := []byte(strings.Repeat("x", 32<<10))
	deadline := time.After(2 * time.Minute)
	for {
		select {
		case fl.frames <- recorder.Frame{Output: chunk}:
		case <-fl.ended:
			return // cut off: the view ended while the browser read nothing
		case <-deadline:
			t.Fatal("a browser that reads nothing is never cut off")
		}
	}
}
