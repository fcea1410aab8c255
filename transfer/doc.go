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
// cross, before it delivers them. The parsers only observe: they never change,
// delay or reorder the stream, so a parse failure can cost the command log
// detail but never break a transfer. Feeding a chunk before forwarding it
// matters: a reply can then never be seen before the request it answers.
//
// Chunks split packets anywhere. Parsing is incremental and memory is
// bounded: file contents (SFTP WRITE requests and DATA replies, scp file
// bodies) are counted and skipped, never buffered; other packets are limited
// to MaxPacket bytes; and the state kept for requests awaiting replies and
// for open handles is capped. Anything that exceeds a limit or does not parse
// stops the parser for good: Err then reports why, later input is ignored,
// and the gateway logs that the stream went unparsed. Nothing here panics on
// hostile input.
//
// Each operation is reported once, as an Op, when its outcome is known: a
// rename when the host answers it, a file read or written through an SFTP
// handle when the handle is closed, an scp file when its body has passed.
// Failed attempts are reported too, marked Failed, because auditors want to
// see what was tried, not only what succeeded.
package transfer
