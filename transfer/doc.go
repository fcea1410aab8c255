// Package transfer turns the file-transfer protocols that pass through the
// gateway's byte bridge into file operations for the command log.
//
// Two protocols are understood:
//
//	sftp*.go  the SFTP v3 subsystem (draft-ietf-secsh-filexfer-02) with the
//	          OpenSSH extensions posix-rename, hardlink and lsetstat
//	scp*.go   the legacy scp (rcp) protocol of `scp -O`: the remote side runs
//	          `scp -t PATH` (upload) or `scp -f PATH` (download)
//
// The bridge feeds every chunk of each direction, in the order the chunks
// cross, before it delivers them. The parsers only observe: they never
// change, delay or reorder the stream. Feeding a chunk before forwarding it
// matters twice: a reply can never be seen before the request it answers,
// and the gateway can stop a chunk that does not parse before it reaches
// the other side.
//
// # Which sessions are transfers
//
// A program's name proves nothing: `/tmp/x/scp` can be any program, and even
// a bare `scp` is whatever the login's PATH and shell startup files make of
// it. So the gateway treats as scp only the exact command OpenSSH's client
// sends (ParseSCPCommand: the bare word scp, the server flags -t or -f,
// and only -r, -p, -d, -v and --; no path to the program, no other
// arguments, no shell syntax), and as SFTP only the "sftp" subsystem. Any
// other command is an ordinary exec with its own recording. And a transfer
// session must then parse as the protocol it claims, byte for byte:
//
//   - SFTP: the client starts with INIT and the host with VERSION 3, and
//     every packet is framed and well formed;
//   - scp: the sender keeps OpenSSH's lock-step (it waits for the answer to
//     each message before it goes on), every message is a valid C, D, E or
//     T line (judged from its first byte), and the receiver answers nothing
//     it was not asked. Error texts that either side sends are reported as
//     KindError ops, so no text crosses unlogged.
//
// Anything else stops the parser (Err reports why), and the gateway then
// applies recording.on_failure: it ends the session before the chunk that
// did not parse is delivered, or records the rest of the session raw. A
// parser that gives up never lets the stream go on unlogged.
//
// What this cannot see: the contents of files. A program installed on the
// host as `scp` (or as the sftp subsystem) that speaks the protocol
// faithfully could treat an uploaded file's body as commands; installing
// it takes an earlier session, which was recorded or logged itself.
//
// # Memory
//
// Chunks split packets anywhere. Parsing is incremental and memory is
// bounded: file contents (SFTP WRITE requests and DATA replies, scp file
// bodies) are counted and skipped, never buffered; other packets and
// error texts are limited to MaxPacket bytes; and the state kept for
// requests awaiting replies and for open handles is capped (see
// maxPending and maxHeld). Bytes after the fields of an SFTP packet are
// ignored, as OpenSSH's sftp-server ignores them. Anything that exceeds a
// limit or does not parse stops the parser for good. Nothing here panics
// on hostile input.
//
// Each operation is reported once, as an Op, when its outcome is known: a
// rename when the host answers it, a file read or written through an SFTP
// handle when the handle is closed, an scp file when its body has passed.
// Failed attempts are reported too, marked Failed, because auditors want to
// see what was tried, not only what succeeded.
package transfer
