// Package s3test starts a real S3 server for tests: versitygw v1.8.0
// (Apache-2.0), built from testdata/s3dev, with its posix backend on a
// temporary directory. Tests reach it over HTTP with real SigV4 requests,
// exactly as Warden reaches a production object store; nothing is faked.
//
// The binary is built once by `make s3dev` into ~/.cache/warden/s3dev (or
// wherever WARDEN_S3DEV points). When it is missing, Start fails the test
// with that instruction instead of skipping: a skipped S3 test would hide
// that the upload and its failure paths were never exercised.
package s3test
