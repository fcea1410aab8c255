package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/recorder"
)

// Go x/crypto clients (Terraform's and Packer's communicators, in-house
// tools) send each request before the start with want-reply and wait for
// the answer before they send the next. The gateway must answer them
// before the host is connected (which happens at the start request).

// noDeadlock runs steps in the background and fails the test if they do not
// finish within 20 s. The gateway waits 60 s for a start request here, so a
// gateway that held a reply until the host was connected would deadlock the
// client until then, and fail; 20 s is no claim about speed.
func noDeadlock(t *testing.T, c *gossh.Client, steps func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- steps() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-ctx.Done():
		c.Close()
		t.Fatal("the client is still waiting for a reply after 20 s: the gateway holds a request's answer")
	}
}

func TestGoClientRequestPtySetenvWindowChangeGetAnswers(t *testing.T) {
	b := newTestbed(t, bedOptions{requestTimeout: 60 * time.Second})
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	noDeadlock(t, c, func() error {
		// Each call sends its request with want-reply and returns only
		// with the answer: x/crypto's RequestPty, Setenv; WindowChange
		// sends without one, so it is followed by a Setenv that waits.
		if err := s.RequestPty("xterm-256color", 30, 100, gossh.TerminalModes{gossh.ECHO: 0}); err != nil {
			return err
		}
		if err := s.Setenv("LC_WARDEN_TEST_CLIENT", "go-xcrypto"); err != nil {
			return err
		}
		if err := s.WindowChange(33, 111); err != nil {
			return err
		}
		if err := s.Setenv("LANG", "C.UTF-8"); err != nil {
			return err
		}
		return s.Run(`echo "env=$LC_WARDEN_TEST_CLIENT"; stty size; test -t 0 && echo tty-yes`)
	})
	// The host saw the pty, the environment and the last size, in order.
	got := strings.ReplaceAll(out.String(), "\r", "")
	for _, want := range []string{"env=go-xcrypto\n", "33 111\n", "tty-yes\n"} {
		if !strings.Contains(got, want) {
			t.Fatalf("host output %q lacks %q (stderr %q)", got, want, errb.String())
		}
	}
	row := b.lastSession("alice")
	if row.EndReason != "exit" || row.ExitStatus == nil || *row.ExitStatus != 0 {
		t.Fatalf("session row %+v", row)
	}
	cmds := b.commands(row.ID)
	if len(cmds) != 1 || cmds[0].Source != "exec" || !strings.Contains(cmds[0].Command, "stty size") {
		t.Fatalf("command rows %+v", cmds)
	}
	// The recording has the terminal's size as of the start, and the output.
	cast := b.castOf(row.RecordingPath)
	h, err := recorder.ReadHeader([]byte(strings.SplitN(cast, "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	if h.Width != 111 || h.Height != 33 || h.Env["TERM"] != "xterm-256color" {
		t.Fatalf("cast header %+v", h)
	}
	if _, o := castStreams(t, cast); !strings.Contains(o, "env=go-xcrypto") {
		t.Fatalf("the cast lacks the output:\n%s", cast)
	}
}

// TestEarlyRequestsAreAnsweredOnTheirMerits sends, before the start, each
// early request with want-reply on a raw channel, as a client may: good
// ones are answered yes at once, bad ones no at once, and the good ones
// reach the host in order.
func TestEarlyRequestsAreAnsweredOnTheirMerits(t *testing.T) {
	b := newTestbed(t, bedOptions{requestTimeout: 60 * time.Second})
	c, _ := b.goClient("root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	defer ch.Close()
	pty := gossh.Marshal(struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}{"vt100", 80, 24, 0, 0, "\x00"})
	env := func(k, v string) []byte { return gossh.Marshal(struct{ K, V string }{k, v}) }
	win := func(cols, rows uint32) []byte { return gossh.Marshal(struct{ C, R, W, H uint32 }{cols, rows, 0, 0}) }
	noDeadlock(t, c, func() error {
		for _, r := range []struct {
			typ     string
			payload []byte
			want    bool
		}{
			{"window-change", win(200000, 10), false}, // absurd size
			{"pty-req", pty, true},
			{"pty-req", pty, false}, // a second pty would make sshd drop the connection
			{"env", env("LC_WARDEN_TEST_RAW", "raw-ok"), true},
			{"env", env("BAD=NAME", "x"), false},
			{"env", []byte{0, 0}, false}, // malformed
			{"window-change", win(90, 20), true},
			{"window-change", win(91, 21), true},
		} {
			ok, err := ch.SendRequest(r.typ, true, r.payload)
			if err != nil {
				return err
			}
			if ok != r.want {
				t.Errorf("%s answered %v, want %v", r.typ, ok, r.want)
			}
		}
		ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ C string }{`echo "raw=$LC_WARDEN_TEST_RAW"; stty size`}))
		if err != nil || !ok {
			t.Errorf("exec answered %v, %v", ok, err)
		}
		return nil
	})
	var out bytes.Buffer
	if _, err := out.ReadFrom(ch); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(out.String(), "\r", "")
	if !strings.Contains(got, "raw=raw-ok\n") || !strings.Contains(got, "21 91\n") {
		t.Fatalf("host output %q", got)
	}
}

// TestHostRefusingAPtyIsToldOnStderr: the gateway accepted the pty before
// the host was connected; the host (PermitTTY no) refuses it, and the user
// learns so in one line while the command still runs, without a terminal.
func TestHostRefusingAPtyIsToldOnStderr(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "PermitTTY no\n"})
	cmd := b.sshWith(testCtx(t), b.alice, []string{"-tt"}, "root@web01", "test -t 0 && echo tty-yes || echo tty-no")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh: %v; stderr %q", err, errb.String())
	}
	if !strings.Contains(out.String(), "tty-no") {
		t.Fatalf("stdout %q", out.String())
	}
	// ssh -tt merges nothing: the gateway's line arrives on stderr.
	if !strings.Contains(errb.String(), "warden: host web01 refused a terminal (pty); the session runs without one") {
		t.Fatalf("stderr %q", errb.String())
	}
	if row := b.lastSession("alice"); row.EndReason != "exit" || row.ExitStatus == nil || *row.ExitStatus != 0 {
		t.Fatalf("session row %+v", row)
	}
}

// TestTransferEnvAnsweredYetDropped: env comes before the start, when the
// gateway cannot know yet whether a transfer follows, so it is answered
// yes; a transfer then runs with the locale variables only (the others are
// dropped and logged), whatever the host's AcceptEnv says.
func TestTransferEnvAnsweredYetDropped(t *testing.T) {
	probe := filepath.Join(remoteDir(t), "env")
	dir := impostor(t, `printf '\000'; printf '%s|%s' "$WARDEN_PROBE" "$LC_WARDEN" > `+probe+`; exec cat >/dev/null`)
	b := newTestbed(t, bedOptions{hostExtra: "AcceptEnv *\n" + hostPATH(dir), requestTimeout: 60 * time.Second})
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	s.Stdout = &out
	noDeadlock(t, c, func() error {
		for _, kv := range [][2]string{{"WARDEN_PROBE", "leaked"}, {"LC_WARDEN", "kept"}} {
			if err := s.Setenv(kv[0], kv[1]); err != nil {
				return fmt.Errorf("setenv %s: %w", kv[0], err)
			}
		}
		if err := s.Start("scp -t /tmp"); err != nil {
			return err
		}
		in.Close()
		return s.Wait()
	})
	if !bytes.HasPrefix(out.Bytes(), []byte{0}) {
		t.Fatalf("scp's opening answer %q", out.Bytes())
	}
	if row := b.lastSession("alice"); row.RecordingPath != "" {
		t.Fatalf("the transfer got a terminal recording: %+v", row)
	}
	got, err := os.ReadFile(probe)
	if err != nil || string(got) != "|kept" {
		t.Fatalf("environment seen by the host's scp: %q (%v)", got, err)
	}
}

// TestEarlyRequestsAreBounded: a client cannot make the gateway hold any
// number of requests before it starts. Past the bound, requests are
// answered no; resizes replace each other; the session still runs.
func TestEarlyRequestsAreBounded(t *testing.T) {
	b := newTestbed(t, bedOptions{requestTimeout: 60 * time.Second})
	c, _ := b.goClient("root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	defer ch.Close()
	noDeadlock(t, c, func() error {
		yes := 0
		for i := range 200 {
			ok, err := ch.SendRequest("env", true, gossh.Marshal(struct{ K, V string }{fmt.Sprintf("LC_WARDEN_TEST_%d", i), "v"}))
			if err != nil {
				return err
			}
			if ok {
				yes++
			}
		}
		if yes != 128 {
			t.Errorf("%d of 200 env requests accepted, want 128", yes)
		}
		ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ C string }{`echo "first=$LC_WARDEN_TEST_0 last=$LC_WARDEN_TEST_127 over=$LC_WARDEN_TEST_128"`}))
		if err != nil || !ok {
			t.Errorf("exec answered %v, %v", ok, err)
		}
		return nil
	})
	var out bytes.Buffer
	if _, err := out.ReadFrom(ch); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "first=v last=v over=\n" {
		t.Fatalf("host output %q", got)
	}
}
