package tso

import (
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/nokv/nokv/services/pd/internal/storage"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		// Pebble's background flush and compaction goroutines end
		// asynchronously after Close.
		goleak.IgnoreTopFunction("github.com/cockroachdb/pebble.(*DB).maybeScheduleFlush.func1"),
	)
}

// fakeClock is an injected wall clock moved by the test.
type fakeClock struct{ ms atomic.Int64 }

func newFakeClock(ms int64) *fakeClock {
	c := &fakeClock{}
	c.ms.Store(ms)
	return c
}

func (c *fakeClock) Now() time.Time     { return time.UnixMilli(c.ms.Load()) }
func (c *fakeClock) Set(ms int64)       { c.ms.Store(ms) }
func (c *fakeClock) Advance(ms int64)   { c.ms.Add(ms) }
func (c *fakeClock) Millis() (ms int64) { return c.ms.Load() }

// base is an arbitrary fixed Unix-ms instant for fake clocks.
const base = int64(1_750_000_000_000)

func openStorage(t testing.TB, dir string) *storage.Storage {
	t.Helper()
	st, err := storage.Open(dir, nil)
	if err != nil {
		t.Fatalf("open storage: %v", err)
	}
	return st
}

// newOracle opens dir and an Oracle on it; both are closed at cleanup.
func newOracle(t testing.TB, dir string, opts Options) (*Oracle, *storage.Storage) {
	t.Helper()
	st := openStorage(t, dir)
	o, err := New(st, opts)
	if err != nil {
		st.Close()
		t.Fatalf("new oracle: %v", err)
	}
	t.Cleanup(func() {
		o.Close()
		st.Close()
	})
	return o, st
}

func mark(t testing.TB, st *storage.Storage) int64 {
	t.Helper()
	v, err := st.GetUint64(storage.KeyTSOHighWater)
	if err != nil {
		t.Fatalf("read mark: %v", err)
	}
	return int64(v)
}

func mustGet(t testing.TB, o *Oracle, count uint32) uint64 {
	t.Helper()
	ts, err := o.Get(count)
	if err != nil {
		t.Fatalf("Get(%d): %v", count, err)
	}
	return ts
}

func TestCompose(t *testing.T) {
	tests := []struct {
		phys    int64
		logical uint32
		want    uint64
	}{
		{0, 0, 0},
		{0, 1, 1},
		{1, 0, 1 << 18},
		{base, 5, uint64(base)<<18 | 5},
		{maxPhysical, MaxCount - 1, ^uint64(0)},
	}
	for _, tt := range tests {
		ts := Compose(tt.phys, tt.logical)
		if ts != tt.want {
			t.Errorf("Compose(%d, %d) = %d, want %d", tt.phys, tt.logical, ts, tt.want)
		}
		if Physical(ts) != tt.phys || Logical(ts) != tt.logical {
			t.Errorf("Physical/Logical(%d) = %d/%d, want %d/%d", ts, Physical(ts), Logical(ts), tt.phys, tt.logical)
		}
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	st := openStorage(t, t.TempDir())
	defer st.Close()
	if _, err := New(st, Options{Window: time.Microsecond}); !errors.Is(err, ErrInvalidOptions) {
		t.Fatalf("New with 1µs window: err = %v, want ErrInvalidOptions", err)
	}
}

func TestGetCount(t *testing.T) {
	clk := newFakeClock(base)
	o, _ := newOracle(t, t.TempDir(), Options{Now: clk.Now})
	for _, c := range []uint32{0, MaxCount + 1} {
		if _, err := o.Get(c); !errors.Is(err, ErrInvalidCount) {
			t.Errorf("Get(%d): err = %v, want ErrInvalidCount", c, err)
		}
	}
	first := mustGet(t, o, 10)
	if Physical(first) != base || Logical(first) != 0 {
		t.Fatalf("first = %d/%d, want %d/0", Physical(first), Logical(first), base)
	}
	if next := mustGet(t, o, 1); next != first+10 {
		t.Fatalf("next = %d, want first+10 = %d", next, first+10)
	}
	clk.Advance(1)
	if next := mustGet(t, o, 1); next != Compose(base+1, 0) {
		t.Fatalf("after a ms: %d/%d, want %d/0", Physical(next), Logical(next), base+1)
	}
}

func TestGetAfterClose(t *testing.T) {
	o, _ := newOracle(t, t.TempDir(), Options{})
	o.Close()
	o.Close() // idempotent
	if _, err := o.Get(1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: err = %v, want ErrClosed", err)
	}
}

// TestCloseWhileWaitingToExtend: a Get that waits for the mark to be
// extended while Close comes must not write a new mark afterwards: Close
// means the leadership it served is over, and a late write would run
// without it (on a PD member cut off from the others, it waited out the
// storage's request timeout while the clients stayed on its stream).
func TestCloseWhileWaitingToExtend(t *testing.T) {
	clock := newFakeClock(base)
	o, st := newOracle(t, t.TempDir(), Options{Window: time.Second, Now: clock.Now})
	before := mark(t, st)
	clock.Set(before + 10) // past the mark (ms): the next Get must extend it

	o.saveMu.Lock() // as the saver does while it persists
	got := make(chan error, 1)
	go func() {
		_, err := o.Get(1)
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // let Get reach extend
	o.Close()
	o.saveMu.Unlock()
	if err := <-got; !errors.Is(err, ErrClosed) {
		t.Fatalf("Get across Close: err = %v, want ErrClosed", err)
	}
	if after := mark(t, st); after != before {
		t.Fatalf("the mark moved from %d to %d after Close", before, after)
	}
}

// TestConcurrentUnique: 64 goroutines with a real clock and a tiny window (so
// the mark is extended all the time) get disjoint, per-goroutine increasing
// blocks.
func TestConcurrentUnique(t *testing.T) {
	o, _ := newOracle(t, t.TempDir(), Options{Window: 2 * time.Millisecond})
	const workers, perWorker = 64, 500
	type block struct{ first, count uint64 }
	blocks := make([][]block, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var last uint64
			for i := range perWorker {
				count := uint32(i%50 + 1)
				first, err := o.Get(count)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				if first <= last {
					t.Errorf("worker %d: %d after %d", w, first, last)
				}
				if Logical(first)+count > MaxCount {
					t.Errorf("block %d+%d crosses a millisecond", first, count)
				}
				last = first + uint64(count) - 1
				blocks[w] = append(blocks[w], block{first, uint64(count)})
			}
		})
	}
	wg.Wait()
	all := slices.Concat(blocks...)
	slices.SortFunc(all, func(a, b block) int {
		switch {
		case a.first < b.first:
			return -1
		case a.first > b.first:
			return 1
		}
		return 0
	})
	for i := 1; i < len(all); i++ {
		if prev := all[i-1]; prev.first+prev.count > all[i].first {
			t.Fatalf("blocks overlap: [%d,+%d) and [%d,+%d)", prev.first, prev.count, all[i].first, all[i].count)
		}
	}
}

// TestNeverReachesMark: whatever the clock does, no timestamp is issued with a
// physical part at or above the mark that was durable when it was issued.
func TestNeverReachesMark(t *testing.T) {
	clk := newFakeClock(base)
	o, st := newOracle(t, t.TempDir(), Options{Window: 10 * time.Millisecond, Now: clk.Now})
	steps := []int64{1, 1, 3, 0, 0, 7, 20, -50, 0, 1000, 4, -3, 9, 9, 9}
	var last uint64
	for round := range 20 {
		for _, d := range steps {
			clk.Advance(d)
			for _, c := range []uint32{1, 1000, MaxCount} {
				ts := mustGet(t, o, c)
				if ts <= last {
					t.Fatalf("round %d: %d after %d", round, ts, last)
				}
				last = ts + uint64(c) - 1
				if m := mark(t, st); Physical(ts) >= m {
					t.Fatalf("issued physical %d >= persisted mark %d", Physical(ts), m)
				}
			}
		}
	}
}

func TestClockBackwards(t *testing.T) {
	clk := newFakeClock(base)
	o, _ := newOracle(t, t.TempDir(), Options{Now: clk.Now})
	before := mustGet(t, o, 1)
	clk.Set(base - int64(time.Hour/time.Millisecond))
	after := mustGet(t, o, 1)
	if after <= before {
		t.Fatalf("clock went back: %d after %d", after, before)
	}
	if Physical(after) != base {
		t.Fatalf("physical = %d, want to stay at %d", Physical(after), base)
	}
}

func TestLogicalOverflow(t *testing.T) {
	clk := newFakeClock(base) // frozen
	o, st := newOracle(t, t.TempDir(), Options{Window: 5 * time.Millisecond, Now: clk.Now})
	first := mustGet(t, o, MaxCount-1)
	if Physical(first) != base || Logical(first) != 0 {
		t.Fatalf("first = %d/%d", Physical(first), Logical(first))
	}
	last := mustGet(t, o, 1)
	if last != Compose(base, MaxCount-1) {
		t.Fatalf("last of the ms = %d/%d", Physical(last), Logical(last))
	}
	// The millisecond is used up: the next block starts the next one.
	next := mustGet(t, o, 2)
	if next != Compose(base+1, 0) {
		t.Fatalf("after overflow = %d/%d, want %d/0", Physical(next), Logical(next), base+1)
	}
	// A block that does not fit in what is left moves on too.
	next = mustGet(t, o, MaxCount-1)
	if next != Compose(base+2, 0) {
		t.Fatalf("big block = %d/%d, want %d/0", Physical(next), Logical(next), base+2)
	}
	// Running far ahead of the frozen clock crosses the window repeatedly.
	for i := range int64(100) {
		ts := mustGet(t, o, MaxCount)
		if ts != Compose(base+3+i, 0) {
			t.Fatalf("full block %d = %d/%d", i, Physical(ts), Logical(ts))
		}
	}
	if m := mark(t, st); m <= base+102 {
		t.Fatalf("mark %d not beyond issued physical %d", m, base+102)
	}
}

// TestRestart: after a clean restart with the clock set an hour back, the
// first timestamp is still above everything issued before.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock(base)
	var max uint64
	for run := range 3 {
		st := openStorage(t, dir)
		o, err := New(st, Options{Window: 50 * time.Millisecond, Now: clk.Now})
		if err != nil {
			t.Fatalf("run %d: new: %v", run, err)
		}
		ts := mustGet(t, o, 1)
		if ts <= max {
			t.Fatalf("run %d: first ts %d <= previous max %d", run, ts, max)
		}
		for range 100 {
			clk.Advance(3)
			max = mustGet(t, o, 100) + 99
		}
		o.Close()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
		clk.Set(base - int64(run+1)*3600_000)
	}
}
