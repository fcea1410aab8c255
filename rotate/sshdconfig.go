package rotate

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// sshd -T answers for one connection at a time, so a Match block for
// addresses other than the gateway's ("Match Address !GATEWAY" with its
// own AuthorizedKeysFile) is invisible to it. The configuration text is
// therefore read as well, Include files too, and every key source named
// anywhere in it, inside Match blocks or not, joins the ones sshd -T
// named. Reading a source that does not apply costs nothing; missing one
// that does would let the old key back in.

// maxIncludeDepth bounds nested Include directives; sshd itself stops at
// 16, and a real configuration uses one.
const maxIncludeDepth = 8

// includeGlob is what an Include's last path element may be when it is a
// pattern: the characters of the usual "*.conf". Other patterns are not
// expanded by the check, which then fails rather than guess.
var includeGlob = regexp.MustCompile(`^[A-Za-z0-9._*?-]+$`)

// configTokens splits a configuration line into words as sshd does:
// blanks separate, double quotes group, and "Keyword=value" is
// "Keyword value". Comments and blank lines give nothing.
func configTokens(line string) []string {
	line = strings.TrimSpace(strings.TrimSuffix(line, "\r"))
	if line == "" || strings.HasPrefix(line, "#") {
		return nil
	}
	var out []string
	var cur strings.Builder
	inQuote, have := false, false
	for _, c := range line {
		switch {
		case c == '"':
			inQuote, have = !inQuote, true
		case !inQuote && (c == ' ' || c == '\t' || (c == '=' && len(out) == 0)):
			if have {
				out = append(out, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteRune(c)
			have = true
		}
	}
	if have {
		out = append(out, cur.String())
	}
	return out
}

// scanConfigText adds to s every key source the configuration text names
// and returns its Include arguments.
func (s *sshdSources) scanConfigText(text string) (includes []string) {
	for line := range strings.SplitSeq(text, "\n") {
		tok := configTokens(line)
		if len(tok) < 2 {
			continue
		}
		switch strings.ToLower(tok[0]) {
		case "include":
			includes = append(includes, tok[1:]...)
		case "authorizedkeysfile":
			for _, f := range tok[1:] {
				if f != "none" && !slices.Contains(s.files, f) {
					s.files = append(s.files, f)
				}
			}
		case "authorizedkeyscommand":
			if tok[1] != "none" {
				s.command = strings.Join(tok[1:], " ")
			}
		case "trustedusercakeys":
			if tok[1] != "none" && !slices.Contains(s.caFiles, tok[1]) {
				s.caFiles = append(s.caFiles, tok[1])
			}
		}
	}
	return includes
}

// includeTarget splits an Include argument into a directory, quoted as
// one word, and a last element that may be a pattern. Relative paths
// start at /etc/ssh, as sshd has it.
func includeTarget(arg string) (dir, base string, err error) {
	if !strings.HasPrefix(arg, "/") {
		arg = path.Join("/etc/ssh", arg)
	}
	dir, base = path.Split(arg)
	if strings.ContainsAny(dir, "*?[") || !includeGlob.MatchString(base) {
		return "", "", fmt.Errorf("Include %q is a pattern the check cannot expand safely", arg)
	}
	return dir, base, nil
}

// includeScript prints every regular file the Include arguments name,
// each after a "SEP PATH" header; only the last element is a pattern,
// and it passed includeGlob, so the shell expands nothing else.
func includeScript(args []string, sep string) (string, error) {
	var b strings.Builder
	for _, a := range args {
		dir, base, err := includeTarget(a)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "for f in %s%s; do if [ -f \"$f\" ]; then printf '%%s %%s\\n' %s \"$f\"; cat -- \"$f\"; printf '\\n'; fi; done\n",
			shellQuote(dir), base, shellQuote(sep))
	}
	return b.String(), nil
}

// splitDump returns the contents of a dump by file, in order.
func splitDump(out []byte, sep string) []string {
	var files []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if _, ok := strings.CutPrefix(line, sep+" "); ok {
			files = append(files, "")
			continue
		}
		if len(files) > 0 {
			files[len(files)-1] += line + "\n"
		}
	}
	return files
}

// scanConfig reads the sshd configuration file and its Includes over c
// and adds every key source they name to src.
func (r *rotation) scanConfig(ctx context.Context, c *gossh.Client, src *sshdSources, sep string) error {
	main := r.t.SSHDConfig
	if main == "" {
		main = DefaultSSHDConfig
	}
	out, err := run(ctx, c, dumpScript([]string{main}, sep))
	if err != nil {
		return fmt.Errorf("rotate: read %s on %s: %w", main, r.t.Host.Name, err)
	}
	texts := splitDump(out, sep)
	if len(texts) != 1 {
		return fmt.Errorf("rotate: %s on %s is not a readable file", main, r.t.Host.Name)
	}
	includes := src.scanConfigText(texts[0])
	for depth := 0; len(includes) > 0; depth++ {
		if depth == maxIncludeDepth {
			return fmt.Errorf("rotate: sshd configuration on %s nests Include deeper than %d", r.t.Host.Name, maxIncludeDepth)
		}
		script, err := includeScript(includes, sep)
		if err != nil {
			return fmt.Errorf("rotate: sshd configuration on %s: %w", r.t.Host.Name, err)
		}
		out, err := run(ctx, c, script)
		if err != nil {
			return fmt.Errorf("rotate: read sshd Include files on %s: %w", r.t.Host.Name, err)
		}
		includes = nil
		for _, text := range splitDump(out, sep) {
			includes = append(includes, src.scanConfigText(text)...)
		}
	}
	return nil
}
