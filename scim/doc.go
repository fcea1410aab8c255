// Package scim is Warden's SCIM 2.0 server (RFC 7643, RFC 7644): the
// endpoint under /scim/v2 through which Entra ID and Okta provision users
// and groups into package identity (CONTRACT.md §6).
//
// A request walks through these files:
//
//	handler.go  routing, the bearer token (one per directory, compared in
//	            constant time), body limits, SCIM errors
//	resource.go JSON in and out: users and groups, the quirks of real
//	            clients (string booleans, sshPublicKeys as one string)
//	filter.go   the filter grammar, parsed fully or refused (invalidFilter)
//	users.go    /Users: list, get, create, replace, patch, delete
//	groups.go   /Groups: the same, members in one transaction
//	patch.go    PATCH operations: op names in any case, paths with value
//	            filters (members[value eq "ID"]), several attributes in one
//	            value object
//	meta.go     ServiceProviderConfig, Schemas, ResourceTypes
//
// Every write is one identity.Directory.Update: one database transaction
// with its audit events, so a request that fails half-way changes nothing,
// and a retried request (IdPs resend on timeouts) finds its work done and
// changes nothing again. Everything a client sends is parsed strictly: an
// unknown filter operator, attribute, schema or PATCH path is a 400 with
// the SCIM error schema, never a silent success.
//
// The handler is written on net/http rather than github.com/elimity-com/scim
// (see README "Identity directories" for why).
package scim
