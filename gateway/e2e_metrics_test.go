package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/promtest"
	"github.com/warden-gw/warden/internal/vaulttest"
	"github.com/warden-gw/warden/metrics"
)

// withMetrics gives the testbed's gateway m, and returns the URL that
// serves it.
func withMetrics(t *testing.T, m *metrics.Metrics) (func(*testbed, *gateway.Options), string) {
	srv := httptest.NewServer(m.Handler(metrics.HandlerOptions{}))
	t.Cleanup(srv.Close)
	return func(_ *testbed, o *gateway.Options) { o.Metrics = m }, srv.URL
}

func scrapeMetrics(t *testing.T, url string) promtest.Families {
	t.Helper()
	f, err := promtest.Scrape(http.DefaultClient, url, "")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// With Vault as the backend, each certificate is one observation of
// backend vault; an outage is one of result error, a refusal
// credential_failed, and a session row ended credential_failed.
func TestMetricsVaultSigningAndOutage(t *testing.T) {
	v := vaulttest.Start(t)
	m := metrics.New(metrics.Options{})
	configure, url := withMetrics(t, m)
	b := newTestbed(t, bedOptions{vault: v, configure: configure})

	if out, errOut, code := b.run(b.alice, "root@web01", "echo ok"); code != 0 || out != "ok\n" {
		t.Fatalf("session: %d %q %q", code, out, errOut)
	}
	b.lastSession("alice") // ended
	f := scrapeMetrics(t, url)
	if got := f.Get("warden_credential_sign_seconds", "backend", "vault", "result", "ok"); got != 1 {
		t.Errorf("vault signings %v, want 1", got)
	}
	if got := f.Get("warden_credential_sign_seconds", "backend", "builtin"); got != 0 {
		t.Errorf("builtin signings %v on a vault gateway", got)
	}

	v.Pause()
	_, errOut, code := b.run(b.alice, "root@web01", "echo must-not-run")
	v.Resume()
	if code != 1 || errOut != "warden: credential vault unavailable\n" {
		t.Fatalf("outage: %d %q", code, errOut)
	}
	b.waitEvent("credential.failed", "unavailable")
	if s := b.lastSession("alice"); s.EndReason != "credential_failed" { // counted before the row is ended
		t.Fatalf("end reason %q", s.EndReason)
	}
	f = scrapeMetrics(t, url)
	if got := f.Get("warden_credential_sign_seconds", "backend", "vault", "result", "error"); got != 1 {
		t.Errorf("failed vault signings %v, want 1", got)
	}
	if got := f.Get("warden_refusals_total", "event", "session.refused", "reason", "credential_failed"); got != 1 {
		t.Errorf("credential_failed refusals %v, want 1", got)
	}
	if got := f.Get("warden_sessions_ended_total", "reason", "credential_failed"); got != 1 {
		t.Errorf("sessions ended credential_failed %v, want 1", got)
	}
}

// A recording that fails mid-session (a full disk) is one recording
// error, however many writes failed in both directions after it.
func TestMetricsRecordingFailureCountedOnce(t *testing.T) {
	var mnt string
	m := metrics.New(metrics.Options{})
	configure, url := withMetrics(t, m)
	b := newTestbed(t, bedOptions{configure: configure, prepare: func(data string) {
		mnt = filepath.Join(data, "recordings")
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			panic(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
			panic("mount tmpfs (tests run as root): " + err.Error() + ": " + string(out))
		}
	}})
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	_, errOut, code := b.run(b.alice, "root@web01", "echo started; head -c 4000000 /dev/zero | tr '\\0' x; echo; echo finished")
	if code != 1 || !strings.Contains(errOut, "session recording failed") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	if s := b.lastSession("alice"); s.EndReason != "recording_failed" {
		t.Fatalf("end reason %q", s.EndReason)
	}
	f := scrapeMetrics(t, url)
	if got := f.Get("warden_recording_errors_total"); got != 1 {
		t.Errorf("recording errors %v, want 1", got)
	}
	if got := f.Get("warden_sessions_ended_total", "reason", "recording_failed"); got != 1 {
		t.Errorf("sessions ended recording_failed %v, want 1", got)
	}
	if got := f.Get("warden_session_bytes_total", "direction", "out"); got <= 0 {
		t.Errorf("bytes out %v: the output before the failure was not counted", got)
	}
}

// A key nobody holds fails authentication: a refusal auth.failed, counted
// although its audit event is one per source a minute; a command-interface
// error is a command.refused.
func TestMetricsPreAuthAndCommandRefusals(t *testing.T) {
	m := metrics.New(metrics.Options{})
	configure, url := withMetrics(t, m)
	b := newTestbed(t, bedOptions{configure: configure})
	for range 3 {
		if _, _, code := b.run(b.stranger, "root@web01", "id"); code != 255 {
			t.Fatalf("stranger: exit %d, want ssh's 255", code)
		}
	}
	if _, _, code := b.run(b.alice, "gw", "no-such-command"); code == 0 {
		t.Fatal("an unknown command succeeded")
	}
	f := scrapeMetrics(t, url)
	if got := f.Get("warden_refusals_total", "event", "auth.failed", "reason", "auth_rejected"); got < 3 {
		t.Errorf("auth.failed refusals %v, want at least one per attempt (3)", got)
	}
	if got := f.Get("warden_refusals_total", "event", "command.refused", "reason", "none"); got != 1 {
		t.Errorf("command.refused %v, want 1", got)
	}
	if got := f.Get("warden_sessions_ended_total", "reason", "exit"); got != 0 {
		t.Errorf("sessions ended %v: nothing started", got)
	}
}
