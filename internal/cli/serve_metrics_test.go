package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/promtest"
	"github.com/warden-gw/warden/policy"
)

// metricsBed is a faultBed whose `warden serve` has http_listen, a
// metrics_token_file and a SCIM directory.
type metricsBed struct {
	*faultBed
	base, token, scimToken string
}

func newMetricsBed(t *testing.T) *metricsBed {
	t.Helper()
	b := &metricsBed{faultBed: newFaultBed(t), token: "metrics-e2e-token-0123456789", scimToken: "scim-e2e-token-0123456789"}
	port := freePort(t)
	b.base = "http://127.0.0.1:" + port
	tokFile, scimFile := filepath.Join(b.dir, "metrics.token"), filepath.Join(b.dir, "entra.token")
	os.WriteFile(tokFile, []byte(b.token+"\n"), 0o600)
	os.WriteFile(scimFile, []byte(b.scimToken+"\n"), 0o600)
	b.writePolicy(b.policy("[ops]", fmt.Sprintf("http_listen: \"127.0.0.1:%s\"\nmetrics_token_file: %s\nidentity:\n  directories: [{name: entra, token_file: %s}]\n",
		port, tokFile, scimFile)))
	b.start()
	b.waitFor("HTTP listener", func() bool {
		resp, err := http.Get(b.base + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err == nil && resp.StatusCode == 200
	})
	return b
}

func (b *metricsBed) scrape() promtest.Families {
	b.t.Helper()
	f, err := promtest.Scrape(http.DefaultClient, b.base+"/metrics", b.token)
	if err != nil {
		b.t.Fatal(err)
	}
	return f
}

// until scrapes until cond holds (the store-backed gauges are cached for
// a few seconds; session ends are counted as the gateway writes them).
func (b *metricsBed) until(what string, cond func(f promtest.Families) bool) promtest.Families {
	b.t.Helper()
	var f promtest.Families
	b.waitFor(what, func() bool { f = b.scrape(); return cond(f) })
	return f
}

// TestServeMetricsCountWhatHappened runs `warden serve` with real OpenSSH
// sessions, a refusal, a pending request, an approval and SCIM calls, and
// checks, by scraping /metrics over HTTP and parsing the text format, that
// each counter moved by exactly what happened.
func TestServeMetricsCountWhatHappened(t *testing.T) {
	b := newMetricsBed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f0 := b.scrape()
	exits := f0.Get("warden_sessions_ended_total", "reason", "exit")
	signs := f0.Get("warden_credential_sign_seconds", "backend", "builtin", "result", "ok")
	if v, ok := f0.Value("warden_sessions_live"); !ok || v != 0 {
		t.Fatalf("live sessions at start: %v %v", v, ok)
	}

	// A session held open: live is 1 while it runs, 0 after.
	cmd := b.alice.SSH(ctx, b.port, "root@web01", "cat")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	b.until("one live session", func(f promtest.Families) bool { return f.Get("warden_sessions_live") == 1 })
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("held session: %v", err)
	}
	// The row is ended (and counted) just before the session leaves the
	// live registry.
	f := b.until("no live session", func(f promtest.Families) bool {
		return f.Get("warden_sessions_ended_total", "reason", "exit") == exits+1 && f.Get("warden_sessions_live") == 0
	})

	// A recorded session with known bytes: 30000 in, 50000 out.
	const in, out = 30000, 50000
	bytesIn, bytesOut := f.Get("warden_session_bytes_total", "direction", "in"), f.Get("warden_session_bytes_total", "direction", "out")
	cmd = b.alice.SSH(ctx, b.port, "root@web01", fmt.Sprintf("cat >/dev/null; head -c %d /dev/zero", out))
	cmd.Stdin = strings.NewReader(strings.Repeat("a", in))
	got, err := cmd.Output()
	if err != nil || len(got) != out {
		t.Fatalf("session: %v, %d bytes out", err, len(got))
	}
	f = b.until("the session's end", func(f promtest.Families) bool {
		return f.Get("warden_sessions_ended_total", "reason", "exit") == exits+2
	})
	if d := f.Get("warden_session_bytes_total", "direction", "in") - bytesIn; d < in {
		t.Errorf("bytes in moved by %v, want at least %d", d, in)
	}
	if d := f.Get("warden_session_bytes_total", "direction", "out") - bytesOut; d < out {
		t.Errorf("bytes out moved by %v, want at least %d", d, out)
	}
	if got := f.Get("warden_credential_sign_seconds", "backend", "builtin", "result", "ok"); got != signs+2 {
		t.Errorf("signing histogram count %v, want %v (one per session)", got, signs+2)
	}
	if got := f.Get("warden_credential_sign_seconds", "backend", "vault"); got != 0 {
		t.Errorf("vault signings counted on the builtin backend: %v", got)
	}

	// A refusal: bob holds no grant for root@web01.
	notAuth := f.Get("warden_refusals_total", "event", "session.refused", "reason", "not_authorized")
	if _, errOut, code := b.ssh(b.bob, "root@web01", "id"); code != 1 || !strings.Contains(errOut, "warden: ") {
		t.Fatalf("bob's session: exit %d, %q", code, errOut)
	}
	f = b.scrape()
	if got := f.Get("warden_refusals_total", "event", "session.refused", "reason", "not_authorized"); got != notAuth+1 {
		t.Errorf("not_authorized refusals %v, want %v", got, notAuth+1)
	}
	if got := f.Get("warden_sessions_ended_total", "reason", "exit"); got != exits+2 {
		t.Errorf("a refused session counted as ended: %v", got)
	}

	// A pending request, then its approval: one active grant.
	o, errOut, code := b.ssh(b.bob, "gw", "request", "prod-root", "--for", "1h", "--reason", "metrics")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(o)
	if code != 0 || m == nil {
		t.Fatalf("request: %d %q %q", code, o, errOut)
	}
	b.until("one pending request", func(f promtest.Families) bool {
		return f.Get("warden_requests_pending") == 1 && f.Get("warden_grants_active") == 0
	})
	if _, errOut, code := b.ssh(b.carol, "gw", "approve", m[1]); code != 0 {
		t.Fatalf("approve: %d %q", code, errOut)
	}
	b.until("one active grant", func(f promtest.Families) bool {
		return f.Get("warden_requests_pending") == 0 && f.Get("warden_grants_active") == 1
	})

	// SCIM: one call with the directory's token, one without.
	f = b.scrape()
	ok200, no401 := f.Get("warden_scim_requests_total", "method", "get", "code", "200"), f.Get("warden_scim_requests_total", "method", "get", "code", "401")
	for _, tok := range []string{b.scimToken, ""} {
		req, _ := http.NewRequest("GET", b.base+"/scim/v2/Users", nil)
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	// Counted once the handler returns, which may be just after the
	// client has its answer.
	b.until("the SCIM requests counted", func(f promtest.Families) bool {
		return f.Get("warden_scim_requests_total", "method", "get", "code", "200") == ok200+1 &&
			f.Get("warden_scim_requests_total", "method", "get", "code", "401") == no401+1
	})
	b.auditVerify()
}

// TestServeMetricsAttacks: /metrics with metrics_token_file refuses a
// missing or wrong token (401, audited, the token never logged), and a
// client that makes up thousands of request and channel types, and sends
// a transfer stream that does not parse, moves counters but creates no
// series.
func TestServeMetricsAttacks(t *testing.T) {
	b := newMetricsBed(t)
	for _, tok := range []string{"", "wrong-token-00000000000000", b.token + "x"} {
		if _, err := promtest.Scrape(http.DefaultClient, b.base+"/metrics", tok); err == nil || !strings.Contains(err.Error(), "status 401") {
			t.Fatalf("token %q: %v, want 401", tok, err)
		}
	}
	var events int
	if err := b.reader().DB().QueryRow(`SELECT count(*) FROM audit_events WHERE type = 'metrics.unauthorized'`).Scan(&events); err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Errorf("%d metrics.unauthorized events for one source in a minute, want 1", events)
	}
	if strings.Contains(b.gw.log.String(), b.token) {
		t.Error("the metrics token is in the gateway's log")
	}

	f0 := b.scrape()
	series := f0.Series("warden_refusals_total")
	other := f0.Get("warden_refusals_total", "event", "forward.refused", "reason", "other")
	recErrs := f0.Get("warden_recording_errors_total")

	// The attacker is alice, with her real key, over Go's SSH client.
	raw, err := os.ReadFile(b.alice.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := gossh.Dial("tcp", b.gw.addr, &gossh.ClientConfig{
		User: "root@web01", Auth: []gossh.AuthMethod{gossh.PublicKeys(key)},
		HostKeyCallback: gossh.FixedHostKey(b.gwKey), Timeout: 30 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const requests, channels = 300, 50
	for i := range requests {
		if ok, _, err := conn.SendRequest(fmt.Sprintf("evil-%d@attacker.example", i), true, nil); ok || err != nil {
			t.Fatalf("global request %d: %v %v", i, ok, err)
		}
	}
	for i := range channels {
		if _, _, err := conn.OpenChannel(fmt.Sprintf("chan-%d-%s", i, strings.Repeat("x", i)), nil); err == nil {
			t.Fatalf("channel %d opened", i)
		}
	}
	// scp -t whose stream is not scp: the recording fails (terminate).
	sess, err := conn.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	sess.Stdin = strings.NewReader("this is not the scp protocol\n")
	if err := sess.Run("scp -t /tmp"); err == nil {
		t.Error("an scp stream that does not parse ran to success")
	}

	f := b.until("the refusals counted", func(f promtest.Families) bool {
		return f.Get("warden_refusals_total", "event", "forward.refused", "reason", "other") == other+requests+channels
	})
	if n := f.Series("warden_refusals_total"); n > series+1 {
		t.Errorf("refusal series grew from %d to %d: %v", series, n, f.LabelValues("warden_refusals_total", "reason"))
	}
	for _, v := range f.LabelValues("warden_refusals_total", "reason") {
		if strings.Contains(v, "evil") || strings.Contains(v, "chan-") {
			t.Errorf("a client-chosen label value: %q", v)
		}
	}
	f = b.until("the failed recording", func(f promtest.Families) bool {
		return f.Get("warden_sessions_ended_total", "reason", "recording_failed") == 1
	})
	if got := f.Get("warden_recording_errors_total"); got != recErrs+1 {
		t.Errorf("recording errors %v, want %v", got, recErrs+1)
	}
}

// A metrics_token_file that is missing or holds a guessable token stops
// the start (metrics meant to be private are never served open); without
// http_listen there is nothing to scrape and no metrics at all.
func TestServeMetricsTokenFileFailsClosed(t *testing.T) {
	dir := t.TempDir()
	tok := filepath.Join(dir, "metrics.token")
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(`listen: "127.0.0.1:0"
http_listen: "127.0.0.1:0"
metrics_token_file: `+tok+`
data_dir: data
groups: [{name: ops}]
users: [{name: dana, groups: [ops]}]
`), 0o600)
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := openGateway(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "metrics_token_file") {
		t.Fatalf("missing token file: %v", err)
	}
	os.WriteFile(tok, []byte("short\n"), 0o600)
	if _, err := openGateway(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Fatalf("short token: %v", err)
	}
	os.WriteFile(tok, []byte("metrics-token-0123456789\n"), 0o600)
	r, err := openGateway(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	if r.metrics == nil {
		t.Error("no metrics with http_listen")
	}
	r.close()

	os.WriteFile(cfgPath, []byte(`listen: "127.0.0.1:0"
data_dir: data
groups: [{name: ops}]
users: [{name: dana, groups: [ops]}]
`), 0o600)
	if cfg, err = policy.Load(cfgPath); err != nil {
		t.Fatal(err)
	}
	if r, err = openGateway(ctx, cfg, log); err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.metrics != nil {
		t.Error("metrics without http_listen")
	}
}

// The token is read at start, so a reload that names another token file
// is refused rather than left saying something the gateway does not do.
func TestReloadRefusesNewMetricsTokenFile(t *testing.T) {
	parse := func(tokenFile string) *policy.Config {
		t.Helper()
		c, err := policy.Parse([]byte("http_listen: \"127.0.0.1:0\"\nmetrics_token_file: "+tokenFile+"\n"), "/etc/warden/warden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if err := restartOnly(parse("/etc/warden/a.token"), parse("/etc/warden/a.token")); err != nil {
		t.Fatalf("same file: %v", err)
	}
	if err := restartOnly(parse("/etc/warden/a.token"), parse("/etc/warden/b.token")); err == nil || !strings.Contains(err.Error(), "metrics_token_file cannot change on reload") {
		t.Fatalf("changed file: %v", err)
	}
}
