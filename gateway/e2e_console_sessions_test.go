package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/sshtest"
)

// newSessionsBed is a console bed with two clients, acme (web01) and
// globex (app01, the same sshd): alice holds standing root on web01, bob
// on app01; carol approves acme's prod-root, so she oversees acme only.
// The console learns the live sessions from the gateway.
func newSessionsBed(t *testing.T) *consoleBed {
	return newConsoleBed(t, consoleOptions{
		bed: bedOptions{
			tenants: func(h *sshtest.Host) string {
				return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
					h.Addr, authorizedKey(h.HostKey))
			},
			extraRoles: "  - name: globex-admin\n    tenant: globex\n    hosts: {names: [app01]}\n    logins: [root]\n    members: [helpdesk]\n",
		},
		deps: func(cb *consoleBed, o *gateway.Options, d *console.Deps) {
			d.LiveIDs = func() []string {
				if gw := cb.gwp.Load(); gw != nil {
					return gw.LiveSessionIDs()
				}
				return nil
			}
		},
	})
}

// browserEval runs js in ctx's tab and returns its value.
func browserEval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// browserWait evaluates js until it is true, or fails the test after d.
func browserWait(t *testing.T, ctx context.Context, d time.Duration, what, js string) {
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

// listedSessions navigates to /sessions?query and returns the IDs listed.
func listedSessions(t *testing.T, ctx context.Context, base, query string) []string {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(base+"/sessions?"+query), chromedp.WaitVisible(`#warden-sessions`)); err != nil {
		t.Fatalf("/sessions?%s: %v", query, err)
	}
	return browserEval[[]string](t, ctx, `Array.from(document.querySelectorAll("tr[data-warden-session]")).map(r => r.dataset.wardenSession)`)
}

// TestConsoleSessionsEndToEnd: alice works in a real OpenSSH terminal
// through the gateway; an approver of her tenant, signed in through
// `ssh gw console` in real Chromium, finds the session by a command it ran
// and by text it printed, opens it, and a click on the third command puts
// the player at that command's offset. A session of the other tenant that
// ran the same command and printed the same text is nowhere to be seen.
func TestConsoleSessionsEndToEnd(t *testing.T) {
	cb := newSessionsBed(t)
	// The other tenant's session, which must stay invisible to carol.
	if out, errOut, code := cb.run(cb.bob, "root@app01", `printf 'DROP %s\n' TABLE-ledger`); code != 0 || out != "DROP TABLE-ledger\n" {
		t.Fatalf("bob on app01: exit %d, %q %q", code, out, errOut)
	}
	bobs := cb.lastSession("bob")

	p := cb.alice.StartPTY(t, cb.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo printed-$((6*7))\r")
	p.Expect(t, `printed-42`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	// A pause longer than the player's idle limit (2 s), so the click
	// below crosses a shortened gap.
	time.Sleep(3 * time.Second)
	p.Send("printf 'DROP %s\\n' TABLE-ledger\r")
	p.Expect(t, `[\r\n]DROP TABLE-ledger`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("exit\r")
	if code, err := p.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	alices := cb.lastSession("alice")
	cb.waitSessionEnded(alices.ID)
	cb.waitSessionEnded(bobs.ID)

	ctx := cb.browser()
	cb.signInBrowser(ctx, cb.carol)

	// By a command it ran.
	if got := listedSessions(t, ctx, cb.URL, "command=printf"); len(got) != 1 || got[0] != alices.ID {
		t.Fatalf("command=printf lists %v, want only alice's %s (bob's is %s)", got, alices.ID, bobs.ID)
	}
	// By text it printed: the output index is built after the session
	// ends, so wait for it (bounded; no timing is asserted).
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := listedSessions(t, ctx, cb.URL, "output=DROP+TABLE+ledger")
		if len(got) == 1 && got[0] == alices.ID {
			break
		}
		if len(got) > 1 || (len(got) == 1 && got[0] != alices.ID) || time.Now().After(deadline) {
			t.Fatalf("output=DROP TABLE ledger lists %v, want only alice's %s", got, alices.ID)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// The other tenant's session is not there by any route.
	for _, q := range []string{"", "tenant=globex", "host=globex/app01", "user=bob"} {
		for _, id := range listedSessions(t, ctx, cb.URL, q) {
			if id == bobs.ID {
				t.Fatalf("/sessions?%s shows globex's session to acme's approver", q)
			}
		}
	}
	for _, path := range []string{"/sessions/" + bobs.ID, "/sessions/" + bobs.ID + ".cast"} {
		if st := browserEval[int](t, ctx, `fetch("`+path+`").then(r => r.status)`); st != 404 {
			t.Fatalf("%s: %d, want 404", path, st)
		}
	}

	// Open it from the list, as a person would.
	listedSessions(t, ctx, cb.URL, "command=printf")
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`tr[data-warden-session="`+alices.ID+`"] a`)),
		chromedp.WaitVisible(`#warden-commands`)); err != nil {
		t.Fatal(err)
	}
	browserWait(t, ctx, 30*time.Second, "the player", `!!window.wardenPlayer && window.wardenPlayer.getDuration() > 0`)
	if v := browserEval[string](t, ctx, `document.querySelector("[data-warden-verified]").dataset.wardenVerified`); v != "ok" {
		t.Fatalf("verified badge %q", v)
	}
	rows := browserEval[[]string](t, ctx, `Array.from(document.querySelectorAll("#warden-commands tr[data-warden-command]")).map(r => r.dataset.label)`)
	if len(rows) != 4 || !strings.HasPrefix(rows[2], "printf") {
		t.Fatalf("command rows %q", rows)
	}
	const third = `#warden-commands tbody tr:nth-child(3)`
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(third))); err != nil {
		t.Fatal(err)
	}
	offset := browserEval[float64](t, ctx, `parseFloat(document.querySelector("`+third+`").dataset.offset)`)
	if offset < 3 {
		t.Fatalf("third command's offset %v: the pause before it is missing", offset)
	}
	browserWait(t, ctx, 20*time.Second, "the seek to the third command",
		fmt.Sprintf(`Math.abs(window.wardenPlayer.getCurrentTime() - %v) < 0.5`, offset))
	if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`#warden-screen summary`))); err != nil {
		t.Fatal(err)
	}
	browserWait(t, ctx, 10*time.Second, "the screen text at the third command",
		`document.getElementById("warden-screen-text").textContent.includes("printed-42")`)

	// The README's picture (WARDEN_SCREENSHOT=docs/console-session.png):
	// the page at the last command, with the text it printed on screen.
	if path := os.Getenv("WARDEN_SCREENSHOT"); path != "" {
		if err := chromedp.Do(sctx, chromedp.Click(chromedp.CSS(`#warden-commands tbody tr:nth-child(4)`))); err != nil {
			t.Fatal(err)
		}
		browserWait(t, ctx, 10*time.Second, "the screen at the last command",
			`document.getElementById("warden-screen-text").textContent.includes("DROP TABLE-ledger")`)
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConsoleLiveOnlyFilter: "live only" lists a session while its
// terminal is open, through the gateway's live registry, and no longer
// once it has ended; another tenant's live session is never listed.
func TestConsoleLiveOnlyFilter(t *testing.T) {
	cb := newSessionsBed(t)
	cl, _ := cb.signInHTTP(cb.carol)
	p := cb.alice.StartPTY(t, cb.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	q := cb.bob.StartPTY(t, cb.port, "root@app01", 80, 24)
	q.Send("export PS1='GLOBEX> '\r")
	q.Expect(t, `GLOBEX> $`, expectWait)
	alices, bobs := openSession(t, cb, "alice"), openSession(t, cb, "bob")
	_, body := cb.get(cl, "/sessions?live=1")
	if !strings.Contains(body, `data-warden-session="`+alices.ID+`"`) || strings.Contains(body, bobs.ID) {
		t.Fatalf("live only while alice's shell runs (alice %s, bob %s):\n%s", alices.ID, bobs.ID, body)
	}
	p.Send("exit\r")
	if code, err := p.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("exit %d, %v", code, err)
	}
	cb.waitSessionEnded(alices.ID)
	if _, body := cb.get(cl, "/sessions?live=1"); strings.Contains(body, `data-warden-session="`) {
		t.Fatalf("live only after the end:\n%s", body)
	}
	q.Send("exit\r")
	_, _ = q.Wait(expectWait)
}

// openSession returns user's open session row (the newest), waiting for
// it to be written.
func openSession(t *testing.T, cb *consoleBed, user string) audit.Session {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := cb.store.Sessions(context.Background(), audit.SessionFilter{User: user, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(list) == 1 && list[0].EndedAt.IsZero() {
			return list[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no open session of %s: %+v", user, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestConsoleTransferSessionShowsFileOperations: a real OpenSSH sftp
// session through the gateway appears in the console as its file
// operations, with no player.
func TestConsoleTransferSessionShowsFileOperations(t *testing.T) {
	cb := newSessionsBed(t)
	dir := t.TempDir()
	src := filepath.Join(dir, "report.txt")
	if err := os.WriteFile(src, []byte("quarterly numbers\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	remote := t.TempDir() // the managed host is this machine's sshd
	if out, err := cb.alice.SFTP(testCtx(t), cb.port, "root@web01", "put "+src+" "+remote+"/report.txt\nrm "+remote+"/report.txt\n").CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v\n%s", err, out)
	}
	s := cb.lastSession("alice")
	cl, _ := cb.signInHTTP(cb.carol)
	code, page := cb.get(cl, "/sessions/"+s.ID)
	if code != 200 || !strings.Contains(page, "File operations") || !strings.Contains(page, remote+"/report.txt") {
		t.Fatalf("status %d:\n%s", code, page)
	}
	if strings.Contains(page, "asciinema-player.min.js") || strings.Contains(page, `id="warden-player"`) {
		t.Fatal("a transfer session loads the player")
	}
	if _, list := cb.get(cl, "/sessions?command=report.txt"); !strings.Contains(list, `data-warden-session="`+s.ID+`"`) {
		t.Fatalf("not found by its file operation:\n%s", list)
	}
}
