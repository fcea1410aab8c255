package gateway_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// SFTP through the gateway with a raw client, for packets OpenSSH's sftp
// never sends, and with real clients told to pipeline deeply.

// sftpClient speaks raw SFTP v3, for packets OpenSSH's client never sends.
type sftpClient struct {
	t   *testing.T
	in  io.Writer
	out io.Reader
}

func u32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func sstring(s string) []byte {
	return append(u32(uint32(len(s))), s...)
}

// packet frames a packet of type typ whose body is the fields.
func packet(typ byte, fields ...[]byte) []byte {
	body := append([]byte{typ}, bytes.Join(fields, nil)...)
	return append(u32(uint32(len(body))), body...)
}

func (c *sftpClient) send(p []byte) {
	if _, err := c.in.Write(p); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// recv reads one packet and returns its type and the rest of its body.
func (c *sftpClient) recv() (byte, []byte) {
	c.t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(c.out, hdr[:]); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(c.out, body); err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return body[0], body[1:]
}

// expectStatus reads a STATUS reply and checks its code.
func (c *sftpClient) expectStatus(code uint32) {
	c.t.Helper()
	typ, body := c.recv()
	if typ != 101 || binary.BigEndian.Uint32(body[4:]) != code {
		c.t.Fatalf("reply type %d %q, want status %d", typ, body, code)
	}
}

func (c *sftpClient) start() {
	c.t.Helper()
	c.send(packet(1, u32(3)))
	if typ, _ := c.recv(); typ != 2 {
		c.t.Fatalf("no VERSION but type %d", typ)
	}
}

// openWrite opens path for writing and returns the handle.
func (c *sftpClient) openWrite(id uint32, path string) string {
	c.t.Helper()
	c.send(packet(3, u32(id), sstring(path), u32(0x02|0x08|0x10), u32(0)))
	typ, body := c.recv()
	if typ != 102 {
		c.t.Fatalf("open: reply type %d", typ)
	}
	return string(body[8:])
}

// (c) A WRITE with bytes after its data, which OpenSSH's sftp-server
// accepts, is logged like any write, and the session goes on.
func TestSFTPWriteWithTrailingBytesIsLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := remoteDir(t)
	s, in, out, _ := b.goSession("")
	c := &sftpClient{t: t, in: in, out: out}
	c.start()
	h := c.openWrite(1, dir+"/t.txt")
	c.send(packet(6, u32(2), sstring(h), u64(0), sstring("hello"), []byte("trailing bytes")))
	c.expectStatus(0)
	c.send(packet(4, u32(3), sstring(h)))
	c.expectStatus(0)
	c.send(packet(18, u32(4), sstring(dir+"/t.txt"), sstring(dir+"/u.txt")))
	c.expectStatus(0)
	in.Close()
	io.Copy(io.Discard, out)
	s.Close()
	sameFile(t, dir+"/u.txt", []byte("hello"))
	got := b.commandTexts("sftp")
	for _, w := range []string{"put " + dir + "/t.txt (5 bytes)", "rename " + dir + "/t.txt -> " + dir + "/u.txt"} {
		if !contains(got, w) {
			t.Fatalf("sftp log %q lacks %q", got, w)
		}
	}
	if sess := b.lastSession("alice"); sess.EndReason == "recording_failed" {
		t.Fatal("a legitimate client was cut off")
	}
}

// (d) After the parser is forced to fail, later requests (a remove) never
// reach the host: the session is over.
func TestSFTPParseFailureEndsTheSessionBeforeMoreRequests(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := remoteDir(t)
	victim := filepath.Join(dir, "victim")
	if err := os.WriteFile(victim, []byte("keep"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, in, out, stderr := b.goSession("")
	c := &sftpClient{t: t, in: in, out: out}
	c.start()
	// A WRITE that claims more data than its packet holds.
	c.in.Write(packet(6, u32(1), sstring("h"), u64(0), u32(100), []byte("abc")))
	c.in.Write(packet(13, u32(2), sstring(victim)))
	c.in.Write(packet(18, u32(3), sstring(victim), sstring(victim+".moved")))
	io.Copy(io.Discard, out)
	if e := stderr(); !strings.Contains(e, "warden: the sftp stream did not parse as SFTP; session terminated") {
		t.Fatalf("stderr %q", e)
	}
	sameFile(t, victim, []byte("keep"))
	sess := b.lastSession("alice")
	if sess.EndReason != "recording_failed" {
		t.Fatalf("end reason %q", sess.EndReason)
	}
	b.waitEvent("recording.failed", sess.ID)
	for _, cmd := range b.commandTexts("sftp") {
		if strings.HasPrefix(cmd, "remove") || strings.HasPrefix(cmd, "rename") {
			t.Fatalf("logged %q: the request got past the failure", cmd)
		}
	}
}

// Real clients with deep pipelines of small requests pass and are logged:
// the parser's limits sit above what OpenSSH's scp and sftp can be told to
// do (-X nrequests, -R, -B).
func TestDeepPipelinesOfRealClientsPass(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "deep.bin", 4<<20+3)

	b.scp("-X", "nrequests=8192", "-X", "buffer=512", src, sshtest.Remote("root@web01", remote+"/deep.bin"))
	sameFile(t, filepath.Join(remote, "deep.bin"), data)
	if want := fmt.Sprintf("put %s/deep.bin (%d bytes)", remote, len(data)); !contains(b.commandTexts("sftp"), want) {
		t.Fatalf("sftp log %q lacks %q", b.commandTexts("sftp"), want)
	}

	batch := "get " + remote + "/deep.bin " + local + "/back.bin\n"
	cmd := exec.CommandContext(testCtx(t), "sftp", append(b.alice.SFTPArgs(b.port), "-R", "4096", "-B", "1024", "-b", "-", sshtest.Dest("root@web01"))...)
	cmd.Stdin = strings.NewReader(batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v: %s", err, out)
	}
	sameFile(t, filepath.Join(local, "back.bin"), data)
	if want := fmt.Sprintf("get %s/deep.bin (%d bytes)", remote, len(data)); !contains(b.commandTexts("sftp"), want) {
		t.Fatalf("sftp log %q lacks %q", b.commandTexts("sftp"), want)
	}
	if s := b.lastSession("alice"); s.EndReason == "recording_failed" || s.RecordingPath != "" {
		t.Fatalf("session %+v", s)
	}
}
