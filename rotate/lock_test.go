package rotate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestKeyedLockSerializesOneName(t *testing.T) {
	l := keyedLock{held: map[string]chan struct{}{}}
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			unlock, err := l.lock(context.Background(), "secret/data/a")
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := most.Load()
				if n <= m || most.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
			unlock()
		})
	}
	wg.Wait()
	if most.Load() != 1 {
		t.Fatalf("%d holders at once, want 1", most.Load())
	}
	if len(l.held) != 0 {
		t.Fatalf("names still held after every unlock: %v", l.held)
	}
}

func TestKeyedLockWaiterHonoursContext(t *testing.T) {
	l := keyedLock{held: map[string]chan struct{}{}}
	unlock, err := l.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.lock(canceled, "a"); !errors.Is(err, context.Canceled) {
		t.Fatalf("lock of a held name with a canceled context = %v", err)
	}
	unlockB, err := l.lock(canceled, "b")
	if err != nil {
		t.Fatalf("another name waited for a: %v", err)
	}
	unlockB()
	unlock()
	unlockA, err := l.lock(canceled, "a")
	if err != nil {
		t.Fatalf("a still held after unlock: %v", err)
	}
	unlockA()
}
