// Package rotate keeps a break-glass role's static SSH credential in Vault
// KV v2 and replaces it after every use.
//
// A break-glass role may name a KV v2 secret (policy
// `credential: {vault_kv: secret/data/breakglass/acme}`). Its field
// "private_key" holds an OpenSSH private key (PEM, no passphrase) whose
// public half sits in the login's authorized_keys on the managed host. The
// gateway logs in with it during a break-glass session and never shows it
// to anyone (Fetch); when the grant ends it calls Rotate, because a key that
// was used in an emergency must be assumed to be known.
//
// Rotate runs eight steps, each named in Result.Steps and in a failing
// StepError:
//
//	fetch       read the current key and its KV version (Target.OnFetch records it)
//	generate    a new ed25519 key from Options.Rand
//	install     with the OLD key: append the new public key to authorized_keys
//	verify-new  a new connection with the NEW key runs `true`
//	store       write the new key as a new KV version (check-and-set on the old one)
//	remove-old  with the NEW key: delete the retired keys' lines (temp file + mv)
//	sources     no retired key in any file sshd reads, for any account (sources.go)
//	check       the old key is refused and the new one logs in
//
// The retired keys are the key fetched now and Target.Retire: the keys an
// interrupted earlier attempt for the same grant fetched, so that a crash
// between store and remove-old cannot leave the key used in the emergency
// on the host while Vault already holds another.
//
// The order keeps one invariant: at every moment the key in Vault logs in.
// The host accepts both keys from install until remove-old, and Vault
// switches to the new key only after verify-new proved it works and before
// the old key is taken away. A failure before store therefore leaves Vault
// on the old key (still authorized; the new line is removed again), and a
// failure after store leaves Vault on the new key (already proven). Writing
// Vault first would, on a host that is down, leave Vault holding a key no
// host accepts, exactly when someone needs to break the glass.
//
// The store step writes with options.cas set to the version fetched, so a
// concurrent change (an operator re-keying by hand, another gateway
// rotating) fails with ErrConflict instead of being overwritten. When a
// write fails, Rotate reads Vault back: if the new key landed after all it
// carries on; if Vault is readable and holds another key it removes the new
// line from the host again; if Vault cannot be read it leaves both keys
// authorized rather than risk removing the one Vault holds. Rotations of
// the same KV path in one process run one after the other.
//
// The new key's line carries no options. Copying the old line's options
// (as an earlier version did) let a command="..." planted during the grant
// survive every rotation. Rotate refuses to start when the old key is not
// in the named authorized_keys file: it could install the new key but
// never remove the old one.
//
// The sources step looks from outside the gateway's view. sshd -T names
// the files sshd reads (AuthorizedKeysFile, as configured and for this
// login and the gateway's address, and TrustedUserCAKeys), and the
// configuration text with its Include files adds those of Match blocks
// for other addresses (sshdconfig.go). Each is expanded for every account
// in the passwd database and read, and a retired key on any line, under
// any options, fails the rotation. An AuthorizedKeysCommand fails it as
// well, since its keys cannot be read. The step needs the login to be
// root. What root can still leave behind outside SSH keys (PAM, setuid
// binaries, cron, a second sshd with its own configuration) is beyond any
// key check; the session recording is the control there.
//
// Every connection verifies the host key with hostkey.Callback; there is no
// way to skip it. Remote commands are POSIX sh run by the login's shell,
// with every value single-quoted. Private keys never reach a log, an error
// or a command line: the new one travels only to Vault, over its API.
package rotate
