package console

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// castEvent is one event of a test recording.
type castEvent struct {
	T    float64
	Code string
	Data string
}

// seeded describes a test session: who, where, what it printed, and the
// commands it logged (each at its offset into the recording).
type seeded struct {
	User, Login, Host, Tenant, Role string
	Started                         time.Time
	Events                          []castEvent
	Commands                        []seededCmd
	EndReason                       string
	Open                            bool // leave it open (live)
	NoRecording                     bool
}

type seededCmd struct {
	Offset  float64
	Source  string
	Command string
}

func newID(t testing.TB) string {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

// writeCast writes an asciicast v2 file for sd under dir and returns its
// relative path and SHA-256.
func writeCast(t testing.TB, dir, id string, sd seeded) (string, string) {
	t.Helper()
	rel := "recordings/" + sd.Started.UTC().Format("2006-01-02") + "/" + id + ".cast"
	if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(rel)), 0o700); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	f, err := os.OpenFile(filepath.Join(dir, rel), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	w := io.MultiWriter(f, h)
	hdr, _ := json.Marshal(map[string]any{"version": 2, "width": 80, "height": 24, "timestamp": sd.Started.Unix(),
		"env": map[string]string{"TERM": "xterm"}, "title": sd.User + " as " + sd.Login + "@" + sd.Host,
		"warden": map[string]any{"session_id": id, "user": sd.User, "login": sd.Login, "host": sd.Host, "tenant": sd.Tenant}})
	fmt.Fprintf(w, "%s\n", hdr)
	for _, e := range sd.Events {
		d, _ := json.Marshal(e.Data)
		fmt.Fprintf(w, "[%.6f, %q, %s]\n", e.T, e.Code, d)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return rel, hex.EncodeToString(h.Sum(nil))
}

// seed stores sd as a session (row, recording, commands, end) and returns
// its ID. Ended sessions are indexed for output search at once.
func (tc *testConsole) seed(t testing.TB, sd seeded) string {
	t.Helper()
	ctx := context.Background()
	st := tc.c.d.Store
	id := newID(t)
	if sd.Login == "" {
		sd.Login = "root"
	}
	if sd.Started.IsZero() {
		sd.Started = time.Now().UTC().Add(-time.Hour)
	}
	if sd.EndReason == "" {
		sd.EndReason = "exit"
	}
	var rel, sum string
	if !sd.NoRecording {
		rel, sum = writeCast(t, tc.c.d.DataDir, id, sd)
	}
	if err := st.StartSession(ctx, audit.Session{ID: id, User: sd.User, Login: sd.Login, Host: sd.Host, Tenant: sd.Tenant,
		Role: sd.Role, StartedAt: sd.Started, RecordingPath: rel, ClientAddr: "127.0.0.1:5555"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range sd.Commands {
		off := c.Offset
		src := c.Source
		if src == "" {
			src = audit.SourceShell
		}
		cm := audit.Command{SessionID: id, TS: sd.Started.Add(time.Duration(off * float64(time.Second))), User: sd.User,
			Login: sd.Login, Host: sd.Host, Tenant: sd.Tenant, Source: src, Command: c.Command, Action: audit.ActionAllowed}
		if src == audit.SourceShell || src == audit.SourceExec {
			cm.Offset = &off
		}
		if err := st.LogCommand(ctx, cm); err != nil {
			t.Fatal(err)
		}
	}
	if sd.Open {
		return id
	}
	end := sd.Started.Add(time.Minute)
	if n := len(sd.Events); n > 0 {
		end = sd.Started.Add(time.Duration((sd.Events[n-1].T + 1) * float64(time.Second)))
	}
	if err := st.EndSession(ctx, id, audit.SessionEnd{EndedAt: end, Reason: sd.EndReason, RecordingSHA256: sum,
		BytesOut: 100}); err != nil {
		t.Fatal(err)
	}
	if err := st.IndexSession(ctx, id); err != nil {
		t.Fatal(err)
	}
	return id
}

// shell is a recording of a shell that ran cmds, each echoed and
// followed by its output, gap seconds apart.
func shell(gap float64, cmds ...[2]string) ([]castEvent, []seededCmd) {
	var ev []castEvent
	var cm []seededCmd
	t := 0.2
	ev = append(ev, castEvent{t, "o", "$ "})
	for _, c := range cmds {
		t += gap
		ev = append(ev, castEvent{t, "o", c[0]})
		t += 0.05
		ev = append(ev, castEvent{t, "o", "\r\n"})
		cm = append(cm, seededCmd{Offset: t, Command: c[0]})
		t += 0.1
		ev = append(ev, castEvent{t, "o", c[1] + "\r\n$ "})
	}
	return ev, cm
}

var sessionRowRE = regexp.MustCompile(`data-warden-session="([a-z0-9]+)"`)

// get fetches path with cl and returns status and body.
func get(t testing.TB, cl *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// listIDs returns the session IDs that the list at url shows.
func listIDs(t testing.TB, cl *http.Client, url string) (int, []string, string) {
	t.Helper()
	status, body := get(t, cl, url)
	var ids []string
	for _, m := range sessionRowRE.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return status, ids, body
}
