package embedded

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble"

	"github.com/nokv/nokv/services/gateway/internal/backend"
	"github.com/nokv/nokv/services/gateway/internal/keyspace"
)

var ctx = context.Background()

// clock is a manual clock in Unix milliseconds.
type clock struct{ ms atomic.Int64 }

func (c *clock) now() int64          { return c.ms.Load() }
func (c *clock) advance(delta int64) { c.ms.Add(delta) }

func openTest(t *testing.T, dir string, clk *clock) *Store {
	t.Helper()
	s, err := Open(Options{Dir: dir, Sync: SyncNo, Now: clk.now, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func set(t *testing.T, s *Store, key string, val string, expiresAt int64) {
	t.Helper()
	setIn(t, s, ctx, key, val, expiresAt)
}

func del(t *testing.T, s *Store, key string) {
	t.Helper()
	delIn(t, s, ctx, key)
}

// setIn and delIn are set and del under c (plain, or a group's).
func setIn(t *testing.T, s *Store, c context.Context, key string, val string, expiresAt int64) {
	t.Helper()
	err := s.Update(c, backend.WriteOptions{}, [][]byte{sk(key)}, func(tx backend.Txn) error {
		tx.Set(sk(key), backend.Value{Type: backend.TypeString, Data: []byte(val), ExpiresAt: expiresAt})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func delIn(t *testing.T, s *Store, c context.Context, key string) {
	t.Helper()
	err := s.Update(c, backend.WriteOptions{}, [][]byte{sk(key)}, func(tx backend.Txn) error {
		tx.Delete(sk(key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func stats(t *testing.T, s *Store) backend.Stats {
	t.Helper()
	st, err := s.Stats(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// indexEntries counts expiry index entries, to prove the index holds no junk.
func indexEntries(t *testing.T, s *Store) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{familyExpiry}, UpperBound: []byte{familyExpiry + 1}})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	return n
}

func TestCountersAndIndexFollowWrites(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1_000_000)
	s := openTest(t, t.TempDir(), clk)
	set(t, s, "a", "1", 0)
	set(t, s, "b", "2", 2_000_000)
	set(t, s, "c", "3", 3_000_000)
	if st := stats(t, s); st != (backend.Stats{Keys: 3, Expires: 2}) {
		t.Fatalf("stats = %+v", st)
	}
	if n := indexEntries(t, s); n != 2 {
		t.Fatalf("index entries = %d, want 2", n)
	}
	set(t, s, "b", "2", 2_500_000) // new deadline replaces the old index entry
	set(t, s, "c", "3", 0)         // persist removes it
	set(t, s, "a", "1", 0)         // overwrite without TTL: no index entry
	if st := stats(t, s); st != (backend.Stats{Keys: 3, Expires: 1}) {
		t.Fatalf("stats after overwrites = %+v", st)
	}
	if n := indexEntries(t, s); n != 1 {
		t.Fatalf("index entries after overwrites = %d, want 1", n)
	}
	del(t, s, "b")
	del(t, s, "nokey")
	if st := stats(t, s); st != (backend.Stats{Keys: 2, Expires: 0}) {
		t.Fatalf("stats after delete = %+v", st)
	}
	if n := indexEntries(t, s); n != 0 {
		t.Fatalf("index entries after delete = %d, want 0", n)
	}
}

func TestExpiryIsInvisibleThenSwept(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1_000_000)
	s := openTest(t, t.TempDir(), clk)
	for i := 0; i < 1200; i++ { // more than one sweep batch
		set(t, s, fmt.Sprintf("k%04d", i), "v", 1_000_100)
	}
	set(t, s, "live", "v", 0)
	set(t, s, "later", "v", 1_000_101)
	clk.advance(99)
	if _, ok, _ := s.Get(ctx, sk("k0000")); !ok {
		t.Fatal("key invisible 1ms before its deadline")
	}
	clk.advance(1) // now == deadline: expired, as in Redis
	if _, ok, _ := s.Get(ctx, sk("k0000")); ok {
		t.Fatal("key visible at its deadline")
	}
	vals, found, err := s.MultiGet(ctx, [][]byte{sk("k0001"), sk("later")})
	if err != nil || found[0] || !found[1] || string(vals[1].Data) != "v" {
		t.Fatalf("MultiGet = %v %v %v", vals, found, err)
	}
	var scanned []string
	if _, err := s.Scan(ctx, backend.ScanOptions{}, func(ki backend.KeyInfo) bool {
		scanned = append(scanned, string(ki.Key))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(scanned) != 2 {
		t.Fatalf("Scan saw %d keys (%v...), want the 2 live ones", len(scanned), scanned[:min(3, len(scanned))])
	}
	// DBSIZE counts unswept keys until the sweeper runs, like Redis.
	if st := stats(t, s); st.Keys != 1202 {
		t.Fatalf("keys before sweep = %d", st.Keys)
	}
	total := 0
	for {
		n, err := s.SweepExpired()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		total += n
	}
	if total != 1200 || s.ExpiredKeys() != 1200 {
		t.Fatalf("swept %d (ExpiredKeys %d), want 1200", total, s.ExpiredKeys())
	}
	if st := stats(t, s); st != (backend.Stats{Keys: 2, Expires: 1}) {
		t.Fatalf("stats after sweep = %+v", st)
	}
	if n := indexEntries(t, s); n != 1 {
		t.Fatalf("index entries after sweep = %d, want 1", n)
	}
}

func TestSweepSparesRevivedKey(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1000)
	s := openTest(t, t.TempDir(), clk)
	set(t, s, "k", "old", 1100)
	clk.advance(200)
	set(t, s, "k", "new", 0) // revived without TTL after expiring
	if n, err := s.SweepExpired(); err != nil || n != 0 {
		t.Fatalf("sweep deleted %d (%v), want 0", n, err)
	}
	if v, ok, _ := s.Get(ctx, sk("k")); !ok || string(v.Data) != "new" {
		t.Fatalf("revived key lost: %q %v", v.Data, ok)
	}
	if st := stats(t, s); st != (backend.Stats{Keys: 1}) {
		t.Fatalf("stats = %+v", st)
	}
}

func TestReopenKeepsDataAndCounters(t *testing.T) {
	dir := t.TempDir()
	clk := &clock{}
	clk.ms.Store(1000)
	s, err := Open(Options{Dir: dir, Sync: SyncAlways, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	set(t, s, "a", "1", 0)
	set(t, s, "b", "2", 5000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Get(ctx, sk("a")); !errors.Is(err, backend.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	s = openTest(t, dir, clk)
	if v, ok, _ := s.Get(ctx, sk("b")); !ok || string(v.Data) != "2" || v.ExpiresAt != 5000 {
		t.Fatalf("b after reopen = %+v %v", v, ok)
	}
	if st := stats(t, s); st != (backend.Stats{Keys: 2, Expires: 1}) {
		t.Fatalf("stats after reopen = %+v", st)
	}
}

func TestUpdateErrorWritesNothing(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	boom := errors.New("boom")
	err := s.Update(ctx, backend.WriteOptions{}, [][]byte{sk("a")}, func(tx backend.Txn) error {
		tx.Set(sk("a"), backend.Value{Type: backend.TypeString, Data: []byte("x")})
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update error = %v", err)
	}
	if _, ok, _ := s.Get(ctx, sk("a")); ok {
		t.Fatal("failed Update left a write behind")
	}
}

// TestFlushAllUnderConcurrentWrites checks that the key counter stays exact when
// FLUSHALL races with writers.
func TestFlushAllUnderConcurrentWrites(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := sk(fmt.Sprintf("w%d:%d", w, i%50))
				_ = s.Update(ctx, backend.WriteOptions{}, [][]byte{k}, func(tx backend.Txn) error {
					if i%3 == 0 {
						tx.Delete(k)
					} else {
						tx.Set(k, backend.Value{Type: backend.TypeString, Data: k, ExpiresAt: int64(i % 2 * 1 << 40)})
					}
					return nil
				})
			}
		}()
	}
	for i := 0; i < 20; i++ {
		if err := s.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	keys, expires := 0, 0
	if _, err := s.Scan(ctx, backend.ScanOptions{}, func(ki backend.KeyInfo) bool {
		keys++
		if ki.Value.ExpiresAt != 0 {
			expires++
		}
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if st := stats(t, s); st.Keys != int64(keys) || st.Expires != int64(expires) {
		t.Fatalf("counters %+v, actual keys=%d expires=%d", st, keys, expires)
	}
	if n := indexEntries(t, s); n != expires {
		t.Fatalf("index entries %d, keys with expiry %d", n, expires)
	}
}

func TestScanResumesAndBoundsByPrefix(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	for _, k := range []string{"a", "b1", "b2", "b3", "c"} {
		set(t, s, k, k, 0)
	}
	var got []string
	next, err := s.Scan(ctx, backend.ScanOptions{Prefix: sk("b"), Start: nil, Limit: 2}, func(ki backend.KeyInfo) bool {
		got = append(got, string(keyspace.UserKey(ki.Key)))
		return true
	})
	if err != nil || string(next) != "\x00\x00\x00\x00b3" || len(got) != 2 {
		t.Fatalf("first page %v next %q %v", got, next, err)
	}
	next, err = s.Scan(ctx, backend.ScanOptions{Prefix: sk("b"), Start: next, Limit: 2}, func(ki backend.KeyInfo) bool {
		got = append(got, string(keyspace.UserKey(ki.Key)))
		return true
	})
	if err != nil || next != nil || fmt.Sprint(got) != "[b1 b2 b3]" {
		t.Fatalf("second page %v next %q %v", got, next, err)
	}
}

func TestParseSyncPolicy(t *testing.T) {
	for _, p := range []string{"always", "everysec", "no"} {
		if _, err := ParseSyncPolicy(p); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Fatal("accepted a bogus policy")
	}
}

// sk is s in database 0, as the command layer stores it.
func sk(s string) []byte { return keyspace.Key(0, []byte(s)) }
