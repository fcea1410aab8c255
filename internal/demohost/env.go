package demohost

import (
	"os"
	"strings"
)

// defaultPath is the PATH of sessions when the demo process has none.
const defaultPath = "/usr/local/bin:/usr/bin:/bin"

// environ builds a session's environment from scratch rather than from the
// demo process's, which may hold secrets such as a Vault token. The client
// may set only the variables acceptEnv allows, as sshd's AcceptEnv does.
func (h *Host) environ(acct account, client []string, term string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{
		"HOME=" + acct.home,
		"USER=" + acct.name,
		"LOGNAME=" + acct.name,
		"SHELL=" + h.shell,
		"PATH=" + path,
	}
	if term != "" {
		env = append(env, "TERM="+term)
	}
	for _, kv := range client {
		if name, _, ok := strings.Cut(kv, "="); ok && acceptEnv(name) {
			env = append(env, kv)
		}
	}
	return env
}

// acceptEnv reports whether a client may set the variable name: the locale,
// as Debian's sshd allows, and WARDEN_* for demos and tests of env passing.
// Anything else (LD_PRELOAD, PATH, BASH_ENV) could change what the shell runs.
func acceptEnv(name string) bool {
	if !validEnvName(name) {
		return false
	}
	return name == "LANG" || strings.HasPrefix(name, "LC_") || strings.HasPrefix(name, "WARDEN_")
}

func validEnvName(name string) bool {
	if name == "" || name[0] >= '0' && name[0] <= '9' {
		return false
	}
	for _, r := range name {
		if r != '_' && (r < 'A' || r > 'Z') && (r < 'a' || r > 'z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}
