package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoEndToEnd runs the README's first command the way a new user
// would: the demo prints ssh lines, real ssh follows them, and the session
// shows up in `warden sessions`, `warden commands` and `warden play`.
func TestDemoEndToEnd(t *testing.T) {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal("ssh not installed: apt-get install openssh-client")
	}
	dir := t.TempDir()
	cwdBefore := listDir(t, ".")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- demo(ctx, &env{stdout: &out, stderr: io.Discard}, dir, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo never became ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := regexp.MustCompile(`ssh -p (\d+) -i (\S+/keys/alice) .*-o UserKnownHostsFile=(\S+) (\S+@demo01)@localhost uname -a`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("demo did not print the ssh line to try:\n%s", out.String())
	}
	port, key, known, user := m[1], m[2], m[3], m[4]
	sshArgs := func(key, user string, args ...string) []string {
		return append([]string{"-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes", user + "@localhost"}, args...)
	}
	// alice's standing access is never uid 0, also when the demo runs as
	// root, and the screen says which OS user runs which login.
	got, err := exec.Command(ssh, sshArgs(key, user, "echo demo-$((6*7)); id -u")...).CombinedOutput()
	if err != nil || !strings.HasPrefix(string(got), "demo-42\n") || strings.HasSuffix(string(got), "\n0\n") || strings.HasPrefix(user, "root@") {
		t.Fatalf("alice through the demo as %s: %v %q", user, err, got)
	}
	if !strings.Contains(out.String(), "Note: the demo host ") {
		t.Fatalf("the demo does not say which OS user runs a login:\n%s", out.String())
	}
	bobKey := filepath.Join(filepath.Dir(key), "bob")
	got, err = exec.Command(ssh, sshArgs(bobKey, user, "true")...).CombinedOutput()
	// A host where bob holds no role is, to him, an unknown host: the
	// answer must not tell him which hosts other tenants have.
	if err == nil || !strings.Contains(string(got), "warden: unknown host demo01") {
		t.Fatalf("bob should be refused: %v %q", err, got)
	}
	got, err = exec.Command(ssh, sshArgs(key, "alice", "whoami")...).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "sysadmins") {
		t.Fatalf("command interface: %v %q", err, got)
	}
	// The browser console, as the demo tells: the printed console line
	// gives a link that signs carol in.
	if !regexp.MustCompile(`ssh -p \d+ -i \S+/keys/carol .* carol@localhost console`).MatchString(out.String()) {
		t.Fatalf("the demo does not say how to open the console:\n%s", out.String())
	}
	got, err = exec.Command(ssh, sshArgs(filepath.Join(filepath.Dir(key), "carol"), "carol", "console")...).CombinedOutput()
	link := regexp.MustCompile(`http://127\.0\.0\.1:\d+/signin/link\?token=\S+`).FindString(string(got))
	if err != nil || link == "" {
		t.Fatalf("ssh carol@gateway console: %v %q", err, got)
	}
	if who := demoConsoleSignIn(t, link); who != "carol" {
		t.Fatalf("the console link signed in %q, want carol", who)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}

	data := filepath.Join(dir, "data")
	sOut, errOut, code := run("sessions", "--data", data, "--json")
	var sessions []map[string]any
	if code != 0 || json.Unmarshal([]byte(sOut), &sessions) != nil || len(sessions) != 1 || sessions[0]["user"] != "alice" {
		t.Fatalf("sessions: %d %q %q", code, sOut, errOut)
	}
	cOut, _, code := run("commands", "--data", data, "--grep", "demo-")
	if code != 0 || !strings.Contains(cOut, "echo demo-$((6*7))") {
		t.Fatalf("commands: %q", cOut)
	}
	pOut, _, code := run("play", "--data", data, "--speed", "1000", sessions[0]["id"].(string))
	if code != 0 || !strings.Contains(pOut, "demo-42") {
		t.Fatalf("play: %q", pOut)
	}
	if after := listDir(t, "."); after != cwdBefore {
		t.Fatalf("demo wrote outside --dir: before %q after %q", cwdBefore, after)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}

func TestDemoRefusesDirOthersCanWrite(t *testing.T) {
	uid := os.Geteuid()
	mk := func(t *testing.T, mode os.FileMode) string {
		d := filepath.Join(t.TempDir(), "demo")
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	tests := []struct {
		name string
		dir  func(t *testing.T) string
		uid  int
		want string
	}{
		{"world-writable", func(t *testing.T) string { return mk(t, 0o777) }, uid, "is writable by others (mode 0777)"},
		{"group-writable", func(t *testing.T) string { return mk(t, 0o770) }, uid, "is writable by others (mode 0770)"},
		{"world-writable and sticky is still shared", func(t *testing.T) string { return mk(t, os.ModeSticky|0o777) }, uid, "is writable by others"},
		{"someone else's", func(t *testing.T) string { return mk(t, 0o700) }, uid + 1, "belongs to uid"},
		{"parent others can write", func(t *testing.T) string {
			return filepath.Join(mk(t, 0o777), "sub")
		}, uid, "is writable by others (mode 0777), who could replace the demo's directory"},
		{"planted symlink", func(t *testing.T) string {
			d := mk(t, 0o700)
			if err := os.Symlink("/etc/passwd", filepath.Join(d, "warden.yaml")); err != nil {
				t.Fatal(err)
			}
			return d
		}, uid, "warden.yaml is a symlink"},
		{"planted key others can write", func(t *testing.T) string {
			d := mk(t, 0o700)
			if err := os.Mkdir(filepath.Join(d, "keys"), 0o700); err != nil {
				t.Fatal(err)
			}
			pub := filepath.Join(d, "keys", "alice.pub")
			if err := os.WriteFile(pub, []byte("ssh-ed25519 AAAA mallory\n"), 0o666); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(pub, 0o666); err != nil {
				t.Fatal(err)
			}
			return d
		}, uid, "alice.pub is writable by others (mode 0666)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := tc.dir(t)
			before := listTree(t, filepath.Dir(dir))
			_, err := checkDemoDir(dir, tc.uid)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkDemoDir(%s) = %v, want %q", dir, err, tc.want)
			}
			if after := listTree(t, filepath.Dir(dir)); after != before {
				t.Fatalf("a refused --dir was written to: %s -> %s", before, after)
			}
		})
	}
	// Through the command line: one line, exit 1, nothing started.
	dir := mk(t, 0o777)
	_, errOut, code := run("demo", "--dir", dir, "--port", "0")
	if code != 1 || !strings.HasPrefix(errOut, "warden: demo: "+dir+" is writable by others") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("demo --dir %s: exit %d, stderr %q", dir, code, errOut)
	}
}

func TestDemoDirAccepted(t *testing.T) {
	uid := os.Geteuid()
	// A new directory under a sticky, world-writable parent such as /tmp
	// is made 0700: others cannot rename or remove it there.
	sticky := t.TempDir()
	if err := os.Chmod(sticky, os.ModeSticky|0o777); err != nil {
		t.Fatal(err)
	}
	got, err := checkDemoDir(filepath.Join(sticky, "a", "demo"), uid)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(got); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("made %s: %v %v", got, fi.Mode(), err)
	}
	// A symlinked --dir is resolved once; the demo works on its target.
	real := filepath.Join(t.TempDir(), "real")
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	if got, err := checkDemoDir(link, uid); err != nil || got != real {
		t.Fatalf("checkDemoDir(link) = %q, %v, want %q", got, err, real)
	}
}

// TestDemoKeysComeFromPrivateKeys: a planted keys/alice.pub is never
// trusted; the public key is always the private key's.
func TestDemoKeysComeFromPrivateKeys(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "alice")
	const planted = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMRGsBy1Y7ebi+aq1rZcGSzuxw7r6/lXMj2bFpiTpka+ mallory"
	if err := os.WriteFile(path+".pub", []byte(planted+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	line, err := demoUserKey(path)
	if err != nil || strings.Contains(line, "AAAAC3NzaC1lZDI1NTE5AAAAIMRGsBy1Y7") {
		t.Fatalf("planted .pub used: %q %v", line, err)
	}
	if b, _ := os.ReadFile(path + ".pub"); string(b) != line+"\n" {
		t.Fatalf(".pub not rewritten from the private key: %q", b)
	}
	// A tampered .pub next to a good private key is rewritten; the key stays.
	if err := os.WriteFile(path+".pub", []byte(planted+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if again, err := demoUserKey(path); err != nil || again != line {
		t.Fatalf("second start: %q %v, want %q", again, err, line)
	}
	// A private key others can read is no longer private: a new pair.
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if fresh, err := demoUserKey(path); err != nil || fresh == line {
		t.Fatalf("loose private key reused: %q %v", fresh, err)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("new private key mode %v", fi.Mode())
	}
	// Garbage in place of the private key: a new pair as well.
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := demoUserKey(path); err != nil {
		t.Fatal(err)
	}
	if _, err := existingKey(path); err != nil {
		t.Fatalf("garbage key not replaced: %v", err)
	}
}

// listTree lists the paths under dir, for "nothing was written" checks.
func listTree(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, _ os.DirEntry, err error) error {
		out = append(out, p)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, ",")
}

// demoConsoleSignIn opens a console link as a browser would (confirm page,
// then its form) and returns the user /account names.
func demoConsoleSignIn(t *testing.T, link string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	cl := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	resp, err := cl.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	form := url.Values{}
	for _, m := range regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`).FindAllStringSubmatch(string(page), -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	base := link[:strings.Index(link, "/signin/")]
	resp, err = cl.PostForm(base+"/signin/link", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = cl.Get(base + "/account")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ = io.ReadAll(resp.Body)
	m := regexp.MustCompile(`<h1>Account: ([^<]+)</h1>`).FindStringSubmatch(string(page))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("/account after sign-in: %d %.300s", resp.StatusCode, page)
	}
	return m[1]
}
