package gateway_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coder/websocket"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/recorder"
)

// liveVia gives the console bed's console the gateway's live view, as
// warden serve wires it (internal/cli serveLive).
type liveVia struct{ cb *consoleBed }

func (l liveVia) gw() *gateway.Server { return l.cb.gwp.Load() }

func (l liveVia) LiveSession(ctx context.Context, user, id string) (recorder.Header, error) {
	if g := l.gw(); g != nil {
		return g.LiveSession(ctx, user, id)
	}
	return recorder.Header{}, gateway.ErrNoLiveSession
}

func (l liveVia) WatchSession(ctx context.Context, user, id string) (recorder.Feed, error) {
	if g := l.gw(); g != nil {
		return g.WatchSession(ctx, user, id)
	}
	return recorder.Feed{}, gateway.ErrNoLiveSession
}

func (l liveVia) KillSession(ctx context.Context, user, id, reason string) error {
	if g := l.gw(); g != nil {
		return g.KillSession(ctx, user, id, reason)
	}
	return gateway.ErrNoLiveSession
}

// newLiveBed is a console bed with the live view and two tenants: acme
// (web01; carol approves, erin audits everything) and globex (app01, the
// same sshd; dave approves globex-root and oversees only globex).
func newLiveBed(t testing.TB) *consoleBed {
	t.Helper()
	return newConsoleBed(t, consoleOptions{
		bed: bedOptions{
			tenants: func(h *sshtest.Host) string {
				return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
					h.Addr, authorizedKey(h.HostKey))
			},
			extraRoles: "  - name: globex-root\n    tenant: globex\n    hosts: {names: [app01]}\n    logins: [root]\n    privileged: true\n    eligible: [helpdesk]\n    approvers: [management]\n",
		},
		deps: func(cb *consoleBed, _ *gateway.Options, d *console.Deps) {
			d.Live = liveVia{cb}
			d.LiveIDs = func() []string {
				if g := cb.gwp.Load(); g != nil {
					return g.LiveSessionIDs()
				}
				return nil
			}
		},
	})
}

// startShell opens alice's real ssh -tt session to root@web01 with a
// plain prompt and returns it with its session ID.
func startShell(t testing.TB, cb *consoleBed) (*sshtest.PTYSession, string) {
	t.Helper()
	p := cb.alice.StartPTY(t, cb.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	return p, cb.liveID("alice")
}

// openLivePage opens path (the session page of a live session, or its
// /watch page) in the signed-in browser ctx and waits until its player
// shows a terminal.
func openLivePage(t testing.TB, cb *consoleBed, ctx context.Context, path string) {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+path),
		chromedp.WaitVisible(`#warden-live .ap-term-text`)); err != nil {
		t.Fatalf("live page: %v", err)
	}
	if ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`typeof window.wardenPlayer === "object" && typeof window.wardenPlayer.getCurrentTime === "function"`)); err != nil || !ok {
		t.Fatalf("window.wardenPlayer: %v %v", ok, err)
	}
}

// screenText is what the browser's player shows now.
const screenText = `(document.querySelector("#warden-live .ap-term-text") || {}).textContent || ""`

// typeAndSee types marker in the ssh session (echoed by the shell) and
// returns how long until the browser's player shows it, polling the DOM.
func typeAndSee(t testing.TB, ctx context.Context, p *sshtest.PTYSession, marker string, deadline time.Duration) time.Duration {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, deadline+5*time.Second)
	defer cancel()
	start := time.Now()
	p.Send(marker)
	for {
		got, err := chromedp.Run(sctx, chromedp.Evaluate[string](screenText))
		if err != nil {
			t.Fatalf("read the player: %v", err)
		}
		if strings.Contains(got, marker) {
			return time.Since(start)
		}
		if time.Since(start) > deadline {
			t.Fatalf("the player does not show %q after %v; it shows:\n%s", marker, deadline, got)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func uniqueMarker(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "live" + hex.EncodeToString(b)
}

// TestConsoleLiveViewInBrowser: an approver signed in through a real
// `ssh gw console` link opens the live page of a real ssh -tt session in
// Chromium; what is typed in the session appears in the player; the
// Kill button asks for a reason and a confirmation, then ends the session
// with its line and end reason `killed`, audited with the approver's name
// and reason.
func TestConsoleLiveViewInBrowser(t *testing.T) {
	cb := newLiveBed(t)
	p, id := startShell(t, cb)
	ctx := cb.browser()
	cb.signInBrowser(ctx, cb.carol)
	openLivePage(t, cb, ctx, "/sessions/"+id) // the session page of a live session is its live view
	cb.waitEvent("session.watched", "carol")

	marker := uniqueMarker(t)
	d := typeAndSee(t, ctx, p, marker, 10*time.Second)
	t.Logf("typed in ssh -> shown in the browser's player: %v (target 1 s; pass/fail deadline 10 s)", d)
	p.Send("\x15") // Ctrl-U: leave the prompt empty

	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	// The form is hidden until the Kill button is pressed; the reason is
	// required before the confirm button submits.
	if vis, err := chromedp.Run(sctx, chromedp.Evaluate[bool](`!document.querySelector("[data-warden-kill-form]").hidden`)); err != nil || vis {
		t.Fatalf("kill form visible before the button: %v %v", vis, err)
	}
	if err := chromedp.Do(sctx, chromedp.Click(`[data-warden-kill-open]`), chromedp.WaitVisible(`[data-warden-kill-reason]`),
		chromedp.Click(`[data-warden-kill-confirm]`)); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(cb.gw.LiveSessionIDs()); n != 1 {
		t.Fatalf("confirm without a reason killed the session (%d live)", n)
	}
	if err := chromedp.Do(sctx, chromedp.SendKeys(`[data-warden-kill-reason]`, "unapproved change window"),
		chromedp.Click(`[data-warden-kill-confirm]`), chromedp.WaitVisible(`[data-warden-killed]`)); err != nil {
		t.Fatalf("kill: %v", err)
	}
	p.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if s := cb.waitSessionEnded(id); s.EndReason != "killed" {
		t.Fatalf("end reason %q", s.EndReason)
	}
	ev := cb.waitEvent("session.killed", "carol")
	if ev.Actor != "carol" || ev.Subject != id || ev.Data["reason"] != "unapproved change window" || ev.Data["via"] != "console" {
		t.Fatalf("kill event %+v", ev)
	}
}

// dialLiveWS opens the live socket of id with cl's cookies and origin.
func dialLiveWS(cb *consoleBed, cl *http.Client, id, origin string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(cb.URL, "http") + "/sessions/" + id + "/live"
	return websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: cl, HTTPHeader: http.Header{"Origin": {origin}},
		Subprotocols: []string{"v2.asciicast"}})
}

// TestAttackConsoleLiveView: the live socket and the kill button against
// the real gateway. Another tenant's approver gets the answer of an
// unknown ID; a cross-origin upgrade is refused; a kill POST without the
// CSRF token is 403 and the session lives; a viewer removed from the
// policy mid-watch is cut off. Each refusal is audited.
func TestAttackConsoleLiveView(t *testing.T) {
	cb := newLiveBed(t)
	p, id := startShell(t, cb)
	dave, daveCSRF := cb.signInHTTP(cb.dave)    // approves globex only
	carol, carolCSRF := cb.signInHTTP(cb.carol) // approves acme

	body := func(r *http.Response) string {
		if r == nil {
			return "<no response>"
		}
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := r.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				return b.String()
			}
		}
	}
	_, r1, err1 := dialLiveWS(cb, dave, id, cb.URL)
	_, r2, err2 := dialLiveWS(cb, dave, "zzzzzzzzzzzzzzzzzzzzzzzzzz", cb.URL)
	if err1 == nil || err2 == nil || r1.StatusCode != 404 || r2.StatusCode != 404 || body(r1) != body(r2) {
		t.Fatalf("other tenant's approver: %v %v; unknown ID: %v %v", err1, r1, err2, r2)
	}
	cb.waitEvent("command.refused", "tenant acme not overseen")
	if code, _ := cb.get(dave, "/sessions/"+id+"/watch"); code != 404 {
		t.Fatalf("other tenant's live page: %d", code)
	}
	if resp, _ := cb.post(dave, "/sessions/"+id+"/kill", url.Values{"csrf": {daveCSRF}, "reason": {"mine"}}); resp.StatusCode != 404 {
		t.Fatalf("other tenant's kill: %d", resp.StatusCode)
	}

	if _, r, err := dialLiveWS(cb, carol, id, "http://evil.example"); err == nil || r == nil || r.StatusCode != 403 {
		t.Fatalf("cross-origin upgrade: %v %v", err, r)
	}
	cb.waitEvent("console.refused", "evil.example")
	if resp, _ := cb.post(carol, "/sessions/"+id+"/kill", url.Values{"reason": {"no token"}}); resp.StatusCode != 403 {
		t.Fatalf("kill without CSRF: %d", resp.StatusCode)
	}
	if resp, _ := cb.post(carol, "/sessions/"+id+"/kill", url.Values{"csrf": {daveCSRF}, "reason": {"wrong token"}}); resp.StatusCode != 403 {
		t.Fatalf("kill with another session's CSRF: %d", resp.StatusCode)
	}
	p.Send("echo alive-$((3*3))\r")
	p.Expect(t, `alive-9`, expectWait)
	_ = carolCSRF

	// carol watches; then she leaves the company.
	c, r, err := dialLiveWS(cb, carol, id, cb.URL)
	if err != nil {
		t.Fatalf("carol's socket: %v %v", err, r)
	}
	defer c.CloseNow()
	cb.gw.SetPolicy(cb.withoutUser("carol"))
	var last string
	for {
		rctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, b, err := c.Read(rctx)
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("carol's socket ended with %v", err)
			}
			break
		}
		last = string(b)
	}
	if !strings.Contains(last, "no longer oversee") && !strings.Contains(last, "signed out") {
		t.Fatalf("carol's view ended with %q", last)
	}
	if _, r, err := dialLiveWS(cb, carol, id, cb.URL); err == nil || r == nil || r.StatusCode == http.StatusSwitchingProtocols {
		t.Fatalf("removed user reopened the socket: %v", r)
	}
	p.Send("echo still-$((2*2))\r")
	p.Expect(t, `still-4`, expectWait)
}

// TestConsoleLiveSlowBrowserDropsFrames: a browser whose socket reads
// nothing (its receive buffer kept tiny) while the session prints 32 MB
// does not slow the session: the session's own client gets every byte,
// the recording holds them all, the browser is told that frames were
// dropped or is cut off, and once it is gone the goroutines of the view
// (gateway pump, console writer and reader) are gone too.
func TestConsoleLiveSlowBrowserDropsFrames(t *testing.T) {
	cb := newLiveBed(t)
	c := cb.goClientAs(cb.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	const lines = 800000 // 800000 lines of 41 bytes: 32 MB
	if err := s.Start(fmt.Sprintf("read go; yes 0123456789012345678901234567890123456789 | head -n %d", lines)); err != nil {
		t.Fatal(err)
	}
	id := cb.liveID("alice")
	erin, _ := cb.signInHTTP(cb.erin)
	erin.Transport.(*http.Transport).CloseIdleConnections()
	base := goroutines()

	// A socket whose reader never reads, with a 4 KiB receive buffer.
	tr := erin.Transport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}).DialContext
	slow := &http.Client{Jar: erin.Jar, Transport: tr}
	ws, r, err := dialLiveWS(cb, slow, id, cb.URL)
	if err != nil {
		t.Fatalf("socket: %v %v", err, r)
	}
	ws.SetReadLimit(-1)
	cb.waitEvent("session.watched", "erin")

	got := make(chan int64, 1)
	go func() {
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := out.Read(buf)
			n += int64(k)
			if err != nil {
				got <- n
				return
			}
		}
	}()
	start := time.Now()
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var n int64
	select {
	case n = <-got:
	case <-time.After(3 * time.Minute):
		t.Fatal("the session's client did not get its output while a browser read nothing")
	}
	t.Logf("32 MB reached the session's client in %v with a stalled browser watching", time.Since(start))
	if err := s.Wait(); err != nil {
		t.Fatalf("session: %v", err)
	}
	if want := int64(lines * 41); n != want {
		t.Fatalf("the session's client got %d bytes, want %d", n, want)
	}
	row := cb.waitSessionEnded(id)
	if row.BytesOut < int64(lines*41) {
		t.Fatalf("session row counts %d bytes out", row.BytesOut)
	}
	if k := castOutputBytes(t, cb.castOf(row.RecordingPath)); k != lines*41 {
		t.Fatalf("recording holds %d bytes of output, want %d", k, lines*41)
	}

	// Now the browser reads what it was sent: a drop marker, or the end
	// of a socket the console cut off.
	var dropped bool
	var shown int
	var end error
	for end == nil {
		rctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, b, err := ws.Read(rctx)
		cancel()
		var ev []any
		switch {
		case err != nil:
			end = err
		case json.Unmarshal(b, &ev) != nil || len(ev) != 3:
		case ev[1] == "m" && strings.Contains(fmt.Sprint(ev[2]), "frames dropped"):
			dropped = true
		case ev[1] == "o":
			shown += strings.Count(fmt.Sprint(ev[2]), "0123456789012345678901234567890123456789")
		}
	}
	t.Logf("the stalled browser got %d of %d lines, a drop notice: %v; its socket ended with %v", shown, lines, dropped, end)
	if !dropped && shown >= lines {
		t.Fatal("the stalled browser was neither told of dropped frames nor missed any: the session waited for it")
	}
	ws.CloseNow()
	c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for goroutines() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d, base %d:\n%s", goroutines(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutines counts this process's goroutines.
func goroutines() int { return runtime.NumGoroutine() }

// castOutputBytes sums the output events' text of an asciicast.
func castOutputBytes(t *testing.T, cast string) int {
	t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(cast), "\n")[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("cast line %.100q: %v", l, err)
		}
		if ev[1] == "o" {
			n += len(ev[2].(string))
		}
	}
	return n
}

// BenchmarkLiveView measures what an overseer waits for: from a key typed
// in a real ssh -tt session to its echo on the live page's player in
// Chromium (gateway watch -> console WebSocket -> asciinema-player ->
// DOM), over 20 keystrokes, polling the DOM every few milliseconds (which
// adds up to one CDP round trip to each figure). Target: 1 s.
func BenchmarkLiveView(b *testing.B) {
	if os.Getenv("WARDEN_BENCH") == "" {
		b.Skip("set WARDEN_BENCH=1 (make bench)")
	}
	cb := newLiveBed(b)
	p, id := startShell(b, cb)
	ctx := cb.browser()
	cb.signInBrowser(ctx, cb.carol)
	openLivePage(b, cb, ctx, "/sessions/"+id+"/watch")
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		lat = append(lat, typeAndSee(b, ctx, p, uniqueMarker(b)[:12], 10*time.Second))
		p.Send("\x15") // Ctrl-U: clear the line for the next one
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
	b.Logf("keystroke in ssh -> shown in the browser: p50 %v, max %v over %d (target 1 s)", lat[len(lat)/2], lat[len(lat)-1], len(lat))
}
