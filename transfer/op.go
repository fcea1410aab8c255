package transfer

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Op kinds, the values of Op.Kind.
const (
	KindGet     = "get"     // a file read (SFTP) or downloaded (scp)
	KindPut     = "put"     // a file written (SFTP) or uploaded (scp)
	KindRemove  = "remove"  // a file removed
	KindRename  = "rename"  // Path renamed to Path2
	KindMkdir   = "mkdir"   // a directory created
	KindRmdir   = "rmdir"   // a directory removed
	KindSymlink = "symlink" // symbolic link Path created, pointing at Path2
	KindSetstat = "setstat" // attributes (mode, owner, times, size) changed
	KindLink    = "link"    // hard link Path created to the existing file Path2
	KindCopy    = "copy"    // data copied on the host from Path into Path2 (SFTP copy-data)
	// KindError is an error text that an scp peer sent (Path holds it), for
	// example `scp: /etc/x: Permission denied`. It is logged because any
	// text that crosses the stream must be seen, not only file names.
	KindError = "error"
)

// MaxPacket is the largest SFTP packet, and the longest scp protocol line,
// that is buffered for parsing. OpenSSH's sftp-server refuses bigger packets
// too. The contents of SFTP WRITE and DATA packets and of scp file bodies are
// skipped rather than buffered, so they are exempt.
const MaxPacket = 256 << 10

// Sentinel errors returned (wrapped) by Err. Every one of them means the
// parser stopped and the rest of the stream went unparsed.
var (
	// ErrMalformed means the stream broke the protocol's framing or syntax.
	ErrMalformed = errors.New("transfer: malformed stream")
	// ErrTooLarge means a packet or line exceeded MaxPacket.
	ErrTooLarge = errors.New("transfer: packet too large")
	// ErrLimit means the peers kept more requests outstanding, or more
	// handles open, than the parser is willing to remember.
	ErrLimit = errors.New("transfer: too much outstanding state")
	// ErrVersion means the SFTP peers agreed on a version other than 3,
	// whose packets this parser cannot read.
	ErrVersion = errors.New("transfer: unsupported sftp version")
)

// Op is one file operation seen in a transfer stream.
type Op struct {
	// Kind is one of the Kind constants: "get", "put", "remove", "rename",
	// "mkdir", "rmdir", "symlink", "setstat", "link", "copy" or "error".
	Kind string
	// Path is the file the operation acts on, as the protocol named it
	// (SFTP paths may be relative to the login's home directory). For scp
	// it is the command's target joined with the names in the protocol.
	Path string
	// Path2 is the second path of rename (the new name), symlink and link
	// (what the new link points at), and copy (the file written); empty
	// otherwise.
	Path2 string
	// Bytes counts the file bytes transferred for get and put: bytes the
	// host acknowledged writing, or bytes it sent back for reads.
	Bytes int64
	// Mode holds the permission bits from the scp message, or from the SFTP
	// attributes when the request carried them; 0 when unknown.
	Mode uint32
	// Failed is set when the receiving side refused the operation (a non-OK
	// SFTP status, an scp error reply) or the sender reported an error. A
	// failed operation is still reported: auditors want attempts.
	Failed bool
}

// String renders the operation as command-log text, for example
// `put /tmp/a.bin (1048576 bytes)`, `rename /a -> /b` or
// `remove /etc/passwd (failed)`. Paths with spaces, quotes or non-printable
// characters are quoted in Go syntax: names come from the peers, and a
// crafted name must not be able to forge log text such as a second line.
func (o Op) String() string {
	var b strings.Builder
	b.WriteString(o.Kind)
	b.WriteByte(' ')
	b.WriteString(quotePath(o.Path))
	var notes []string
	switch o.Kind {
	case KindGet, KindPut:
		notes = append(notes, fmt.Sprintf("%d bytes", o.Bytes))
	case KindRename, KindSymlink, KindLink, KindCopy:
		b.WriteString(" -> ")
		b.WriteString(quotePath(o.Path2))
	case KindSetstat:
		if o.Mode != 0 {
			notes = append(notes, fmt.Sprintf("mode %04o", o.Mode))
		}
	}
	if o.Failed {
		notes = append(notes, "failed")
	}
	if len(notes) > 0 {
		b.WriteString(" (")
		b.WriteString(strings.Join(notes, ", "))
		b.WriteByte(')')
	}
	return b.String()
}

// quotePath returns p, or p quoted when it could be misread in a log line.
func quotePath(p string) string {
	if p == "" || !utf8.ValidString(p) {
		return strconv.Quote(p)
	}
	for _, r := range p {
		if r == ' ' || r == '"' || !unicode.IsPrint(r) {
			return strconv.Quote(p)
		}
	}
	return p
}
