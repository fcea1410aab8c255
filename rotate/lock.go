package rotate

import (
	"context"
	"sync"
)

// pathLocks serializes rotations of one KV path in this process. Two grants
// of the same break-glass role may end at once; run together, each would
// install its own key and the loser of the check-and-set would be left with
// a line on the host that no one holds. Across gateway processes the
// check-and-set write is what detects the race.
var pathLocks = keyedLock{held: map[string]chan struct{}{}}

// keyedLock is a set of mutexes by name whose waiters honour a context.
type keyedLock struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when the holder of that name unlocks
}

// lock waits until name is free or ctx ends, and returns the unlock func.
func (l *keyedLock) lock(ctx context.Context, name string) (func(), error) {
	for {
		l.mu.Lock()
		ch, busy := l.held[name]
		if !busy {
			ch = make(chan struct{})
			l.held[name] = ch
			l.mu.Unlock()
			return func() {
				l.mu.Lock()
				delete(l.held, name)
				l.mu.Unlock()
				close(ch)
			}, nil
		}
		l.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
