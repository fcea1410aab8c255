package audit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkClusterAppend is issue 12's "audit appends per second with 1, 2
// and 4 nodes against the single-node SQLite figure" (README, "Production:
// two nodes, PostgreSQL and S3"). Each node is its own Store (writer,
// read pool, cached chain head) with its own NodeID, on one PostgreSQL
// database of the package's test server, all appending at once; the
// baseline is one SQLite store. Every node appends from clusterBenchWriters
// goroutines, as a gateway does from its sessions, so each node's writer
// also batches. b.N events in all are shared out between them.
//
// After each run the chain is verified from a fresh reader: a chain that
// does not verify, or that holds another number of events, fails the
// benchmark. The figures are timing only, never pass/fail.
//
// Note for reading the figures: internal/pgtest runs PostgreSQL with
// fsync, synchronous_commit and full_page_writes off, while the SQLite
// store commits with synchronous=FULL (an fsync per batch); a production
// PostgreSQL that flushes its WAL pays that cost too.
func BenchmarkClusterAppend(b *testing.B) {
	b.Run("sqlite", func(b *testing.B) {
		benchClusterAppend(b, 1, func(b *testing.B, dir string) Backend { return Backend{Driver: DriverSQLite} })
	})
	for _, nodes := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("postgres-%dnodes", nodes), func(b *testing.B) {
			benchClusterAppend(b, nodes, func(b *testing.B, dir string) Backend {
				return Backend{Driver: DriverPostgres, DSN: pgServer.Database(b)}
			})
		})
	}
}

// clusterBenchWriters is how many goroutines append on each node.
const clusterBenchWriters = 8

// benchClusterAppend runs one measurement: nodes stores on the backend that
// backend gives for a fresh data directory, b.N events shared out
// between their writers, then the chain verified.
func benchClusterAppend(b *testing.B, nodes int, backend func(*testing.B, string) Backend) {
	ctx := context.Background()
	b.StopTimer()
	dir := b.TempDir()
	be := backend(b, dir)
	stores := make([]*Store, nodes)
	for i := range stores {
		s, err := Open(ctx, dir, Options{Backend: be, NodeID: fmt.Sprintf("gw-%d", i)})
		if err != nil {
			b.Fatalf("node %d: %v", i, err)
		}
		defer s.Close()
		stores[i] = s
	}
	var next atomic.Int64 // events claimed so far
	var failed atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	b.StartTimer()
	for n, s := range stores {
		for w := range clusterBenchWriters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					k := next.Add(1)
					if k > int64(b.N) {
						return
					}
					err := s.Append(ctx, Event{Type: "bench.append", Actor: fmt.Sprintf("gw-%d", n),
						Subject: fmt.Sprintf("w%d-%d", w, k), Data: map[string]any{"node": n, "k": k}})
					if err != nil {
						failed.CompareAndSwap(nil, err)
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")

	r, err := OpenReader(ctx, dir, be)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(ctx, dir)
	if err != nil {
		b.Fatal(err)
	}
	if rep.Events != b.N || len(rep.Problems) != 0 {
		b.Fatalf("verify after %d appends from %d node(s): %d events, problems %v", b.N, nodes, rep.Events, rep.Problems)
	}
}
