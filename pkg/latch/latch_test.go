package latch

import (
	"sync"
	"testing"
)

func TestLatchesSerialiseSharedKeys(t *testing.T) {
	l := New()
	var (
		wg      sync.WaitGroup
		counter int // guarded by the latch of "k"
	)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Multi-key sets in different orders must not deadlock.
			keys := [][]byte{[]byte("k"), []byte("other"), []byte{byte(i)}}
			if i%2 == 1 {
				keys[0], keys[1] = keys[1], keys[0]
			}
			for range 1000 {
				slots := l.Acquire(keys, nil)
				counter++
				l.Release(slots)
			}
		}()
	}
	wg.Wait()
	if counter != 8000 {
		t.Fatalf("counter = %d, want 8000", counter)
	}
}

func TestAcquireDeduplicates(t *testing.T) {
	l := New()
	slots := l.Acquire([][]byte{[]byte("a"), []byte("a")}, nil)
	if len(slots) != 1 {
		t.Fatalf("a key named twice took %d slots", len(slots))
	}
	l.Release(slots)
}
