// Copyright 2026 The Warden Authors. Warden patch, not part of x/crypto.

//go:build !race

package ssh

// raceEnabled: the tests run under the race detector (race_warden_test.go).
const raceEnabled = false
