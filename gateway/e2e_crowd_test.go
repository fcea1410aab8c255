package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/loadgen"
)

// TestCrowdOfShellsRecordedAndResourcesReturn: 100 interactive sessions
// (pty and shell, each its own connection) at once through one gateway,
// from four users: every one works, each recording and command log holds
// its own session's line and no other's, and once they end the gateway's
// goroutines and open files are back at their baseline (this process is
// the gateway; its clients are in-process too and end with it). make
// bench measures the same at 1,000 for memory (BenchmarkMemory).
func TestCrowdOfShellsRecordedAndResourcesReturn(t *testing.T) {
	const n, users = 100, 4 // at most 64 sessions per user
	var keys []gossh.Signer
	var yaml strings.Builder
	for i := range users {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, s)
		fmt.Fprintf(&yaml, "  - name: crowd%d\n    keys: [%q]\n    groups: [sysadmins]\n", i, authorizedKey(s.PublicKey()))
	}
	b := newTestbed(t, bedOptions{extraUsers: yaml.String(), hostExtra: "MaxStartups 100:30:200\n"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opt := loadgen.Options{Addr: "127.0.0.1:" + b.port, User: "root@web01", Signers: keys, HostKey: b.hostKey, Concurrency: 8}

	// Warm up (first session: lazy initialisation), then the baseline.
	opt.Sessions = 1
	warm, err := loadgen.Open(ctx, opt)
	if err != nil || len(warm.Failed) > 0 {
		t.Fatalf("warm-up: %v %v", err, warm.Failed)
	}
	if errs := warm.Close(ctx, 1); len(errs) > 0 {
		t.Fatal(errs)
	}
	b.waitSessionsEnded(1)
	base := waitResources(t, nil)

	opt.Sessions = n
	crowd, err := loadgen.Open(ctx, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(crowd.Failed) > 0 {
		t.Fatalf("%d of %d sessions failed; first: %v", len(crowd.Failed), n, crowd.Failed[0])
	}
	line := func(id int) string { return fmt.Sprintf("echo crowd-%d-$((6*7))", id) }
	if errs := crowd.Each(16, func(s *loadgen.Session) error {
		return s.Run(ctx, line(s.ID), fmt.Sprintf("crowd-%d-42", s.ID))
	}); len(errs) > 0 {
		t.Fatalf("%d sessions did not answer; first: %v", len(errs), errs[0])
	}
	during := resourcesNow(t)
	if errs := crowd.Close(ctx, 16); len(errs) > 0 {
		t.Fatalf("%d sessions did not end; first: %v", len(errs), errs[0])
	}
	rows := b.waitSessionsEnded(n + 1)

	// Each recording holds its own session's marker, and its command log
	// its own line.
	marker := regexp.MustCompile(`crowd-(\d+)-42`)
	seen := map[string]string{} // loadgen session ID → Warden session ID
	for _, row := range rows {
		if row.EndReason != "exit" || row.ExitStatus == nil || *row.ExitStatus != 0 {
			t.Errorf("session %s ended %q, exit status %v", row.ID, row.EndReason, row.ExitStatus)
		}
		cast, err := os.ReadFile(filepath.Join(b.data, row.RecordingPath))
		if err != nil {
			t.Fatalf("session %s: %v", row.ID, err)
		}
		ids := map[string]bool{}
		for _, m := range marker.FindAllStringSubmatch(string(cast), -1) {
			ids[m[1]] = true
		}
		if len(ids) == 0 {
			continue // the warm-up session
		}
		if len(ids) != 1 {
			t.Errorf("session %s's recording holds the markers of %v", row.ID, ids)
			continue
		}
		for id := range ids {
			if prev, dup := seen[id]; dup {
				t.Errorf("marker %s recorded in sessions %s and %s", id, prev, row.ID)
			}
			seen[id] = row.ID
			var id2 int
			fmt.Sscan(id, &id2)
			if !hasCommand(b.commands(row.ID), line(id2)) {
				t.Errorf("session %s's command log lacks %q: %+v", row.ID, line(id2), b.commands(row.ID))
			}
		}
	}
	if len(seen) != n {
		t.Errorf("%d of %d sessions' lines are in a recording", len(seen), n)
	}

	after := waitResources(t, &base)
	t.Logf("goroutines: baseline %d, with %d sessions %d, after %d; open files: %d, %d, %d",
		base.goroutines, n, during.goroutines, after.goroutines, base.fds, during.fds, after.fds)
	if after.goroutines > base.goroutines+crowdSlack || after.fds > base.fds+crowdSlack {
		t.Errorf("not back to the baseline: goroutines %d (baseline %d), open files %d (baseline %d)",
			after.goroutines, base.goroutines, after.fds, base.fds)
	}
	if during.goroutines < base.goroutines+n*10 {
		t.Errorf("with %d sessions only %d goroutines (baseline %d): were they live?", n, during.goroutines, base.goroutines)
	}
}

// crowdSlack is how far above the baseline goroutines and open files may
// stay: the runtime and database/sql may keep a worker or a connection.
const crowdSlack = 3

type crowdResources struct{ goroutines, fds int }

func resourcesNow(t *testing.T) crowdResources {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return crowdResources{goroutines: runtime.NumGoroutine(), fds: len(fds)}
}

// waitResources polls until goroutines and files are within crowdSlack
// of base, or, without a base, the same for two polls in a row; it gives
// up after a minute and returns the last count.
func waitResources(t *testing.T, base *crowdResources) crowdResources {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	prev := resourcesNow(t)
	for {
		time.Sleep(200 * time.Millisecond)
		cur := resourcesNow(t)
		switch {
		case base == nil && cur == prev,
			base != nil && cur.goroutines <= base.goroutines+crowdSlack && cur.fds <= base.fds+crowdSlack,
			time.Now().After(deadline):
			return cur
		}
		prev = cur
	}
}

// waitSessionsEnded waits until there are n session rows, all ended, and
// returns them.
func (b *testbed) waitSessionsEnded(n int) []audit.Session {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		list, err := b.store.Sessions(context.Background(), audit.SessionFilter{Limit: n + 10})
		ended := 0
		for _, s := range list {
			if !s.EndedAt.IsZero() {
				ended++
			}
		}
		if err == nil && len(list) == n && ended == n {
			return list
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%d session rows, %d ended, want %d (err %v)", len(list), ended, n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func hasCommand(list []audit.Command, text string) bool {
	for _, c := range list {
		if c.Source == "shell" && c.Command == text {
			return true
		}
	}
	return false
}
