package metrics_test

import (
	"testing"
	"time"

	"github.com/warden-gw/warden/metrics"
)

// What the gateway pays per event (make bench). None of these is on the
// byte path: bytes are added once per session.

func BenchmarkSessionEnded(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.SessionEnded("exit", 4096, 1<<20)
		}
	})
}

func BenchmarkRefused(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Refused("forward.refused", "direct-tcpip")
		}
	})
}

// An attacker's made-up kind costs a lowercase copy and a map miss more.
func BenchmarkRefusedUnknownKind(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.Refused("request.refused", "Evil-Request@attacker.example")
		}
	})
}

func BenchmarkCredentialSigned(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.CredentialSigned("builtin", 300*time.Microsecond, nil)
		}
	})
}
