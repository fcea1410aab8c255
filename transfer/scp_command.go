package transfer

import "strings"

// Direction says which way an scp transfer goes, and so which side of the
// channel speaks the protocol.
type Direction int

const (
	// Upload is `scp -t PATH`: the host is the sink and the client sends
	// the protocol (client→host).
	Upload Direction = iota + 1
	// Download is `scp -f PATH`: the host is the source and sends the
	// protocol (host→client).
	Download
)

// ParseSCPCommand recognises the remote side of a legacy scp transfer,
// `scp [-v] [-r] [-p] [-d] -t|-f [--] PATH`, exactly as OpenSSH's scp (and
// PuTTY's pscp and WinSCP) send it in an exec request; flags may be
// combined (`-rt`). It returns the direction, the target PATH with shell
// quoting removed, and whether -r was given.
//
// The program must be the bare word scp. Clients never send a path to
// scp, so a path (`/usr/bin/scp`, `/tmp/x/scp`) buys no compatibility and
// would let a user pick a program of their own that merely has the name.
// Even a bare scp is resolved by the host's PATH and shell startup files,
// so the name alone proves nothing: the parser must then account for every
// byte of the stream, and a session that does not parse as scp is ended or
// recorded raw (see the package documentation).
//
// When -d is given (the client sends it for several sources, so the sink
// must be a directory) the target is returned with a trailing slash, which
// tells NewSCP that names join onto it.
//
// Anything else is not recognised (ok false), in particular a command with
// shell syntax beyond quoting (`;`, `|`, `$`, redirections, ...), extra
// arguments or other flags: such a command can do more than transfer files,
// so it must be recorded as the ordinary command it is.
func ParseSCPCommand(cmd string) (dir Direction, target string, recursive bool, ok bool) {
	words, ok := shellWords(cmd)
	if !ok || len(words) < 3 || words[0] != "scp" {
		return 0, "", false, false
	}
	mustBeDir := false
	i := 1
	for ; i < len(words); i++ {
		w := words[i]
		if w == "--" {
			i++
			break
		}
		if len(w) < 2 || w[0] != '-' {
			break
		}
		for _, f := range w[1:] {
			switch f {
			case 't', 'f':
				if dir != 0 {
					return 0, "", false, false
				}
				dir = Upload
				if f == 'f' {
					dir = Download
				}
			case 'r':
				recursive = true
			case 'd':
				mustBeDir = true
			case 'v', 'p':
			default:
				return 0, "", false, false
			}
		}
	}
	if dir == 0 || i != len(words)-1 || words[i] == "" {
		return 0, "", false, false
	}
	target = words[i]
	if mustBeDir && dir == Upload && !strings.HasSuffix(target, "/") {
		target += "/"
	}
	return dir, target, recursive, true
}

// shellWords splits a command line the way a POSIX shell would, for the
// subset that needs no expansion: words separated by blanks, with single
// quotes, double quotes and backslash escapes. It fails on every other
// shell syntax (operators, redirections, substitutions, comments, brace
// expansion) and on control characters, because the command then does not
// mean what its words say.
// Glob characters are kept literally: for `scp -f` the glob names the files.
func shellWords(s string) ([]string, bool) {
	// sshd hands the command to the shell as a C string, so a NUL would
	// cut it short of what was logged; other controls (tab aside) have no
	// place in what a client sends, quoted or not.
	if strings.ContainsFunc(s, func(r rune) bool { return r != '\t' && (r < 0x20 || r == 0x7f) }) {
		return nil, false
	}
	var words []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == ' ' || ch == '\t':
			if inWord {
				words = append(words, w.String())
				w.Reset()
				inWord = false
			}
			continue
		case ch == '\\':
			i++
			if i == len(s) || s[i] == '\n' {
				return nil, false
			}
			w.WriteByte(s[i])
		case ch == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, false
			}
			w.WriteString(s[i+1 : i+1+end])
			i += end + 1
		case ch == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				switch s[i] {
				case '$', '`':
					return nil, false
				case '\\':
					if i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
						i++
					} else if i+1 < len(s) && s[i+1] == '\n' {
						return nil, false
					}
				}
				w.WriteByte(s[i])
			}
			if i == len(s) {
				return nil, false
			}
		case ch == '#' && !inWord:
			return nil, false
		case strings.IndexByte(";&|<>()$`{}\n\r", ch) >= 0:
			return nil, false
		default:
			w.WriteByte(ch)
		}
		inWord = true
	}
	if inWord {
		words = append(words, w.String())
	}
	return words, true
}
