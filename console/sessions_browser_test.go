package console

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/web"
)

// serveWeb serves tc's console through the real web.Server (its CSP and
// other headers) on loopback and returns its base URL.
func serveWeb(t testing.TB, tc *testConsole) string {
	t.Helper()
	ws := web.New(web.Options{Listen: "127.0.0.1:0"})
	tc.c.Mount(ws)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ws.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("web: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

// cookieFor signs user in and returns the browser session's cookie value.
func (tc *testConsole) cookieFor(t testing.TB, user string) string {
	t.Helper()
	rec := httptest.NewRecorder()
	if err := tc.c.startSession(rec, user); err != nil {
		t.Fatal(err)
	}
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == cookieName {
			return ck.Value
		}
	}
	t.Fatal("no session cookie")
	return ""
}

// browserAs prepares ctx's tab: the session cookie for base, and a
// recorder of CSP violations (window.__cspViolations) in every document.
func browserAs(t testing.TB, ctx context.Context, base, cookie string) {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	err := chromedp.Do(sctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		if _, err := cdp.Call(ctx, tg, network.SetCookie, network.SetCookieParams{Name: cookieName, Value: cookie, URL: base,
			Path: "/", SameSite: network.CookieSameSiteStrict}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `window.__cspViolations = []; document.addEventListener("securitypolicyviolation",
				function (e) { window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI); });`})
		return err
	}))
	if err != nil {
		t.Fatal(err)
	}
}

// waitTrue evaluates js until it is true, or fails after d.
func waitTrue(t testing.TB, ctx context.Context, d time.Duration, what, js string) {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, d)
	defer cancel()
	for {
		ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise))
		if err == nil && ok {
			return
		}
		if sctx.Err() != nil {
			t.Fatalf("waiting for %s: %v (last error %v)", what, sctx.Err(), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func eval[T any](t testing.TB, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// TestSessionPlayerInChromium: the page in real Chromium, under the
// listener's CSP: the player loads the recording, every command is a
// marker, and clicking the third command row, which follows an idle gap
// the idle-time limit shortens, leaves window.wardenPlayer at its
// data-offset (recording time) while the player's own clock is earlier;
// the screen text shows what the terminal showed; the speed and the
// limit rebuild the player where it was.
func TestSessionPlayerInChromium(t *testing.T) {
	tc := newTestConsole(t)
	ev := []castEvent{{0.1, "o", "$ "}, {0.6, "o", "echo one"}, {0.7, "o", "\r\none\r\n$ "}, {1.2, "o", "echo two"},
		{1.3, "o", "\r\ntwo\r\n$ "}, {12.0, "o", "echo WARDEN-THIRD"}, {12.1, "o", "\r\nWARDEN-THIRD\r\n$ "},
		{13.0, "o", "exit\r\n"}}
	cmds := []seededCmd{{Offset: 0.65, Command: "echo one"}, {Offset: 1.25, Command: "echo two"}, {Offset: 12.05, Command: "echo WARDEN-THIRD"},
		{Offset: 12.5, Command: `echo '<img src=x onerror="window.__pwned=1">'`}}
	id := tc.seed(t, seeded{User: "dan", Host: "web01", Tenant: "acme", Events: ev, Commands: cmds})
	base := serveWeb(t, tc)
	ctx := browsertest.New(t)
	browserAs(t, ctx, base, tc.cookieFor(t, "tia"))

	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(base+"/sessions/"+id)); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, 30*time.Second, "the player's first frame",
		`!!window.wardenPlayer && document.querySelector("#warden-player .ap-term-text") !== null && window.wardenPlayer.getDuration() > 0`)
	// The recording is fetched once: the preload in the head and the
	// script's fetch must be one request.
	if n := eval[int](t, ctx, `performance.getEntriesByType("resource").filter(e => e.name.endsWith(".cast")).length`); n != 1 {
		t.Errorf("the recording was fetched %d times", n)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll("#warden-player .ap-marker-container").length`); n != 4 {
		t.Errorf("markers in the player's bar: %d", n)
	}
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`#warden-commands tbody tr:nth-child(3)`))); err != nil {
		t.Fatal(err)
	}
	offset := eval[float64](t, ctx, `parseFloat(document.querySelector("#warden-commands tbody tr:nth-child(3)").dataset.offset)`)
	if offset != 12.05 {
		t.Fatalf("third row's data-offset %v", offset)
	}
	waitTrue(t, ctx, 20*time.Second, "the seek to the third command",
		fmt.Sprintf(`Math.abs(window.wardenPlayer.getCurrentTime() - %v) < 0.5`, offset))
	// The limiter took about 10 s out of the gap: the player's own
	// clock is there, the page's is at the offset.
	if raw := eval[float64](t, ctx, `window.wardenPlayer.playerTime.getCurrentTime()`); raw > 5 {
		t.Errorf("player clock %v: the idle limit did not shorten the gap", raw)
	}
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`#warden-screen summary`))); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, 10*time.Second, "the screen text", `document.getElementById("warden-screen-text").textContent.includes("WARDEN-THIRD")`)
	// Copy: to the clipboard, or, where the browser refuses it, the text
	// is selected for the person's own Ctrl+C.
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`#warden-copy`))); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, 10*time.Second, "the copy", `document.getElementById("warden-copied").textContent !== ""`)
	if how := eval[string](t, ctx, `document.getElementById("warden-copied").textContent`); how != "copied" {
		if sel := eval[string](t, ctx, `window.getSelection().toString()`); !strings.Contains(sel, "WARDEN-THIRD") {
			t.Errorf("copy said %q and selected %q", how, sel)
		}
	}
	screen := eval[string](t, ctx, `document.getElementById("warden-screen-text").textContent`)
	if !strings.Contains(screen, "two") || strings.Contains(screen, "\x1b") {
		t.Errorf("screen text %q", screen)
	}
	// Another speed and no idle limit: a new player, at the same place.
	if err := chromedp.Do(sctx, chromedp.SetValue(chromedp.CSS(`#warden-speed`), "16"),
		chromedp.Evaluate[chromedp.Void](`document.getElementById("warden-speed").dispatchEvent(new Event("change"))`),
		chromedp.Click(chromedp.CSS(`#warden-idle`))); err != nil {
		t.Fatal(err)
	}
	waitTrue(t, ctx, 20*time.Second, "the rebuilt player at the same place",
		fmt.Sprintf(`Math.abs(window.wardenPlayer.getCurrentTime() - %v) < 0.5 && Math.abs(window.wardenPlayer.playerTime.getCurrentTime() - %v) < 0.5`, offset, offset))
	// A command's text is text everywhere: the row and the marker.
	if n := eval[int](t, ctx, `document.querySelectorAll("img").length + (window.__pwned ? 100 : 0)`); n != 0 {
		t.Errorf("a command's markup became elements (%d)", n)
	}
	if v := eval[[]string](t, ctx, `window.__cspViolations`); len(v) > 0 {
		t.Fatalf("CSP violations: %q", v)
	}
	if p := os.Getenv("WARDEN_SCREENSHOT_DEBUG"); p != "" {
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
