//go:build linux && cgo

package audit

/*
#include <malloc.h>
#include <stdlib.h>

// warden_cap_arenas caps glibc's malloc arenas at n unless the operator
// set MALLOC_ARENA_MAX; it does nothing where the C library has no such
// setting (musl). It returns the cap it set, 0 when it set none.
static int warden_cap_arenas(int n) {
#ifdef M_ARENA_MAX
	if (getenv("MALLOC_ARENA_MAX") != NULL) return 0;
	if (mallopt(M_ARENA_MAX, n) == 1) return n;
#endif
	return 0;
}
*/
import "C"

// mallocArenas caps glibc's malloc arenas for SQLite's C allocations.
//
// Why: SQLite runs in C through cgo, on whichever OS thread the Go
// scheduler picks, and glibc gives each thread that meets contention an
// arena of its own (up to eight per core) that keeps the memory freed in it
// instead of returning it to the system. After a busy hour the gateway then
// holds tens of megabytes of freed C memory that no session uses: the soak
// (`make soak`) saw 50 MB of its 64 MB of anonymous memory outside Go's
// heap once every session had ended, and 8 MB with the cap. One writer and
// a few readers do not need more than two arenas to avoid waiting on each
// other. MALLOC_ARENA_MAX, when set, is the operator's choice and wins.
const mallocArenas = 1

// mallocArenasSet is the cap set at start (0: none, see above).
var mallocArenasSet = int(C.warden_cap_arenas(C.int(mallocArenas)))
