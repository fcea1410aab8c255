package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// leadingJIT is the log line of a gateway that starts to run the
// workflow's deadlines for the cluster.
const leadingJIT = `msg="cluster: leading" job=jit`

// Two `warden serve` nodes on one PostgreSQL store: exactly one runs the
// workflow's deadlines; when it is killed with -9, the other takes over
// once PostgreSQL has seen the dead node's connection close.
func TestServeLeaderFailsOverAfterKill9(t *testing.T) {
	dsn := pgServer.Database(t)
	config := func(node string) (string, string) {
		cfg, data := pgPolicy(t, dsn, 0o600)
		src, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, "listen: 127.0.0.1:0\nnode_id: "+node+"\n"...)
		if err := os.WriteFile(cfg, src, 0o600); err != nil {
			t.Fatal(err)
		}
		return cfg, data
	}
	bin := buildWarden(t, t.TempDir())
	cfgA, dataA := config("gw-a")
	a := startServe(t, bin, cfgA)
	waitLog(t, a, leadingJIT, time.Minute)
	// The nodes of one cluster share the gateway host key and the CA
	// (a node with keys of its own is refused: nodes_keys.go).
	cfgB, dataB := config("gw-b")
	if err := os.MkdirAll(dataB, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"host_ed25519", "ca_ed25519"} {
		raw, err := os.ReadFile(filepath.Join(dataA, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dataB, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	b := startServe(t, bin, cfgB)
	// gw-b tries for the lead every 2 s; give it several tries.
	time.Sleep(6 * time.Second)
	if strings.Contains(b.log.String(), leadingJIT) {
		t.Fatalf("gw-b leads while gw-a does:\n%s", b.log.String())
	}
	if err := a.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-a.done
	start := time.Now()
	waitLog(t, b, leadingJIT, time.Minute) // a hang guard: the figure is logged
	t.Logf("gw-b took the lead %v after gw-a was killed", time.Since(start))
}

// waitLog waits until s has logged want.
func waitLog(t *testing.T, s *served, want string, guard time.Duration) {
	t.Helper()
	deadline := time.Now().Add(guard)
	for !strings.Contains(s.log.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the log:\n%s", want, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
