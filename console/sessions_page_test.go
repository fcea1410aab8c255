package console

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	nextRE   = regexp.MustCompile(`href="([^"]+)" rel="next"`)
	cmdRowRE = regexp.MustCompile(`<tr data-warden-command="(\d+)" data-offset="([0-9.]+)"`)
)

// TestSessionPage: the page carries a row per command with its stored
// offset, the player's data, the details, and a green badge for a sealed
// session whose evidence agrees.
func TestSessionPage(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "tia")
	status, body := get(t, cl, tc.srv.URL+"/sessions/"+f.annWeb)
	if status != 200 {
		t.Fatalf("status %d\n%s", status, body)
	}
	rows := cmdRowRE.FindAllStringSubmatch(body, -1)
	if len(rows) != 2 || rows[0][2] != "0.750" || rows[1][2] != "1.400" {
		t.Fatalf("command rows %q\n%s", rows, body)
	}
	for _, want := range []string{`data-cast="/sessions/` + f.annWeb + `.cast"`, `data-warden-verified="ok"`,
		`/static/player/asciinema-player.min.js`, `/static/session.js`, "acme-root", "uptime", `id="warden-speed"`,
		`id="warden-idle" checked`, `href="/sessions/` + f.annWeb + `.cast?download=1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

// TestSessionBadgeTurnsRed: a recording changed after the session ended
// (one byte) turns the badge red and names the file.
func TestSessionBadgeTurnsRed(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	s, err := tc.c.d.Store.Session(t.Context(), f.annWeb)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tc.c.d.DataDir, s.RecordingPath)
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte("up 3 days"), []byte("up 4 days"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	cl, _ := tc.signIn(t, "eve")
	_, body := get(t, cl, tc.srv.URL+"/sessions/"+f.annWeb)
	if !strings.Contains(body, `data-warden-verified="mismatch"`) || !strings.Contains(body, "badge-bad") ||
		!strings.Contains(body, "differs from the sealed digest") {
		t.Fatalf("tampered recording:\n%s", body)
	}
	if strings.Contains(body, `data-warden-verified="ok"`) {
		t.Fatal("green badge on a tampered recording")
	}
	// A live session is not sealed yet: neither green nor red.
	_, body = get(t, cl, tc.srv.URL+"/sessions/"+f.live)
	if !strings.Contains(body, `data-warden-verified="live"`) {
		t.Fatalf("live session badge:\n%s", body)
	}
}

// TestTransferSessionShowsFileOperations: an sftp session lists its file
// operations and loads no player.
func TestTransferSessionShowsFileOperations(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "eve")
	status, body := get(t, cl, tc.srv.URL+"/sessions/"+f.transfer)
	if status != 200 || !strings.Contains(body, "File operations (2)") || !strings.Contains(body, "put /srv/app.tar") {
		t.Fatalf("status %d\n%s", status, body)
	}
	if strings.Contains(body, "asciinema-player.min.js") || strings.Contains(body, "warden-player") {
		t.Fatal("a transfer session loads the player")
	}
	if st, _ := get(t, cl, tc.srv.URL+"/sessions/"+f.transfer+".cast"); st != 404 {
		t.Fatalf("cast of a session without a recording: %d", st)
	}
}

// TestSessionIDsAreChecked: anything that is not a session ID's alphabet
// gets the same 404 before any lookup, and a path trick never reaches a
// file.
func TestSessionIDsAreChecked(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "eve")
	_, want := get(t, cl, tc.srv.URL+"/sessions/"+newID(t))
	for _, p := range []string{f.annWeb + ".cast.cast", f.annWeb + "%2e%2e", "..%2F..%2Fwarden.db", f.annWeb + "%00",
		strings.Repeat("a", 129), f.annWeb + ".CAST", "a.b", "%2e%2e.cast", f.annWeb + "%20"} {
		status, body := get(t, cl, tc.srv.URL+"/sessions/"+p)
		if status != 404 || !strings.Contains(body, "No such session") {
			t.Errorf("%s: %d\n%s", p, status, body)
		}
	}
	if !strings.Contains(want, "No such session") {
		t.Fatal(want)
	}
}

// TestCastRefusesAPlantedLink: a recording replaced by a symbolic link to
// a file outside the data directory is not served.
func TestCastRefusesAPlantedLink(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	s, err := tc.c.d.Store.Session(t.Context(), f.annWeb)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("TOPSECRET\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tc.c.d.DataDir, s.RecordingPath)
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, p); err != nil {
		t.Fatal(err)
	}
	cl, _ := tc.signIn(t, "eve")
	status, body := get(t, cl, tc.srv.URL+"/sessions/"+f.annWeb+".cast")
	if status == 200 || strings.Contains(body, "TOPSECRET") {
		t.Fatalf("planted link served: %d %s", status, body)
	}
}

// TestCastIsGzipped: with Accept-Encoding gzip the recording arrives
// gzip-compressed and decompresses to the file's bytes; without, as is;
// ?download=1 makes it an attachment named after the session.
func TestCastIsGzipped(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	s, err := tc.c.d.Store.Session(t.Context(), f.annWeb)
	if err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(filepath.Join(tc.c.d.DataDir, s.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := tc.signIn(t, "eve")
	fetch := func(enc, query string) (*http.Response, []byte) {
		req, _ := http.NewRequest("GET", tc.srv.URL+"/sessions/"+f.annWeb+".cast"+query, nil)
		req.Header.Set("Accept-Encoding", enc) // set by hand: the client then does not decompress
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, b := fetch("br, gzip;q=0.8", "")
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("headers %v", resp.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, file) {
		t.Fatalf("gunzipped %d bytes, file %d (%v)", len(plain), len(file), err)
	}
	for _, enc := range []string{"identity", "gzip;q=0", "gzip;q=0, *"} {
		resp, b = fetch(enc, "")
		if resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(b, file) {
			t.Fatalf("%q: encoding %q, %d bytes", enc, resp.Header.Get("Content-Encoding"), len(b))
		}
	}
	resp, _ = fetch("gzip", "?download=1")
	if cd := resp.Header.Get("Content-Disposition"); cd != `attachment; filename="`+f.annWeb+`.cast"` {
		t.Fatalf("Content-Disposition %q", cd)
	}
}

// TestLiveCastServesWholeLines: while a session is live its recorder may
// be mid-line; the cast served stops at the last whole line.
func TestLiveCastServesWholeLines(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	s, err := tc.c.d.Store.Session(t.Context(), f.live)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(tc.c.d.DataDir, s.RecordingPath)
	whole, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	fh, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fh.WriteString(`[9.5, "o", "half a li`); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	cl, _ := tc.signIn(t, "eve")
	req, _ := http.NewRequest("GET", tc.srv.URL+"/sessions/"+f.live+".cast", nil)
	req.Header.Set("Accept-Encoding", "identity")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(b, whole) {
		t.Fatalf("served %q\nwant %q", b, whole)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=0.5": true,
		"gzip;q=0": false, "gzip; q=0.0": false, "*": true, "*;q=0": false, "gzip;q=0, *": false, "br": false,
		"gzip;q=x": false, "x-gzip": false} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}
