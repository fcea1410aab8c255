package console

import (
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/browsertest"
)

// Benchmarks of the session pages (make bench; README "Benchmarks").

// benchSessions is the size the list must stay fast at.
const benchSessions = 100_000

// seedMany inserts n ended sessions over a year, five commands each, with
// the screen text of every tenth in the output index; tenants acme,
// globex and t02..t19, 200 users, 500 hosts. Rows go in through the
// store's writer (Store.Update) in one transaction, many rows a statement.
func seedMany(b *testing.B, st *audit.Store, n int) {
	b.Helper()
	rng := rand.New(rand.NewSource(1))
	words := strings.Fields("ls cd cat grep tail less vim systemctl status restart journalctl df du top ps kill " +
		"apt install update nginx postgres psql select from where users orders deploy release backup rsync")
	tenants := []string{"acme", "globex"}
	for i := 2; i < 20; i++ {
		tenants = append(tenants, fmt.Sprintf("t%02d", i))
	}
	base := time.Date(2025, 12, 1, 0, 0, 0, 0, time.UTC)
	const batch = 200
	err := st.Update(context.Background(), func(tx *audit.Tx) error {
		for lo := 0; lo < n; lo += batch {
			var sv, cv []string
			var sa, ca []any
			for i := lo; i < min(lo+batch, n); i++ {
				id := fmt.Sprintf("bench%07d", i)
				tenant := tenants[i%len(tenants)]
				host, user := fmt.Sprintf("h%03d", rng.Intn(500)), fmt.Sprintf("u%03d", rng.Intn(200))
				start := base.Add(time.Duration(i) * (365 * 24 * time.Hour / time.Duration(n)))
				started, _ := audit.Time(start)
				ended, _ := audit.Time(start.Add(10 * time.Minute))
				sv = append(sv, "(?, ?, 'root', ?, ?, 'ops', ?, ?, 'exit', ?)")
				sa = append(sa, id, user, host, tenant, started, ended, "recordings/x/"+id+".cast")
				for c := 0; c < 5; c++ {
					cmd := words[rng.Intn(len(words))] + " " + words[rng.Intn(len(words))] + " /var/" + words[rng.Intn(len(words))]
					if i%100 == 7 && c == 2 {
						cmd = "psql -c 'DROP TABLE customers'"
					}
					cv = append(cv, "(?, ?, ?, 'root', ?, ?, 'shell', ?, 'allowed', ?)")
					ca = append(ca, id, started, user, host, tenant, cmd, float64(c)*12.5)
				}
			}
			if _, err := tx.Exec(`INSERT INTO sessions (id, user, login, host, tenant, role, started_at, ended_at, end_reason, recording_path) VALUES `+
				strings.Join(sv, ","), sa...); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action, offset) VALUES `+
				strings.Join(cv, ","), ca...); err != nil {
				return err
			}
		}
		for i := 0; i < n; i += 10 {
			id := fmt.Sprintf("bench%07d", i)
			text := "root@h:~# systemctl status nginx\nactive (running)\n"
			if i%1000 == 0 {
				text += "ERROR: cannot DROP TABLE customers\n"
			}
			res, err := tx.Exec(`INSERT INTO session_output_chunks (session_id) VALUES (?)`, id)
			if err != nil {
				return err
			}
			docid, _ := res.LastInsertId()
			if _, err := tx.Exec(`INSERT INTO session_output_fts (docid, text) VALUES (?, ?)`, docid, text); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO session_output_index (session_id, indexed_at, bytes, truncated) VALUES (?, ?, ?, 0)`,
				id, "2026-12-01T00:00:00.000000Z", len(text)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkSessionsList100k times GET /sessions (handler, query and
// rendering, over loopback HTTP) at 100,000 sessions: the first page,
// a deep page, and each kind of filter, as an auditor of every tenant
// and as one tenant's auditor.
func BenchmarkSessionsList100k(b *testing.B) {
	tc := newTestConsole(b)
	start := time.Now()
	seedMany(b, tc.c.d.Store, benchSessions)
	b.Logf("seeded %d sessions, %d commands in %v", benchSessions, 5*benchSessions, time.Since(start).Round(time.Millisecond))
	eve, _ := tc.signIn(b, "eve")
	tia, _ := tc.signIn(b, "tia")
	// A cursor half-way down the list, taken from a real Next link.
	_, body := get(b, eve, tc.srv.URL+"/sessions?until=2026-06-01")
	m := nextRE.FindStringSubmatch(body)
	if m == nil {
		b.Fatal("no next link")
	}
	deep := strings.ReplaceAll(m[1], "&amp;", "&")
	for _, bc := range []struct {
		name string
		cl   *http.Client
		path string
	}{
		{"first-page", eve, "/sessions"},
		{"deep-page", eve, deep},
		{"user", eve, "/sessions?user=u042"},
		{"host", eve, "/sessions?host=h123"},
		{"tenant", eve, "/sessions?tenant=t07"},
		{"date-range", eve, "/sessions?since=2026-03-01&until=2026-03-31"},
		{"end-reason-none", eve, "/sessions?end_reason=killed"},
		{"command-common", eve, "/sessions?command=nginx"},
		{"command-rare", eve, "/sessions?command=DROP+TABLE"},
		{"output-common", eve, "/sessions?output=nginx"},
		{"output-rare", eve, "/sessions?output=DROP+TABLE+customers"},
		{"live-only", eve, "/sessions?live=1"},
		{"one-tenant-scope", tia, "/sessions"},
		{"one-tenant-scope-command", tia, "/sessions?command=DROP+TABLE"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cpu0 := cpuTime(b)
			for i := 0; i < b.N; i++ {
				resp, err := bc.cl.Get(tc.srv.URL + bc.path)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("%s: %d", bc.path, resp.StatusCode)
				}
			}
			// CPU time of this process (server and client) per page: on
			// a shared machine, steadier than the wall time.
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op")
		})
	}
}

// BenchmarkFirstFrame50MB times, in real Chromium, a 50 MB recording's
// session page from navigation to the player showing the recording's
// first screen (the first output's text in the terminal), as measured by
// the page itself (performance.now() since navigation start).
func BenchmarkFirstFrame50MB(b *testing.B) {
	tc := newTestConsole(b)
	var ev []castEvent
	ev = append(ev, castEvent{0.5, "o", "WARDEN-FIRST-FRAME login banner\r\n"})
	line := strings.Repeat("0123456789abcdef ", 4)
	size := 0
	for i := 0; size < 50<<20; i++ {
		s := fmt.Sprintf("%07d %s\r\n", i, line)
		ev = append(ev, castEvent{1 + float64(i)*0.001, "o", s})
		size += len(s) + 24
	}
	id := tc.seed(b, seeded{User: "dan", Host: "web01", Tenant: "acme", Events: ev,
		Commands: []seededCmd{{Offset: 2, Command: "cat big.log"}}})
	s, err := tc.c.d.Store.Session(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(tc.c.d.DataDir, s.RecordingPath))
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("recording: %.1f MB, %d events", float64(fi.Size())/(1<<20), len(ev))
	base := serveWeb(b, tc)
	ctx := browsertest.New(b)
	browserAs(b, ctx, base, tc.cookieFor(b, "tia"))
	const watch = `(function () {
		var done = false;
		new MutationObserver(function () {
			if (done) { return; }
			var t = document.querySelector("#warden-player .ap-term-text");
			if (t && t.textContent.indexOf("WARDEN-FIRST-FRAME") >= 0) {
				done = true;
				window.__firstFrame = performance.now();
			}
		}).observe(document, {subtree: true, childList: true, characterData: true});
	})()`
	// Watch from the document's start, before any script of the page.
	if err := chromedp.Do(ctx, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
			Source: `document.addEventListener("DOMContentLoaded", function () {` + watch + `});`})
		return err
	})); err != nil {
		b.Fatal(err)
	}
	var total float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		sctx, cancel := browsertest.Step(ctx, 60*time.Second)
		if err := chromedp.Do(sctx, chromedp.Navigate("about:blank"), chromedp.Navigate(base+"/sessions/"+id)); err != nil {
			cancel()
			b.Fatal(err)
		}
		for {
			ms, err := chromedp.Run(sctx, chromedp.Evaluate[float64](`window.__firstFrame || 0`))
			if err != nil {
				cancel()
				b.Fatal(err)
			}
			if ms > 0 {
				total += ms
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}
	b.ReportMetric(total/float64(b.N), "ms-to-first-frame")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
