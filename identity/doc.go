// Package identity is where Warden's users come from besides the YAML
// policy: the users and groups that identity directories (Entra ID, Okta)
// provision over SCIM 2.0 (package scim), kept in the database, and the
// merge of those users with the YAML policy that the gateway, the
// just-in-time workflow and the commands consult (CONTRACT.md §6).
//
// # The path of a change
//
//	model.go     User and Group as stored; Change, what a write did to a user
//	errors.go    refusals: ErrNotFound, ErrConflict, ErrInvalid (SCIM 404, 409, 400)
//	names.go     userName rules: printable, no controls, unique case-insensitively
//	keys.go      sshPublicKeys: an array of authorized_keys lines or one string of lines
//	store.go     SQL: the directory_* tables of migration 0005
//	tx.go        Tx: one SCIM request's reads and writes, one transaction
//	directory.go Directory: the in-memory snapshot, Update, subscribers
//	merge.go     Merge: the YAML policy plus the directory users, and bound keys
//	review.go    Reviewed: what warden reconcile reports about identities
//	oidc.go      SignInUser: users single sign-on creates (create_users), in
//	             the pseudo-directory "oidc", groups from the groups claim
//
// # API for other packages
//
//   - Open loads the tables into a snapshot; Users, UserByName and
//     UserByKey read it (UserByKey by SHA-256 fingerprint).
//   - Update runs one SCIM request in one transaction of the audit store's
//     single writer: everything it wrote, and its chained audit events
//     (actor "scim:DIRECTORY"), commit together or not at all, so a request
//     that fails half-way (a database error) changes nothing.
//   - Subscribe registers a function told, after each commit, which users
//     changed (leaver, mover, joiner); the gateway ends what they are no
//     longer entitled to (gateway/directory.go).
//   - Merge(base) returns base plus the active directory users as
//     *policy.Config (policy.Config.WithUsers): a user is in the merged
//     policy only while active and not deleted, with their keys, and with
//     the YAML groups that their SCIM groups name by displayName. A user of
//     a tenant-limited directory carries that tenant (policy.User.Tenant)
//     and so holds only that tenant's roles.
//   - Load and MergeUsers do the same from a read-only database for the
//     CLI (warden identities, reconcile).
//   - SignInUser creates (or refreshes the groups of) a user of source
//     "oidc" for identity.oidc.create_users, as one write like a SCIM
//     request (actor "oidc"); such users are merged only while
//     create_users is on, never under a name YAML or a directory holds.
//   - BindKeys lets another package (OIDC sign-in) add keys to users by
//     name, under a source of its own; Merge adds them to the user, YAML or
//     directory, while that user is in the merged policy, so a leaver's
//     bound keys stop with them.
//
// # Concurrency
//
// Writes go through the audit store's writer (audit.Store.Update); a Tx
// reads the database inside that transaction, never the snapshot, because
// the writer may batch several requests in one commit. After a commit the
// snapshot is reloaded under a mutex, so readers see a whole state, and
// the subscribers run in the caller's goroutine before Update returns: by
// the time the IdP gets its answer, access has followed the change.
package identity
