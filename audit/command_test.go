package audit

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"
)

func testCommand(session, text string, ts time.Time) Command {
	return Command{SessionID: session, TS: ts, User: "alice", Login: "root", Host: "web01", Tenant: "acme",
		Source: SourceShell, Command: text, Action: ActionAllowed}
}

func TestLogCommandRefusesBadInput(t *testing.T) {
	for _, c := range []struct {
		name   string
		edit   func(*Command)
		target error
		msg    string
	}{
		{"empty session ID", func(c *Command) { c.SessionID = "" }, ErrInvalid, "empty session ID"},
		{"unknown source", func(c *Command) { c.Source = "telnet" }, ErrInvalid, `source "telnet": want exec, shell, sftp or scp`},
		{"empty source", func(c *Command) { c.Source = "" }, ErrInvalid, "source"},
		{"unknown action", func(c *Command) { c.Action = "maybe" }, ErrInvalid, `action "maybe": want allowed or denied`},
		{"empty command", func(c *Command) { c.Command = "" }, ErrInvalid, "empty command"},
		{"missing host", func(c *Command) { c.Host = "" }, ErrInvalid, "empty host"},
		{"unknown session", func(c *Command) { c.SessionID = "S9" }, ErrNotFound, "no such session"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t, t.TempDir())
			mustStart(t, s, testSession("S1"))
			cmd := testCommand("S1", "uptime", time.Time{})
			c.edit(&cmd)
			err := s.LogCommand(context.Background(), cmd)
			if !errors.Is(err, c.target) || !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("got %v, want %v mentioning %q", err, c.target, c.msg)
			}
			if got, _ := s.Commands(context.Background(), CommandFilter{}); len(got) != 0 {
				t.Fatalf("refused command was stored: %+v", got)
			}
		})
	}
}

func TestLogCommandAcceptsEverySourceAndAction(t *testing.T) {
	s := openStore(t, t.TempDir())
	mustStart(t, s, testSession("S1"))
	for _, src := range []string{SourceExec, SourceShell, SourceSFTP, SourceSCP} {
		for _, act := range []string{ActionAllowed, ActionDenied} {
			c := testCommand("S1", src+" "+act, time.Time{})
			c.Source, c.Action = src, act
			if err := s.LogCommand(context.Background(), c); err != nil {
				t.Errorf("%s/%s: %v", src, act, err)
			}
		}
	}
}

func TestCommandsRoundTripAndFilters(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	mustStart(t, s, testSession("S1"), testSession("S2"))
	at := func(m int) time.Time { return time.Date(2026, 11, 29, 10, m, 0, 0, time.UTC) }
	denied := testCommand("S1", "rm -rf /", at(3))
	denied.Action, denied.Rule = ActionDenied, "^rm -rf /"
	// Logged out of time order: listing is by ts.
	for _, c := range []Command{
		testCommand("S1", "sudo systemctl restart nginx", at(2)),
		testCommand("S1", "uptime", at(1)),
		denied,
		testCommand("S2", "systemctl status nginx", at(4)),
	} {
		if err := s.LogCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	all, err := s.Commands(ctx, CommandFilter{})
	if err != nil || len(all) != 4 {
		t.Fatalf("Commands = %d, %v", len(all), err)
	}
	got := all[2]
	if got.ID == 0 || got.Command != "rm -rf /" || got.Rule != "^rm -rf /" || got.Action != ActionDenied ||
		!got.TS.Equal(at(3)) || got.User != "alice" || got.Source != SourceShell {
		t.Errorf("round trip: %+v", got)
	}

	for _, c := range []struct {
		name string
		f    CommandFilter
		want string
	}{
		{"chronological", CommandFilter{}, "uptime|sudo systemctl restart nginx|rm -rf /|systemctl status nginx"},
		{"by session", CommandFilter{SessionID: "S2"}, "systemctl status nginx"},
		{"grep", CommandFilter{Grep: regexp.MustCompile(`nginx$`)}, "sudo systemctl restart nginx|systemctl status nginx"},
		{"grep in session", CommandFilter{SessionID: "S1", Grep: regexp.MustCompile(`^(sudo|rm)`)}, "sudo systemctl restart nginx|rm -rf /"},
		{"limit counts matches, not rows", CommandFilter{Grep: regexp.MustCompile(`nginx`), Limit: 1}, "sudo systemctl restart nginx"},
		{"limit without grep", CommandFilter{Limit: 2}, "uptime|sudo systemctl restart nginx"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Commands(ctx, c.f)
			if err != nil {
				t.Fatal(err)
			}
			var texts []string
			for _, g := range got {
				texts = append(texts, g.Command)
			}
			if strings.Join(texts, "|") != c.want {
				t.Errorf("got %q, want %q", texts, c.want)
			}
		})
	}
}
