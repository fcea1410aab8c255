package transfer

import (
	"path"
	"strings"
)

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
// `scp [-v] [-r] [-p] [-d] -t|-f [--] PATH`, as OpenSSH's scp sends it in an
// exec request; flags may be combined (`-rt`) and the program may be an
// absolute path to scp. It returns the direction, the target PATH with
// shell quoting removed, and whether -r was given.
//
// When -d is given (the client sends it for several sources, so the sink
// must be a directory) the target is returned with a trailing slash, which
// tells NewSCP that names join onto it.
//
// Anything else is not recognised (ok false), in particular a command with
// shell syntax beyond quoting (`;`, `|`, `$`, redirections, ...): such a
// command can do more than transfer files, so it must not be logged as a
// mere transfer.
func ParseSCPCommand(cmd string) (dir Direction, target string, recursive bool, ok bool) {
	words, ok := shellWords(cmd)
	if !ok || len(words) < 3 {
		return 0, "", false, false
	}
	if prog := words[0]; prog != "scp" && !(path.IsAbs(prog) && path.Base(prog) == "scp") {
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
// expansion), because the command then does not mean what its words say.
// Glob characters are kept literally: for `scp -f` the glob names the files.
func shellWords(s string) ([]string, bool) {
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
