package evidence

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPacketHeadlineNumbers(t *testing.T) {
	w := october(t)
	pk := w.build(filepath.Join(t.TempDir(), "acme-2026-10"))
	s := pk.Summary
	want := map[string]any{
		"Requests":                 6,
		"RequestsByState":          map[string]int{"approved": 3, "denied": 1, "pending": 2},
		"Approvals":                4,
		"Denials":                  1,
		"Grants":                   5,
		"GrantsByState":            map[string]int{"relinquished": 1, "expired": 1, "active": 2, "deprovisioned": 1},
		"GrantMedianSeconds":       int64(7200),
		"GrantLongestSeconds":      int64(31 * 24 * 3600),
		"GrantLongestID":           int64(7),
		"Sessions":                 5,
		"PrivilegedSessions":       4,
		"PrivilegedLongestSeconds": int64(45 * 60),
		"PrivilegedLongestID":      "s2",
		"PrivilegedByUser":         []UserSessions{{User: "alice", Sessions: 3, Seconds: 35 * 60}, {User: "dave", Sessions: 1, Seconds: 45 * 60}},
		"Commands":                 8,
		"CommandsAllowed":          6,
		"CommandsDenied":           2,
		"Recordings":               5,
		"RecordingProblems":        1,
		"StaleAdminsFlagged":       1,
		"StaleAdminGrantsEnded":    1,
		"ExceptionsOpen":           3,
		"ExceptionsExpired":        1,
		"ExceptionsClosed":         1,
		"Partial":                  false,
		"WithPolicy":               true,
		"PeriodStart":              "2026-10-01T00:00:00.000000Z",
		"PeriodEnd":                "2026-11-01T00:00:00.000000Z",
		"BreakGlass": []BreakGlass{{GrantID: 2, User: "dave", Role: "break-glass", StartsAt: "2026-10-10T12:00:00.000000Z",
			Approvers: []string{"carol", "erin"}, Rotation: "failed", Error: "authorized_keys not writable"}},
		"OverdueByKind": map[string]int{OverdueException: 1, OverdueStaleAdmin: 1, OverdueRotation: 1,
			OverdueRequest: 1, OverdueGrant: 1, OverdueRecording: 1},
	}
	v := reflect.ValueOf(s)
	for field, w := range want {
		if got := v.FieldByName(field).Interface(); !reflect.DeepEqual(got, w) {
			t.Errorf("%s = %#v, want %#v", field, got, w)
		}
	}
	subjects := []string{}
	for _, o := range s.Overdue {
		subjects = append(subjects, o.Kind+" "+o.Subject)
	}
	wantSubjects := []string{"expired-exception exception 1", "stale-admin user gina", "failed-rotation role break-glass",
		"pending-request request 5", "unexplained-grant grant 7", "recording recordings/2026-10-03/s6.cast"}
	if !reflect.DeepEqual(subjects, wantSubjects) {
		t.Errorf("overdue = %q\nwant %q", subjects, wantSubjects)
	}
	if len(s.AuditChainHead) != 64 || !strings.HasPrefix(s.EvidenceKey, "SHA256:") {
		t.Errorf("chain head %q, key %q", s.AuditChainHead, s.EvidenceKey)
	}
}

func TestPacketShowsValuesAsAtMonthEnd(t *testing.T) {
	w := october(t)
	dir := filepath.Join(t.TempDir(), "p")
	w.build(dir)
	rows := readJSON(t, filepath.Join(dir, "requests.json"))
	state := map[float64]any{}
	decided := map[float64]any{}
	for _, r := range rows {
		state[r["id"].(float64)], decided[r["id"].(float64)] = r["state"], r["decided_at"]
	}
	if state[4] != "approved" || state[6] != "pending" || decided[6] != nil || state[2] != "denied" || decided[2] == nil {
		t.Errorf("request states at the end = %v, decided = %v", state, decided)
	}
	for _, g := range readJSON(t, filepath.Join(dir, "grants.json")) {
		if g["id"].(float64) == 3 && (g["state"] != "active" || g["ended_at"] != nil || g["end_reason"] != nil) {
			t.Errorf("grant 3 revoked after the month shows %v", g)
		}
	}
	for _, s := range readJSON(t, filepath.Join(dir, "sessions.json")) {
		if s["id"] == "s4" && (s["ended_at"] != nil || s["duration_seconds"] != nil || s["recording_sha256"] != nil) {
			t.Errorf("session live at the end shows %v", s)
		}
		if s["id"] == "s7" {
			t.Errorf("November session in the October packet")
		}
	}
	for _, e := range readJSON(t, filepath.Join(dir, "exceptions.json")) {
		if e["id"].(float64) == 4 && (e["status"] != "open" || e["closed_at"] != nil) {
			t.Errorf("exception closed after the month shows %v", e)
		}
	}
}

func TestPacketHoldsOnlyItsTenantsRows(t *testing.T) {
	w := october(t)
	dir := filepath.Join(t.TempDir(), "acme")
	pk := w.build(dir)
	for _, name := range pk.Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte("beta")) {
			t.Errorf("%s mentions tenant beta", name)
		}
	}
	beta, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "beta", Month: at("2026-10-01T00:00:00Z"),
		Out: filepath.Join(t.TempDir(), "beta"), Policy: w.cfg, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if beta.Summary.Sessions != 1 || beta.Summary.Grants != 1 || beta.Summary.Commands != 1 || beta.Summary.ExceptionsOpen != 1 {
		t.Fatalf("beta summary = %+v", beta.Summary)
	}
}

func TestPacketVerifiesWithStockToolsAndCatchesEveryFlip(t *testing.T) {
	w := october(t)
	dir := filepath.Join(t.TempDir(), "p")
	pk := w.build(dir)
	checkTools(t, dir, true)
	if _, err := VerifyPacket(dir); err != nil {
		t.Fatalf("VerifyPacket: %v", err)
	}
	files := map[string][]byte{}
	for _, name := range pk.Files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	for _, name := range pk.Files {
		path, orig := filepath.Join(dir, name), files[name]
		// Bytes spread over the whole file (every byte of the small ones),
		// checked in memory with VerifyPacket's checks; the first, middle
		// and last also on disk with sha256sum and ssh-keygen. (The
		// signature's final newline is the one byte ssh-keygen ignores: the
		// signature is the same without it. verifyFiles still refuses it.)
		last := len(orig) - 1
		if name == SignatureName {
			last--
		}
		onDisk := map[int]bool{0: true, len(orig) / 2: true, last: true}
		positions := []int{len(orig) - 1, len(orig) / 2, last}
		for i := 0; i < len(orig); i += max(1, len(orig)/200) {
			positions = append(positions, i)
		}
		for _, i := range positions {
			flipped := bytes.Clone(orig)
			flipped[i] ^= 0x01
			files[name] = flipped
			if _, err := verifyFiles(files); err == nil {
				t.Fatalf("verifyFiles accepted %s with byte %d flipped", name, i)
			}
			if onDisk[i] {
				delete(onDisk, i)
				writeFile(t, path, flipped)
				checkToolsFor(t, dir, false, name, i)
				if _, err := VerifyPacket(dir); err == nil {
					t.Fatalf("VerifyPacket accepted %s with byte %d flipped", name, i)
				}
			}
		}
		files[name] = orig
		writeFile(t, path, orig)
	}
	checkTools(t, dir, true)
}

// checkTools runs the auditor's two commands in dir and requires that
// together they pass (ok) or fail.
func checkTools(t *testing.T, dir string, ok bool) { t.Helper(); checkToolsFor(t, dir, ok, "", 0) }

func checkToolsFor(t *testing.T, dir string, ok bool, flipped string, at int) {
	t.Helper()
	sums := exec.Command(tool(t, "sha256sum"), "--quiet", "-c", ManifestName)
	sums.Dir = dir
	sumOut, sumErr := sums.CombinedOutput()
	manifest, err := os.ReadFile(filepath.Join(dir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}
	sigOut, sigErr := sshKeygenVerify(t, filepath.Join(dir, AllowedSignersName), Namespace, filepath.Join(dir, SignatureName), manifest)
	passed := sumErr == nil && sigErr == nil
	if passed != ok {
		t.Fatalf("stock tools passed=%v, want %v (flipped %q byte %d)\nsha256sum: %v %s\nssh-keygen: %v %s",
			passed, ok, flipped, at, sumErr, sumOut, sigErr, sigOut)
	}
}

func TestPacketIsDeterministic(t *testing.T) {
	w := october(t)
	a, b := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	pa := w.build(a)
	// Later activity must not change October: a new session, another
	// closure, time passing.
	w.clk.Set(at("2026-12-03T00:00:00Z"))
	w.session("s8", "alice", "acme", 0, "2026-12-02T10:00:00Z", "2026-12-02T10:10:00Z", "date")
	w.exception("2026-12-02T00:00:00Z", "acme", "erin", "2027-01-01T00:00:00Z")
	w.clk.Set(at("2026-12-03T00:00:00Z"))
	pb := w.build(b)
	if !reflect.DeepEqual(pa.Files, pb.Files) {
		t.Fatalf("file lists differ: %v vs %v", pa.Files, pb.Files)
	}
	for _, name := range pa.Files {
		x, _ := os.ReadFile(filepath.Join(a, name))
		y, _ := os.ReadFile(filepath.Join(b, name))
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same month", name)
		}
	}
	again := w.build(a)
	if !again.Reused {
		t.Fatal("rebuilding into the same directory did not report Reused")
	}
}

func TestPacketDataFilesAgree(t *testing.T) {
	w := october(t)
	dir := filepath.Join(t.TempDir(), "p")
	pk := w.build(dir)
	for _, name := range []string{"requests", "approvals", "grants", "sessions", "commands", "exceptions", "recordings"} {
		f, err := os.Open(filepath.Join(dir, name+".csv"))
		if err != nil {
			t.Fatal(err)
		}
		records, err := csv.NewReader(f).ReadAll()
		f.Close()
		if err != nil {
			t.Fatalf("%s.csv: %v", name, err)
		}
		js := readJSON(t, filepath.Join(dir, name+".json"))
		if len(records)-1 != len(js) {
			t.Errorf("%s: %d CSV rows, %d JSON objects", name, len(records)-1, len(js))
		}
		for i, col := range records[0] {
			if len(js) > 0 {
				if _, ok := js[0][col]; !ok {
					t.Errorf("%s: CSV column %d %q missing from JSON", name, i, col)
				}
			}
		}
	}
	var s Summary
	b, _ := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err := json.Unmarshal(b, &s); err != nil || !reflect.DeepEqual(s, pk.Summary) {
		t.Fatalf("summary.json does not round-trip to the summary: %v", err)
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	html, _ := os.ReadFile(filepath.Join(dir, "summary.html"))
	for _, want := range []string{"6 (approved 3, denied 1, pending 2)", "4 approve, 1 deny",
		"median 2h0m0s", "EXPIRED", "Overdue items (6)", "6 run, 2 denied (of 8 logged)", "1 flagged with an exception"} {
		if !bytes.Contains(md, []byte(want)) || !bytes.Contains(html, []byte(want)) {
			t.Errorf("summary.md or summary.html lacks %q", want)
		}
	}
}

func TestSummaryEscapesHostileText(t *testing.T) {
	w := newWorld(t, at("2026-10-01T00:00:00Z"))
	w.session("h1", "alice", "acme", 0, "2026-10-02T10:00:00Z", "2026-10-02T10:05:00Z",
		"!<script>alert(1)</script> | [x](javascript:1) \x1b[2J", "!=HYPERLINK(\"http://evil\")")
	w.clk.Set(at("2026-11-02T00:00:00Z"))
	dir := filepath.Join(t.TempDir(), "p")
	w.build(dir)
	html, _ := os.ReadFile(filepath.Join(dir, "summary.html"))
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if bytes.Contains(html, []byte("<script>")) || !bytes.Contains(html, []byte("&lt;script&gt;")) {
		t.Errorf("summary.html does not escape the command")
	}
	if bytes.Contains(md, []byte("<script>")) || !bytes.Contains(md, []byte(`\<script\>`)) || !bytes.Contains(md, []byte(`\|`)) {
		t.Errorf("summary.md does not escape the command")
	}
	for _, b := range [][]byte{html, md} {
		if bytes.Contains(b, []byte("\x1b")) {
			t.Errorf("a summary carries a raw terminal escape")
		}
	}
	c, _ := os.ReadFile(filepath.Join(dir, "commands.csv"))
	if !bytes.Contains(c, []byte(`"'=HYPERLINK(""http://evil"")"`)) {
		t.Errorf("commands.csv does not neutralise a formula:\n%s", c)
	}
	j, _ := os.ReadFile(filepath.Join(dir, "commands.json"))
	if !bytes.Contains(j, []byte(`"command":"=HYPERLINK(\"http://evil\")"`)) {
		t.Errorf("commands.json does not keep the exact command:\n%s", j)
	}
}

func TestPacketOfMonthInProgressIsPartial(t *testing.T) {
	w := october(t) // the clock is at 2026-11-15T12:00:00Z
	pk, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-11-01T00:00:00Z"),
		Out: filepath.Join(t.TempDir(), "nov"), Policy: w.cfg, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !pk.Summary.Partial || pk.Summary.PeriodEnd != "2026-11-15T12:00:00.000000Z" || pk.Summary.Sessions != 2 { // s4 spans midnight, s7
		t.Fatalf("partial summary = %+v", pk.Summary)
	}
	md, _ := os.ReadFile(filepath.Join(pk.Dir, "summary.md"))
	if !bytes.Contains(md, []byte("PARTIAL")) {
		t.Fatal("partial packet not marked PARTIAL")
	}
}

func TestPacketWithoutPolicy(t *testing.T) {
	w := october(t)
	pk, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"),
		Out: filepath.Join(t.TempDir(), "p"), Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	s := pk.Summary
	if s.WithPolicy || len(s.BreakGlass) != 0 || s.OverdueByKind[OverdueStaleAdmin] != 0 || s.OverdueByKind[OverdueGrant] != 0 ||
		s.OverdueByKind[OverdueException] != 1 || s.Sessions != 5 {
		t.Fatalf("summary without policy = %+v", s)
	}
}

func TestEvidenceKeyIsCreatedOncePrivately(t *testing.T) {
	w := october(t)
	p1 := w.build(filepath.Join(t.TempDir(), "a"))
	st, err := os.Stat(filepath.Join(w.dir, KeyName))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, %v", st, err)
	}
	p2 := w.build(filepath.Join(t.TempDir(), "b"))
	if p1.Summary.EvidenceKey != p2.Summary.EvidenceKey {
		t.Fatal("the evidence key changed between builds")
	}
	signers, _ := os.ReadFile(filepath.Join(p1.Dir, AllowedSignersName))
	if !strings.HasPrefix(string(signers), `warden namespaces="warden-evidence" ssh-ed25519 AAAA`) {
		t.Fatalf("allowed_signers = %q", signers)
	}
}

func TestBuildRefusals(t *testing.T) {
	w := october(t)
	oct := at("2026-10-01T00:00:00Z")
	existing := filepath.Join(t.TempDir(), "existing")
	w.build(existing)
	other := filepath.Join(t.TempDir(), "other")
	if err := os.Mkdir(other, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(other, "notes.txt"), []byte("mine"))
	file := filepath.Join(t.TempDir(), "file")
	writeFile(t, file, []byte("x"))
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(t.TempDir(), link); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   error
	}{
		{"unknown tenant", func(o *Options) { o.Tenant = "gamma" }, ErrUnknownTenant},
		{"tenant that climbs", func(o *Options) { o.Tenant = "../acme" }, ErrUnknownTenant},
		{"future month", func(o *Options) { o.Month = at("2026-12-01T00:00:00Z") }, ErrFutureMonth},
		{"month not at its start", func(o *Options) { o.Month = oct.Add(time.Hour) }, ErrBadMonth},
		{"out holds another month", func(o *Options) { o.Month, o.Out = at("2026-09-01T00:00:00Z"), existing }, ErrOutputTaken},
		{"out holds other files", func(o *Options) { o.Out = other }, ErrOutputTaken},
		{"out is a file", func(o *Options) { o.Out = file }, ErrOutputTaken},
		{"out is a symlink", func(o *Options) { o.Out = link }, ErrOutputTaken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Options{DataDir: w.dir, Tenant: "acme", Month: oct, Out: filepath.Join(t.TempDir(), "p"), Policy: w.cfg, Now: w.clk.Now}
			tc.mutate(&o)
			_, err := Build(w.ctx, o)
			if !errors.Is(err, tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Build = %v, want %v on one line", err, tc.want)
			}
		})
	}
	if _, err := VerifyPacket(existing); err != nil {
		t.Fatalf("a refused build damaged the existing packet: %v", err)
	}
}

func readJSON(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return rows
}
