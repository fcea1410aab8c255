package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests put real OpenSSH bytes through the parsers. The sftp and scp
// clients are told to run this test binary as their "server" (sftp -D,
// scp -S); in that role, selected by relayEnv, it starts the real
// sftp-server or `scp -t/-f`, relays both directions, and logs every chunk
// before forwarding it. The log therefore holds each direction's bytes in
// an order where a reply never precedes its request, as in the gateway's
// bridge, and is fed to the parser afterwards.

const (
	relayEnv    = "WARDEN_TRANSFER_RELAY"     // "sftp" or "scp"
	relayLogEnv = "WARDEN_TRANSFER_RELAY_LOG" // where the relay writes its log
	sftpServer  = "/usr/lib/openssh/sftp-server"
)

// Record kinds in the relay log: a chunk from the client, a chunk from the
// server, or the remote command scp asked for.
const (
	recClient  = 'c'
	recServer  = 's'
	recCommand = 'x'
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(relayEnv); mode != "" {
		os.Exit(relay(mode, os.Getenv(relayLogEnv), os.Args[1:]))
	}
	os.Exit(m.Run())
}

// relay runs the server side and logs both directions; it returns the exit
// status to pass on.
func relay(mode, logPath string, args []string) int {
	var cmd *exec.Cmd
	var remote string
	switch mode {
	case "sftp":
		cmd = exec.Command(sftpServer)
	case "scp":
		// scp calls its -S program like ssh: options, host, then the
		// command as the last argument.
		remote = args[len(args)-1]
		cmd = exec.Command("/bin/sh", "-c", remote)
	default:
		return 2
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return 2
	}
	var mu sync.Mutex
	w := bufio.NewWriter(logf)
	record := func(kind byte, p []byte) {
		mu.Lock()
		defer mu.Unlock()
		w.WriteByte(kind)
		w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(p))))
		w.Write(p)
	}
	if remote != "" {
		record(recCommand, []byte(remote))
	}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return 2
	}
	copyLogged := func(kind byte, dst io.Writer, src io.Reader) {
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				record(kind, buf[:n])
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go func() {
		copyLogged(recClient, stdin, os.Stdin)
		stdin.Close()
	}()
	copyLogged(recServer, os.Stdout, stdout)
	err = cmd.Wait()
	mu.Lock()
	w.Flush()
	logf.Close()
	mu.Unlock()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return 2
	}
	return 0
}

type record struct {
	kind byte
	data []byte
}

func readRelayLog(t *testing.T, path string) []record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("relay log: %v", err)
	}
	var recs []record
	for len(b) > 0 {
		if len(b) < 5 {
			t.Fatalf("relay log truncated")
		}
		n := binary.BigEndian.Uint32(b[1:5])
		recs = append(recs, record{kind: b[0], data: b[5 : 5+n]})
		b = b[5+n:]
	}
	return recs
}

// program returns the path of an OpenSSH program. A missing one fails the
// test: these tests are the proof that real traffic parses.
func program(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found (install openssh-client and openssh-sftp-server): %v", name, err)
	}
	return p
}

// runRelayed runs an OpenSSH client whose server side is this binary as a
// relay, and returns the relay's log.
func runRelayed(t *testing.T, mode string, wantFail bool, name string, args ...string) []record {
	t.Helper()
	if _, err := os.Stat(sftpServer); err != nil {
		t.Fatalf("%s missing (install openssh-sftp-server): %v", sftpServer, err)
	}
	logPath := filepath.Join(t.TempDir(), "relay.log")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, program(t, name), args...)
	cmd.Env = append(os.Environ(), relayEnv+"="+mode, relayLogEnv+"="+logPath)
	out, err := cmd.CombinedOutput()
	if (err != nil) != wantFail {
		t.Fatalf("%s %q: err %v, want failure %v\n%s", name, args, err, wantFail, out)
	}
	return readRelayLog(t, logPath)
}

func writeFile(t *testing.T, path string, size int, mode os.FileMode) []byte {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(uint64(size), 7))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // the umask must not decide
		t.Fatal(err)
	}
	return data
}

func TestOpenSSHSFTPSessionParses(t *testing.T) {
	dir := t.TempDir()
	local, remote := filepath.Join(dir, "local"), filepath.Join(dir, "remote")
	up := writeFile(t, filepath.Join(local, "up.bin"), 100_000, 0o640)
	down := writeFile(t, filepath.Join(remote, "down.txt"), 5_000, 0o644)
	batch := strings.Join([]string{
		"cd " + remote,
		"put " + filepath.Join(local, "up.bin") + " up.bin",
		"get down.txt " + filepath.Join(local, "down.txt"),
		"rename up.bin moved.bin",
		"mkdir newdir",
		"rmdir newdir",
		"ln -s moved.bin soft",
		"ln moved.bin hard",
		"chmod 600 moved.bin",
		"rm hard",
		"-mkdir missing/sub",
		"-put " + filepath.Join(local, "up.bin") + " missing/up.bin",
	}, "\n") + "\n"
	batchPath := filepath.Join(dir, "batch")
	if err := os.WriteFile(batchPath, []byte(batch), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	recs := runRelayed(t, "sftp", false, "sftp", "-q", "-b", batchPath, "-D", self)

	s := NewSFTP()
	var got []Op
	for _, r := range recs {
		if r.kind == recClient {
			got = append(got, s.ClientData(r.data)...)
		} else {
			got = append(got, s.HostData(r.data)...)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	got = append(got, s.Close()...)
	at := func(name string) string { return filepath.Join(remote, name) }
	want := []Op{
		{Kind: KindPut, Path: at("up.bin"), Bytes: int64(len(up)), Mode: 0o640},
		{Kind: KindGet, Path: at("down.txt"), Bytes: int64(len(down))},
		{Kind: KindRename, Path: at("up.bin"), Path2: at("moved.bin")},
		{Kind: KindMkdir, Path: at("newdir"), Mode: 0o777},
		{Kind: KindRmdir, Path: at("newdir")},
		{Kind: KindSymlink, Path: at("soft"), Path2: "moved.bin"},
		{Kind: KindLink, Path: at("hard"), Path2: at("moved.bin")},
		{Kind: KindSetstat, Path: at("moved.bin"), Mode: 0o600},
		{Kind: KindRemove, Path: at("hard")},
		{Kind: KindMkdir, Path: at("missing/sub"), Mode: 0o777, Failed: true},
		{Kind: KindPut, Path: at("missing/up.bin"), Mode: 0o640, Failed: true},
	}
	t.Logf("%d records: %v", len(recs), got)
	if !slices.Equal(got, want) {
		t.Fatalf("ops differ\n got: %v\nwant: %v", got, want)
	}
	// The parser's account agrees with what actually happened on disk.
	if b, err := os.ReadFile(at("moved.bin")); err != nil || !bytes.Equal(b, up) {
		t.Fatalf("uploaded file: %v", err)
	}
	if target, err := os.Readlink(at("soft")); err != nil || target != "moved.bin" {
		t.Fatalf("symlink points at %q, %v", target, err)
	}
}

// scpRun is one scp transfer through the relay and the ops it must yield.
type scpRun struct {
	name     string
	args     []string
	wantFail bool
	dir      Direction
	want     []Op
}

func TestOpenSSHSCPTransfersParse(t *testing.T) {
	dir := t.TempDir()
	local, remote := filepath.Join(dir, "local"), filepath.Join(dir, "remote")
	a := writeFile(t, filepath.Join(local, "a.txt"), 1_500, 0o644)
	b := writeFile(t, filepath.Join(local, "tree", "sub", "b.bin"), 70_000, 0o600)
	c := writeFile(t, filepath.Join(local, "tree", "c.sh"), 0, 0o755)
	d := writeFile(t, filepath.Join(remote, "d.log"), 3_000, 0o640)
	if err := os.MkdirAll(filepath.Join(local, "dl"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(local, "tree"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(local, "tree", "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	at := func(name string) string { return filepath.Join(remote, name) }
	host := func(p string) string { return "h:" + p }
	base := []string{"-O", "-q", "-S", self}
	runs := []scpRun{
		{name: "upload into a directory", dir: Upload,
			args: append(slices.Clone(base), filepath.Join(local, "a.txt"), host(remote)),
			want: []Op{{Kind: KindPut, Path: at("a.txt"), Bytes: int64(len(a)), Mode: 0o644}}},
		{name: "upload onto a file name", dir: Upload,
			args: append(slices.Clone(base), filepath.Join(local, "a.txt"), host(at("a.txt"))),
			want: []Op{{Kind: KindPut, Path: at("a.txt"), Bytes: int64(len(a)), Mode: 0o644}}},
		{name: "upload several files (-d)", dir: Upload,
			args: append(slices.Clone(base), filepath.Join(local, "a.txt"), filepath.Join(local, "tree", "c.sh"), host(remote)),
			want: []Op{
				{Kind: KindPut, Path: at("a.txt"), Bytes: int64(len(a)), Mode: 0o644},
				{Kind: KindPut, Path: at("c.sh"), Bytes: int64(len(c)), Mode: 0o755},
			}},
		{name: "upload recursive with times", dir: Upload,
			args: append(slices.Clone(base), "-r", "-p", filepath.Join(local, "tree"), host(remote)),
			want: []Op{
				{Kind: KindMkdir, Path: at("tree"), Mode: 0o750},
				{Kind: KindPut, Path: at("tree/c.sh"), Bytes: int64(len(c)), Mode: 0o755},
				{Kind: KindMkdir, Path: at("tree/sub"), Mode: 0o700},
				{Kind: KindPut, Path: at("tree/sub/b.bin"), Bytes: int64(len(b)), Mode: 0o600},
			}},
		{name: "upload refused by the sink", dir: Upload, wantFail: true,
			args: append(slices.Clone(base), filepath.Join(local, "a.txt"), host(at("missing/a.txt"))),
			want: []Op{{Kind: KindPut, Path: at("missing/a.txt"), Mode: 0o644, Failed: true},
				{Kind: KindError, Path: "scp: " + at("missing/a.txt") + ": No such file or directory"}}},
		{name: "download a file", dir: Download,
			args: append(slices.Clone(base), host(at("d.log")), filepath.Join(local, "dl")),
			want: []Op{{Kind: KindGet, Path: at("d.log"), Bytes: int64(len(d)), Mode: 0o640}}},
		{name: "download recursive", dir: Download,
			args: append(slices.Clone(base), "-r", host(at("tree")), filepath.Join(local, "dl")),
			want: []Op{
				{Kind: KindGet, Path: at("tree/c.sh"), Bytes: int64(len(c)), Mode: 0o755},
				{Kind: KindGet, Path: at("tree/sub/b.bin"), Bytes: int64(len(b)), Mode: 0o600},
			}},
		{name: "download of a missing file", dir: Download, wantFail: true,
			args: append(slices.Clone(base), host(at("nosuch")), filepath.Join(local, "dl")),
			want: []Op{{Kind: KindGet, Path: at("nosuch"), Failed: true},
				{Kind: KindError, Path: "scp: " + at("nosuch") + ": No such file or directory"}}},
	}
	for _, run := range runs {
		t.Run(run.name, func(t *testing.T) {
			recs := runRelayed(t, "scp", run.wantFail, "scp", run.args...)
			if len(recs) == 0 || recs[0].kind != recCommand {
				t.Fatal("relay log does not start with the remote command")
			}
			dir, target, rec, ok := ParseSCPCommand(string(recs[0].data))
			if !ok || dir != run.dir {
				t.Fatalf("ParseSCPCommand(%q) = %v, %q, %v, %v", recs[0].data, dir, target, rec, ok)
			}
			protocol := byte(recClient)
			if dir == Download {
				protocol = recServer
			}
			// Both directions are fed, as the gateway feeds them: the
			// parser holds the peers to scp's lock-step.
			s := NewSCP(dir, target, rec)
			var got []Op
			for _, r := range recs[1:] {
				if r.kind == protocol {
					got = append(got, s.Data(r.data)...)
				} else {
					got = append(got, s.Reply(r.data)...)
				}
			}
			if err := s.Err(); err != nil {
				t.Fatalf("Err() = %v", err)
			}
			got = append(got, s.Close()...)
			// Directory entries come in readdir order, which the file
			// system decides; a directory's entries still follow it.
			slices.SortStableFunc(got, func(x, y Op) int { return strings.Compare(x.Path, y.Path) })
			t.Logf("%q: %v", recs[0].data, got)
			if !slices.Equal(got, run.want) {
				t.Fatalf("ops differ\n got: %v\nwant: %v", got, run.want)
			}
		})
	}
}
