package demohost

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// Which OS user runs a session. The demo host does not keep accounts: as
// an ordinary user it can only run every session as itself, whatever the
// login. As root it could do the same, but then every login would be uid
// 0, and a standing role that gives login "demo" would be root access in
// disguise, which makes the demo's just-in-time root step meaningless
// (issue 13, finding 8). So when the host runs as root, only the login
// "root" runs as root; every other login runs as an unprivileged account
// (Options.Unprivileged, "nobody" by default).

// RootLogin is the one login that runs as uid 0 when the host runs as root.
const RootLogin = "root"

// DefaultUnprivileged is the account of non-root logins on a host that runs
// as root.
const DefaultUnprivileged = "nobody"

// account is an OS user that sessions run as.
type account struct {
	name, home string
	// cred is the identity to switch to; nil runs as the host's own user.
	cred *syscall.Credential
	// dir is the working directory for this account; "" means the host's.
	dir string
}

// accounts maps logins to the OS users that run them.
type accounts struct {
	self account  // the user running the host
	drop *account // when set (host runs as root), every login but root runs as it
}

// forLogin returns the account that runs login.
func (a accounts) forLogin(login string) account {
	if a.drop != nil && login != RootLogin {
		return *a.drop
	}
	return a.self
}

// Describe says, in one line for the demo's screen, which OS user runs
// which login.
func (h *Host) Describe() string { return h.accounts.describe() }

func (a accounts) describe() string {
	if a.drop == nil {
		return fmt.Sprintf("the demo host is one OS user: every session runs as %s, whatever the login (root included)", a.self.name)
	}
	return fmt.Sprintf("the demo host runs login %s as uid 0 and every other login as the unprivileged OS user %s", RootLogin, a.drop.name)
}

// newAccounts describes who runs sessions for a host whose process has
// effective uid euid. unprivileged names the account of non-root logins
// when euid is 0.
func newAccounts(euid int, unprivileged string) (accounts, error) {
	a := accounts{self: currentAccount()}
	if euid != 0 {
		return a, nil
	}
	if unprivileged == "" {
		unprivileged = DefaultUnprivileged
	}
	u, err := user.Lookup(unprivileged)
	if err != nil {
		return accounts{}, fmt.Errorf("demohost: running as root, non-root logins run as %q: %w", unprivileged, err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil || uid == 0 {
		return accounts{}, fmt.Errorf("demohost: account %q (uid %s) cannot hold non-root logins", unprivileged, u.Uid)
	}
	drop := account{
		name: u.Username, home: u.HomeDir,
		// No supplementary groups: root's would come along otherwise.
		cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}},
		dir:  "/",
	}
	// Its home when it has one; the demo's directory is root's (0700).
	if st, err := os.Stat(u.HomeDir); err == nil && st.IsDir() {
		drop.dir = u.HomeDir
	}
	a.drop = &drop
	return a, nil
}
