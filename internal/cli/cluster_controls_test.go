package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/vault"
	gossh "golang.org/x/crypto/ssh"
)

// Cross-node controls (issue 12): a session on one node is listed, watched,
// killed, revoked and deprovisioned through the other. The bound
// for kill, revocation and deprovisioning is 2 s; on a loaded test machine
// the tests assert 10 s and log the figure measured.
const crossNodeBound = 10 * time.Second

// liveSession is one entry of `sessions --live --json`.
type liveSession struct {
	ID   string `json:"id"`
	User string `json:"user"`
}

// TestClusterKillAndWatchFromAnotherNode: alice logs in through gw-a;
// through gw-b carol lists her session (sessions --live), watches it (a
// marker alice prints on gw-a appears) and kills it: alice's client sees
// the session end within the 2 s (measured), the row ends
// "killed", and the watcher is told.
func TestClusterKillAndWatchFromAnotherNode(t *testing.T) {
	c := newClusterBed(t, pgServer.Database(t))
	p := c.alice.StartPTY(t, c.a.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, faultWait)

	out, errOut, code := c.ssh(c.carol, c.b, "gw", "sessions", "--live", "--json")
	var live []liveSession
	if code != 0 || json.Unmarshal([]byte(out), &live) != nil || len(live) != 1 || live[0].User != "alice" {
		t.Fatalf("sessions --live through gw-b: %d %q %q", code, out, errOut)
	}
	id := live[0].ID
	if r, err := c.session(id); err != nil || r.NodeID != "gw-a" {
		t.Fatalf("listed session %s: %+v %v; want gw-a's", id, r, err)
	}

	watch := startStream(t, c.carol, c.b.port, "gw", "watch", id)
	c.waitFor("the watch through gw-b starts", faultWait, func() bool { return watch.contains("watching " + id) })
	sent := time.Now()
	p.Send("echo marker-$((6*7))\r")
	p.Expect(t, `marker-42`, faultWait)
	c.waitFor("the watcher on gw-b sees gw-a's output", faultWait, func() bool { return watch.contains("marker-42") })
	t.Logf("gw-a's output reached the watcher on gw-b %.2fs after it was typed", time.Since(sent).Seconds())

	began := time.Now()
	out, errOut, code = c.ssh(c.carol, c.b, "gw", "kill", id)
	acked := time.Now()
	if code != 0 || out != "session "+id+" terminated\n" {
		t.Fatalf("kill through gw-b: %d %q %q", code, out, errOut)
	}
	p.Expect(t, `warden: session terminated by an administrator`, faultWait)
	seen := time.Now()
	if _, err := p.Wait(faultWait); err != nil {
		t.Fatal(err)
	}
	t.Logf("the client on gw-a saw the kill %.2fs after `ssh gw-b kill` returned (%.2fs after it was run); issue bound 2 s",
		seen.Sub(acked).Seconds(), seen.Sub(began).Seconds())
	if seen.Sub(acked) > crossNodeBound {
		t.Errorf("kill took %s across nodes, want within %s", seen.Sub(acked), crossNodeBound)
	}
	c.waitFor("the row ends killed", faultWait, func() bool {
		r, err := c.session(id)
		return err == nil && r.EndReason == "killed"
	})
	if code, errOut := watch.wait(t, faultWait); code != 0 || !watch.contains("session "+id+" ended") {
		t.Errorf("watcher on gw-b: exit %d %q, output %q", code, errOut, watch.output())
	}
	if _, errOut, code := c.ssh(c.carol, c.a, "gw", "kill", id); code != 1 || errOut != "warden: no live session "+id+" that you can act on\n" {
		t.Errorf("kill again through gw-a: %d %q", code, errOut)
	}
	c.refuseStrangerNode()
	c.auditVerify(c.a)
}

// refuseStrangerNode starts a third node, gw-c, with keys of its own while
// gw-a and gw-b run: behind one name its clients would see the gateway's
// host key change, and hosts would not trust its CA. It must not start,
// with one line naming both fingerprints, and a node.refused event; then
// with the cluster's host key but its own CA, the same for the CA.
func (c *clusterBed) refuseStrangerNode() {
	t := c.t
	t.Helper()
	own := filepath.Join(c.dir, "gw-c-keys")
	if _, err := vault.OpenBuiltin(own, vault.BuiltinOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := keyfile.LoadOrCreateEd25519(filepath.Join(own, "host_ed25519")); err != nil {
		t.Fatal(err)
	}
	n := c.node("gw-c", own)
	try := func(want string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, c.bin, "serve", "-c", n.cfg).CombinedOutput()
		if err == nil || !regexp.MustCompile(want).Match(out) {
			t.Fatalf("gw-c with keys of its own: %v\n%s", err, out)
		}
	}
	try(`warden: the gateway host key of node gw-c \(SHA256:\S+\) differs from live node gw-a's \(SHA256:\S+\); every node must use the same host_key\n`)
	shared, err := os.ReadFile(filepath.Join(c.a.data, "host_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(n.data, "host_ed25519"), shared, 0o600); err != nil {
		t.Fatal(err)
	}
	try(`warden: the CA key of node gw-c \(SHA256:\S+\) differs from live node gw-a's \(SHA256:\S+\); every node must use the same CA key file`)
	var refused int
	if err := c.reader().DB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE type = 'node.refused' AND subject = 'gw-c'`).Scan(&refused); err != nil || refused != 2 {
		t.Fatalf("node.refused events for gw-c: %d %v, want 2", refused, err)
	}
}

// TestClusterRevokeOnBClosesSessionOnA: bob's session under a grant runs
// through gw-a; carol revokes the grant through gw-b; the session closes
// with the grant's line within the 2 s (measured).
func TestClusterRevokeOnBClosesSessionOnA(t *testing.T) {
	c := newClusterBed(t, pgServer.Database(t))
	out, errOut, code := c.ssh(c.bob, c.a, "gw", "request", "prod-root", "--for", "1h", "--reason", "'INC-12 cluster drill'")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("request through gw-a: %d %q %q", code, out, errOut)
	}
	out, errOut, code = c.ssh(c.carol, c.b, "gw", "approve", m[1])
	g := regexp.MustCompile(`grant (\d+) for bob on prod-root`).FindStringSubmatch(out)
	if code != 0 || g == nil {
		t.Fatalf("approve through gw-b: %d %q %q", code, out, errOut)
	}
	grant := g[1]
	s := startStream(t, c.bob, c.a.port, "root@web01", "echo", "bob-started;", "sleep", "600")
	c.waitFor("bob's session under the grant on gw-a", faultWait, func() bool { return s.contains("bob-started") })
	id := c.sessionOf(`bob-started`)

	began := time.Now()
	out, errOut, code = c.ssh(c.carol, c.b, "gw", "revoke", grant)
	acked := time.Now()
	if code != 0 {
		t.Fatalf("revoke through gw-b: %d %q %q", code, out, errOut)
	}
	code, errOut = s.wait(t, faultWait)
	t.Logf("bob's session on gw-a closed %.2fs after `ssh gw-b revoke` returned (%.2fs after it was run); issue bound 2 s",
		s.endAt.Sub(acked).Seconds(), s.endAt.Sub(began).Seconds())
	if want := "warden: grant " + grant + " was revoked; session closed"; code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("bob's session: exit %d, stderr %q; want %q", code, errOut, want)
	}
	if s.endAt.Sub(acked) > crossNodeBound {
		t.Errorf("revocation took %s across nodes, want within %s", s.endAt.Sub(acked), crossNodeBound)
	}
	c.waitFor("the row ends grant_revoked", faultWait, func() bool {
		r, err := c.session(id)
		return err == nil && r.EndReason == "grant_revoked"
	})
	if _, errOut, code := c.ssh(c.bob, c.b, "root@web01", "true"); code == 0 {
		t.Fatalf("bob got in through gw-b after the revocation: %q", errOut)
	}
	c.auditVerify(c.b)
}

// TestClusterSCIMDeactivationOnAClosesSessionOnB: dana, provisioned over
// SCIM, has a session through gw-b; her deactivation is sent to gw-a's
// SCIM endpoint; the session on gw-b closes with the directory's line
// within the 2 s (measured), its row ends deprovisioned, and gw-b
// refuses her key afterwards.
func TestClusterSCIMDeactivationOnAClosesSessionOnB(t *testing.T) {
	c := newClusterBed(t, pgServer.Database(t))
	scim := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(method, "http://"+c.a.httpAddr+"/scim/v2"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+clusterScimToken)
		req.Header.Set("Content-Type", "application/scim+json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	pub := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(c.dana.PublicKey)))
	code, user := scim("POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:warden:2.0:User"],"userName":"dana@contoso.com","active":true,"urn:ietf:params:scim:schemas:extension:warden:2.0:User":{"sshPublicKeys":[%q]}}`, pub))
	danaID, _ := user["id"].(string)
	if code != 201 || danaID == "" {
		t.Fatalf("create dana on gw-a: %d %v", code, user)
	}
	if code, body := scim("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"oncall","members":[{"value":"`+danaID+`"}]}`); code != 201 {
		t.Fatalf("group oncall on gw-a: %d %v", code, body)
	}
	// gw-b learns of dana from the store (the directory topic).
	var s *stream
	c.waitFor("dana gets in through gw-b", faultWait, func() bool {
		if s != nil {
			s.cmd.Process.Kill()
			<-s.done
		}
		s = startStream(t, c.dana, c.b.port, "root@web01", "echo", "dana-started;", "sleep", "600")
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			if s.contains("dana-started") {
				return true
			}
			select {
			case <-s.done:
				return false
			case <-time.After(50 * time.Millisecond):
			}
		}
		return false
	})
	id := c.sessionOf(`dana-started`)

	began := time.Now()
	code, body := scim("PATCH", "/Users/"+danaID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	acked := time.Now()
	if code != 200 {
		t.Fatalf("deactivate dana on gw-a: %d %v", code, body)
	}
	code, errOut := s.wait(t, faultWait)
	t.Logf("dana's session on gw-b closed %.2fs after gw-a answered the PATCH (%.2fs after it was sent); issue bound 2 s",
		s.endAt.Sub(acked).Seconds(), s.endAt.Sub(began).Seconds())
	if want := "warden: access removed by the directory; session closed"; code == 0 || !strings.Contains(errOut, want) {
		t.Fatalf("dana's session on gw-b: exit %d, stderr %q; want %q", code, errOut, want)
	}
	if s.endAt.Sub(acked) > crossNodeBound {
		t.Errorf("deprovisioning took %s across nodes, want within %s", s.endAt.Sub(acked), crossNodeBound)
	}
	c.waitFor("the row ends deprovisioned", faultWait, func() bool {
		r, err := c.session(id)
		return err == nil && r.EndReason == "deprovisioned"
	})
	for _, n := range []*clusterNode{c.b, c.a} {
		if out, errOut, code := c.ssh(c.dana, n, "gw", "whoami"); code == 0 || !strings.Contains(errOut, "Permission denied") {
			t.Errorf("dana's key through %s after the deactivation: %d %q %q", n.id, code, out, errOut)
		}
	}
	c.auditVerify(c.b)
}
