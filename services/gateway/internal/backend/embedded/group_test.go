package embedded

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

// incrFn is INCR of key as an Update callback.
func incrFn(key string) func(backend.Txn) error {
	return func(tx backend.Txn) error {
		v, ok, err := tx.Get(sk(key))
		if err != nil {
			return err
		}
		n := 0
		if ok {
			n, _ = strconv.Atoi(string(v.Data))
		}
		tx.Set(sk(key), backend.Value{Type: backend.TypeString, Data: []byte(strconv.Itoa(n + 1))})
		return nil
	}
}

func gincr(t *testing.T, s *Store, gctx context.Context, key string) {
	t.Helper()
	if err := s.Update(gctx, backend.WriteOptions{}, [][]byte{sk(key)}, incrFn(key)); err != nil {
		t.Fatal(err)
	}
}

func getIn(t *testing.T, s *Store, c context.Context, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(c, sk(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Data), ok
}

// A group's writes are visible to its own reads at once, to everyone else
// only after Sync, and survive a reopen.
func TestGroupWritesVisibleToItselfThenCommitted(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{}
	s, err := Open(Options{Dir: dir, Sync: SyncAlways, Now: clk.now, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	set(t, s, "old", "1", 0)
	g := s.Batch(ctx)
	setIn(t, s, g, "a", "x", 0)
	for range 5 {
		gincr(t, s, g, "n")
	}
	gincr(t, s, g, "old")
	if v, ok := getIn(t, s, g, "a"); !ok || v != "x" {
		t.Fatalf("group reads a = %q %v", v, ok)
	}
	if v, _ := getIn(t, s, g, "n"); v != "5" {
		t.Fatalf("group reads n = %q, want 5", v)
	}
	vals, found, err := s.MultiGet(g, [][]byte{sk("a"), sk("old"), sk("none")})
	if err != nil || !found[0] || string(vals[0].Data) != "x" || string(vals[1].Data) != "2" || found[2] {
		t.Fatalf("group MultiGet = %v %v %v", vals, found, err)
	}
	// Outside the group nothing is written yet.
	if _, ok := getIn(t, s, ctx, "a"); ok {
		t.Fatal("a visible outside the group before Sync")
	}
	if v, _ := getIn(t, s, ctx, "old"); v != "1" {
		t.Fatalf("old = %q outside the group before Sync, want 1", v)
	}
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if v, _ := getIn(t, s, ctx, "n"); v != "5" {
		t.Fatalf("n = %q after Sync, want 5", v)
	}
	if st := stats(t, s); st.Keys != 3 {
		t.Fatalf("keys = %d, want 3", st.Keys)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openTest(t, dir, clk)
	for k, want := range map[string]string{"a": "x", "n": "5", "old": "2"} {
		if v, ok := getIn(t, s, ctx, k); !ok || v != want {
			t.Fatalf("after reopen %s = %q %v, want %q", k, v, ok, want)
		}
	}
	if st := stats(t, s); st.Keys != 3 {
		t.Fatalf("keys after reopen = %d, want 3", st.Keys)
	}
}

// Counters and the expiry index come out the same whether writes are
// grouped or not.
func TestGroupKeepsCountersAndIndex(t *testing.T) {
	clk := &clock{}
	clk.advance(1000)
	s := openTest(t, t.TempDir(), clk)
	g := s.Batch(ctx)
	setIn(t, s, g, "a", "1", 5000)
	setIn(t, s, g, "a", "2", 6000) // new expiry: the old index entry goes
	setIn(t, s, g, "b", "1", 0)
	setIn(t, s, g, "c", "1", 7000)
	delIn(t, s, g, "c")
	// Stats needs the store's view: it commits the group first.
	if st, err := s.Stats(g, 0); err != nil || st.Keys != 2 || st.Expires != 1 {
		t.Fatalf("stats in group = %+v, want 2 keys, 1 expiring", st)
	}
	setIn(t, s, g, "d", "1", 0)
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Keys != 3 || st.Expires != 1 {
		t.Fatalf("stats = %+v, want 3 keys, 1 expiring", st)
	}
	if n := indexEntries(t, s); n != 1 {
		t.Fatalf("expiry index has %d entries, want 1", n)
	}
	clk.advance(10_000)
	if n, err := s.SweepExpired(); err != nil || n != 1 {
		t.Fatalf("swept %d, %v; want 1", n, err)
	}
}

// Scans and FLUSHALL see the group's writes: they commit it first.
func TestGroupScanAndFlushAll(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	g := s.Batch(ctx)
	setIn(t, s, g, "k1", "v", 0)
	setIn(t, s, g, "k2", "v", 0)
	var seen []string
	if _, err := s.Scan(g, backend.ScanOptions{}, func(ki backend.KeyInfo) bool {
		seen = append(seen, string(keyspace.UserKey(ki.Key)))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(seen) != "[k1 k2]" {
		t.Fatalf("scan in group saw %v", seen)
	}
	setIn(t, s, g, "k3", "v", 0)
	if err := s.FlushAll(g); err != nil {
		t.Fatal(err)
	}
	setIn(t, s, g, "after", "v", 0)
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Keys != 1 {
		t.Fatalf("keys = %d after FLUSHALL and one SET, want 1", st.Keys)
	}
	if _, ok := getIn(t, s, ctx, "k3"); ok {
		t.Fatal("k3 survived FLUSHALL")
	}
}

// Other writers wait while a group holds writes, and go on after its Sync;
// Close while a group holds writes deadlocks no one.
func TestGroupExcludesOtherWriters(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	g := s.Batch(ctx)
	gincr(t, s, g, "n")
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Without exclusion this would read n before the group's write and
		// overwrite it with 1.
		err := s.Update(ctx, backend.WriteOptions{}, [][]byte{sk("n")}, incrFn("n"))
		if err != nil {
			t.Error(err)
		}
	}()
	select {
	case <-done:
		t.Fatal("a writer ran while the group held writes")
	case <-time.After(100 * time.Millisecond):
	}
	gincr(t, s, g, "n")
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	<-done
	if v, _ := getIn(t, s, ctx, "n"); v != "3" {
		t.Fatalf("n = %q, want 3", v)
	}

	// A group still holding writes at Close: the waiting sweeper is let go
	// by the group's Sync, which reports ErrClosed.
	gincr(t, s, g, "n")
	swept := make(chan error, 1)
	go func() { _, err := s.SweepExpired(); swept <- err }()
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(50 * time.Millisecond)
	if err := s.Sync(g); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Sync after Close = %v, want ErrClosed", err)
	}
	for _, ch := range []chan error{swept, closed} {
		select {
		case err := <-ch:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("deadlock: Close or a waiting writer never returned")
		}
	}
}

// A command that fails writes nothing into the group.
func TestGroupUpdateErrorWritesNothing(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	g := s.Batch(ctx)
	boom := errors.New("boom")
	err := s.Update(g, backend.WriteOptions{}, [][]byte{sk("k")}, func(tx backend.Txn) error {
		tx.Set(sk("k"), backend.Value{Type: backend.TypeString, Data: []byte("v")})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	if _, ok := getIn(t, s, g, "k"); ok {
		t.Fatal("failed command's write visible in the group")
	}
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Keys != 0 {
		t.Fatalf("keys = %d, want 0", st.Keys)
	}
}

// Only each key's final state reaches the store: a key created and deleted
// within one group leaves no trace, and a key rewritten many times leaves
// one index entry and exact counters.
func TestGroupWritesFinalStateOnly(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	set(t, s, "kept", "v", 9000)
	g := s.Batch(ctx)
	setIn(t, s, g, "tmp", "v", 5000)
	delIn(t, s, g, "tmp")
	for i := range 100 {
		setIn(t, s, g, "hot", strconv.Itoa(i), int64(10_000+i))
		setIn(t, s, g, "kept", strconv.Itoa(i), 9000)
	}
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Keys != 2 || st.Expires != 2 {
		t.Fatalf("stats = %+v, want 2 keys, 2 expiring", st)
	}
	if n := indexEntries(t, s); n != 2 {
		t.Fatalf("expiry index has %d entries, want 2", n)
	}
	if v, _ := getIn(t, s, ctx, "hot"); v != "99" {
		t.Fatalf("hot = %q, want 99", v)
	}
	if _, ok := getIn(t, s, ctx, "tmp"); ok {
		t.Fatal("tmp exists")
	}
}

// Reads under a group fill the key cache (the group excludes writers, so
// what it read is the committed state), absent keys included.
func TestGroupReadsFillCache(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	set(t, s, "k", "v", 0)
	s.cache.clear()
	g := s.Batch(ctx)
	if v, ok := getIn(t, s, g, "k"); !ok || v != "v" {
		t.Fatalf("k = %q %v", v, ok)
	}
	if _, ok := getIn(t, s, g, "absent"); ok {
		t.Fatal("absent found")
	}
	if err := s.Sync(g); err != nil {
		t.Fatal(err)
	}
	if e, ok := cached(s, "k"); !ok || !e.found || string(e.v.Data) != "v" {
		t.Fatalf("k not cached after a group read: %+v %v", e, ok)
	}
	if e, ok := cached(s, "absent"); !ok || e.found {
		t.Fatalf("absence of a key not cached: %+v %v", e, ok)
	}
	// A write outside the group replaces the cached state.
	set(t, s, "k", "w", 0)
	if v, _ := getIn(t, s, ctx, "k"); v != "w" {
		t.Fatalf("k = %q after a write, want w", v)
	}
}
