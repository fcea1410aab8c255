//go:build wardendebug

package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"runtime"
	"strconv"
)

// A binary built with -tags wardendebug (make bench builds one) serves Go's
// runtime profiles on WARDEN_DEBUG_ADDR, so that the memory benchmark can
// count the goroutines of a real `warden serve` process and take its heap
// profile. Release builds hold none of this. The address must be a
// loopback one: the goroutine profile shows every session's stack.
func init() {
	addr := os.Getenv("WARDEN_DEBUG_ADDR")
	if addr == "" {
		return
	}
	host, _, err := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "warden: WARDEN_DEBUG_ADDR %q is not a loopback address; profiles not served\n", addr)
		return
	}
	// Every allocation in the heap profile, for finding what a session
	// holds (slow; only when asked).
	if v, err := strconv.Atoi(os.Getenv("WARDEN_DEBUG_MEMPROFILERATE")); err == nil && v > 0 {
		runtime.MemProfileRate = v
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	// What the benchmark polls, cheaply: a profile's own allocations
	// would be counted as the sessions'.
	mux.HandleFunc("/debug/stats", func(w http.ResponseWriter, _ *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "%d %d %d %d\n", runtime.NumGoroutine(), m.HeapInuse, m.StackInuse, m.NumGC)
	})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: debug listener: %v\n", err)
		return
	}
	// Lives as long as the process: nothing in it needs stopping.
	go func() { _ = http.Serve(ln, mux) }()
}
