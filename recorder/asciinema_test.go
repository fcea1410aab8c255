package recorder

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestAsciinemaPlaysRecording checks the file against the reference player,
// not only against our own reading of the format.
func TestAsciinemaPlaysRecording(t *testing.T) {
	bin, err := exec.LookPath("asciinema")
	if err != nil {
		t.Fatalf("the asciinema CLI is required to check recordings: %v", err)
	}
	w, err := Create(t.TempDir(), testHeader("sess_0123456789"), Options{
		Now: (&fakeClock{t: testStart, step: 700 * time.Millisecond}).Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	steps := []error{
		w.Output([]byte("alice@web01:~# ")),
		w.Input([]byte("echo h\xc3")),
		w.Output([]byte("echo h\xc3")),
		w.Input([]byte("\xa9llo\r")),
		w.Output([]byte("\xa9llo\r\n")),
		w.Resize(120, 40),
		w.Output([]byte("h\xc3\xa9llo \"w\\rld\" \xe2\x98")),
		w.Output([]byte("\x83\r\n\x1b[1mbold\x1b[0m\r\n")),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	mustClose(t, w)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "play", "-s", "100", "-i", "0.1", w.Path())
	cmd.Stdin = nil // /dev/null: asciinema must not wait for keys
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("asciinema play: %v\n%s", err, out)
	}
	want := "alice@web01:~# echo héllo\r\nhéllo \"w\\rld\" ☃\r\n\x1b[1mbold\x1b[0m\r\n"
	if string(out) != want {
		t.Fatalf("asciinema printed %q, want %q", out, want)
	}
}
