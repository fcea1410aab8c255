//go:build wardendebug

package cli

import (
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
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
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warden: debug listener: %v\n", err)
		return
	}
	// Lives as long as the process: nothing in it needs stopping.
	go func() { _ = http.Serve(ln, mux) }()
}
