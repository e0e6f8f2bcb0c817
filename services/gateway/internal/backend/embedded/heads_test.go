package embedded

import (
	"context"
	"errors"
	"runtime"
	"strings"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// allocated is how many bytes fn allocates: the least of three runs, since
// the count is process-wide and Pebble's background flushes (of the big
// value just written) allocate too.
func allocated(setup, fn func()) uint64 {
	least := uint64(1<<64 - 1)
	for range 3 {
		setup()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fn()
		runtime.ReadMemStats(&after)
		least = min(least, after.TotalAlloc-before.TotalAlloc)
	}
	return least
}

// EXISTS, TYPE, TTL and STRLEN of a huge value, named many times in one
// command, and DEL of it, copy none of its data.
func TestHeadsReadNoData(t *testing.T) {
	for _, grouped := range []bool{false, true} {
		t.Run(map[bool]string{false: "plain", true: "group"}[grouped], func(t *testing.T) {
			clk := &clock{}
			clk.ms.Store(1000)
			s := openTest(t, t.TempDir(), clk)
			const size = 16 << 20
			set(t, s, "big", strings.Repeat("v", size), 5000)
			set(t, s, "small", "abc", 0)
			c := ctx
			if grouped {
				c = s.Batch(ctx)
				setIn(t, s, c, "pending", "xy", 0) // the group now holds writes
				defer s.Sync(c)
			}
			keys := [][]byte{sk("small"), sk("nokey"), sk("pending")}
			for range 1000 {
				keys = append(keys, sk("big"))
			}
			var heads []backend.Head
			var found []bool
			n := allocated(func() {}, func() {
				var err error
				if heads, found, err = s.Heads(c, keys); err != nil {
					t.Fatal(err)
				}
			})
			if n > 1<<20 {
				t.Errorf("Heads of a %d-byte value named 1000 times allocated %d bytes", size, n)
			}
			if !found[0] || heads[0] != (backend.Head{Type: backend.TypeString, Len: 3}) {
				t.Errorf("small: %+v %v", heads[0], found[0])
			}
			if found[1] {
				t.Errorf("nokey found")
			}
			if found[2] != grouped || (grouped && heads[2].Len != 2) {
				t.Errorf("the group's own write: %+v %v", heads[2], found[2])
			}
			for i := 3; i < len(keys); i++ {
				if !found[i] || heads[i] != (backend.Head{Type: backend.TypeString, ExpiresAt: 5000, Len: size}) {
					t.Fatalf("big #%d: %+v %v", i, heads[i], found[i])
				}
			}
			n = allocated(func() { setIn(t, s, c, "big", strings.Repeat("v", size), 5000) }, func() {
				err := s.Update(c, backend.WriteOptions{}, keys, func(tx backend.Txn) error {
					for _, k := range keys {
						if _, ok, err := tx.Head(k); err != nil || !ok {
							continue
						}
						tx.Delete(k)
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
			})
			if n > 1<<20 {
				t.Errorf("DEL of a %d-byte value allocated %d bytes", size, n)
			}
			if _, found, _ := s.Heads(c, keys[:1]); found[0] {
				t.Errorf("small survived DEL")
			}
			if _, ok, _ := s.Get(c, sk("big")); ok {
				t.Errorf("big survived DEL")
			}
			// The expired value reads as absent.
			setIn(t, s, c, "old", "v", 1500)
			clk.advance(1000)
			if _, found, _ := s.Heads(c, [][]byte{sk("old")}); found[0] {
				t.Errorf("an expired key has a head")
			}
		})
	}
}

// A command writing more than one batch may hold is refused before any
// batch is built, with ErrTooLarge, on both write paths; nothing is written.
func TestCommandBytesAreBounded(t *testing.T) {
	clk := &clock{}
	s, err := Open(Options{Dir: t.TempDir(), Sync: SyncNo, Now: clk.now, SweepInterval: 1 << 62, MaxCommandBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	g := s.Batch(ctx)
	for _, c := range []context.Context{ctx, g} {
		keys := [][]byte{sk("a"), sk("b")}
		err := s.Update(c, backend.WriteOptions{}, keys, func(tx backend.Txn) error {
			for _, k := range keys {
				tx.Set(k, backend.Value{Type: backend.TypeString, Data: make([]byte, 600<<10)})
			}
			return nil
		})
		if !errors.Is(err, backend.ErrTooLarge) || !strings.Contains(err.Error(), "over the embedded store's limit of 1048576 bytes") {
			t.Fatalf("Update of 1.2 MB = %v, want ErrTooLarge", err)
		}
		if err := s.Sync(c); err != nil {
			t.Fatal(err)
		}
		if _, found, _ := s.Heads(ctx, keys); found[0] || found[1] {
			t.Fatalf("a refused command wrote: %v", found)
		}
	}
}
