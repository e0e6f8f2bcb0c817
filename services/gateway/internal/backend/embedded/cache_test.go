package embedded

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

func mustGet(t *testing.T, s *Store, key string) (string, bool) {
	t.Helper()
	v, ok, err := s.Get(ctx, sk(key))
	if err != nil {
		t.Fatal(err)
	}
	return string(v.Data), ok
}

func cached(s *Store, key string) (*cacheEntry, bool) { return s.cache.lookup(sk(key)) }

// collidingKeys returns n distinct keys that share one cache slot.
func collidingKeys(s *Store, n int) []string {
	bySlot := map[uint64][]string{}
	for i := 0; ; i++ {
		k := "k" + strconv.Itoa(i)
		slot := s.cache.slotIndex(s.cache.seedHash(sk(k)))
		bySlot[slot] = append(bySlot[slot], k)
		if len(bySlot[slot]) == n {
			return bySlot[slot]
		}
	}
}

func TestCacheFollowsWritesDeletesExpiryAndFlush(t *testing.T) {
	clk := &clock{}
	clk.ms.Store(1000)
	s := openTest(t, t.TempDir(), clk)

	set(t, s, "k", "v1", 0)
	if e, ok := cached(s, "k"); !ok || !e.found || string(e.v.Data) != "v1" {
		t.Fatalf("after SET the cache holds %+v, %v", e, ok)
	}
	if v, ok := mustGet(t, s, "k"); !ok || v != "v1" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	set(t, s, "k", "v2", 0)
	if v, _ := mustGet(t, s, "k"); v != "v2" {
		t.Fatalf("Get after overwrite = %q", v)
	}

	del(t, s, "k")
	if e, ok := cached(s, "k"); !ok || e.found {
		t.Fatalf("after DEL the cache holds %+v, %v; want a cached absence", e, ok)
	}
	if _, ok := mustGet(t, s, "k"); ok {
		t.Fatal("deleted key still readable")
	}

	// An expiry is judged at read time, cached or not.
	set(t, s, "e", "x", 1500)
	if v, ok := mustGet(t, s, "e"); !ok || v != "x" {
		t.Fatalf("Get before expiry = %q, %v", v, ok)
	}
	clk.advance(500)
	if _, ok := mustGet(t, s, "e"); ok {
		t.Fatal("expired key readable through the cache")
	}
	if n, err := s.SweepExpired(); err != nil || n != 1 {
		t.Fatalf("SweepExpired = %d, %v", n, err)
	}
	if _, ok := cached(s, "e"); ok {
		t.Fatal("the sweep left the swept key cached")
	}
	if _, ok := mustGet(t, s, "e"); ok {
		t.Fatal("swept key readable")
	}

	set(t, s, "f", "y", 0)
	if err := s.FlushAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := cached(s, "f"); ok {
		t.Fatal("FLUSHALL left a key cached")
	}
	if _, ok := mustGet(t, s, "f"); ok {
		t.Fatal("flushed key readable")
	}
}

func TestCacheHandsOutCopies(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	set(t, s, "k", "value", 0)
	v, _, err := s.Get(ctx, sk("k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v.Data, "XXXXX")
	v2, _, err := s.AppendGet(ctx, make([]byte, 0, 64), sk("k"))
	if err != nil {
		t.Fatal(err)
	}
	copy(v2.Data, "YYYYY")
	err = s.Update(ctx, backend.WriteOptions{}, [][]byte{sk("k")}, func(tx backend.Txn) error {
		v, _, err := tx.Get(sk("k"))
		copy(v.Data, "ZZZZZ")
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := mustGet(t, s, "k"); got != "value" {
		t.Fatalf("a caller's change to a returned value leaked into the store: %q", got)
	}
	// Empty values stay non-nil, as from Pebble.
	set(t, s, "empty", "", 0)
	if v, ok, err := s.Get(ctx, sk("empty")); err != nil || !ok || v.Data == nil {
		t.Fatalf("empty value = %#v, %v, %v", v.Data, ok, err)
	}
}

func TestCacheSkipsLargeValues(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	big := strings.Repeat("b", cacheMaxEntry)
	set(t, s, "k", "small", 0)
	set(t, s, "k", big, 0)
	if _, ok := cached(s, "k"); ok {
		t.Fatal("a value over cacheMaxEntry was cached (or the old one left)")
	}
	if v, ok := mustGet(t, s, "k"); !ok || v != big {
		t.Fatalf("large value read back wrong (len %d, %v)", len(v), ok)
	}
	set(t, s, "k", "small again", 0)
	if v, _ := mustGet(t, s, "k"); v != "small again" {
		t.Fatalf("Get = %q", v)
	}
}

// TestCacheStaysWithinBytes fills a small key cache with many more keys than
// it holds, small and large: it never takes more than its bytes, a value
// it cannot hold is read from Pebble, and room freed by deletes is used.
func TestCacheStaysWithinBytes(t *testing.T) {
	const limit = 100 * KeyCacheEntryBytes
	s, err := Open(Options{Dir: t.TempDir(), Sync: SyncNo, KeyCacheBytes: limit, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if n := len(s.cache.slots); n != 100 {
		t.Fatalf("%d bytes gave %d slots, want 100", limit, n)
	}
	check := func(when string) {
		t.Helper()
		if b := s.cache.bytes(); b > limit {
			t.Fatalf("%s: the cache takes %d bytes, over its %d", when, b, limit)
		}
	}
	big := strings.Repeat("b", cacheMaxEntry-10)
	set(t, s, "big", big, 0)
	if e, ok := cached(s, "big"); !ok || string(e.v.Data) != big {
		t.Fatal("a large value was not cached in an empty cache")
	}
	for i := range 2000 {
		set(t, s, fmt.Sprintf("small%d", i), "v", 0)
	}
	check("after 2000 small keys")
	full := s.cache.bytes()
	if full < limit/2 {
		t.Fatalf("after 2000 small keys the cache takes only %d of %d bytes", full, limit)
	}
	for i := range 2000 {
		set(t, s, fmt.Sprintf("big%d", i), big, 0)
	}
	check("after 2000 large keys")
	for i := 0; i < 2000; i += 97 {
		if v, ok := mustGet(t, s, fmt.Sprintf("big%d", i)); !ok || v != big {
			t.Fatalf("big%d read back wrong (len %d, %v)", i, len(v), ok)
		}
		if v, ok := mustGet(t, s, fmt.Sprintf("small%d", i)); !ok || v != "v" {
			t.Fatalf("small%d = %q, %v", i, v, ok)
		}
	}
	// Deleting every key leaves cached absences; a full cache still takes
	// small entries, in place of others.
	for i := range 2000 {
		del(t, s, fmt.Sprintf("small%d", i))
		del(t, s, fmt.Sprintf("big%d", i))
	}
	check("after the deletes")
	set(t, s, "last", "v", 0)
	if e, ok := cached(s, "last"); !ok || string(e.v.Data) != "v" {
		t.Fatalf("a small value was not cached in a full cache (%d of %d bytes used)", s.cache.bytes(), limit)
	}
	check("at the end")
}

func TestCacheSlotCollisions(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	keys := collidingKeys(s, 3)
	for round := 0; round < 5; round++ {
		for i, k := range keys {
			set(t, s, k, fmt.Sprintf("%s=%d.%d", k, round, i), 0)
		}
		for i, k := range keys {
			if v, ok := mustGet(t, s, k); !ok || v != fmt.Sprintf("%s=%d.%d", k, round, i) {
				t.Fatalf("round %d: Get(%s) = %q, %v", round, k, v, ok)
			}
		}
		del(t, s, keys[round%len(keys)])
		if _, ok := mustGet(t, s, keys[round%len(keys)]); ok {
			t.Fatalf("round %d: deleted %s readable", round, keys[round%len(keys)])
		}
	}
}

// TestCacheReadsNeverGoBack runs read-modify-write counters against readers on
// keys that share cache slots: once an increment is acknowledged, no read that
// starts afterwards may return an older value, whether it is served by the cache,
// by Pebble, or inside a write.
func TestCacheReadsNeverGoBack(t *testing.T) {
	s := openTest(t, t.TempDir(), &clock{})
	keys := collidingKeys(s, 4)
	acked := make([]atomic.Int64, len(keys))
	const writers, readers, increments = 4, 4, 300

	incr := func(i int) (int64, error) {
		k := []byte(keys[i])
		var n int64
		err := s.Update(ctx, backend.WriteOptions{}, [][]byte{k}, func(tx backend.Txn) error {
			v, ok, err := tx.Get(k)
			if err != nil {
				return err
			}
			n = 0
			if ok {
				if n, err = strconv.ParseInt(string(v.Data), 10, 64); err != nil {
					return err
				}
			}
			n++
			tx.Set(k, backend.Value{Type: backend.TypeString, Data: []byte(strconv.FormatInt(n, 10))})
			return nil
		})
		return n, err
	}
	read := func(i int, dst []byte) (int64, error) {
		v, ok, err := s.AppendGet(ctx, dst, []byte(keys[i]))
		if err != nil || !ok {
			return 0, err
		}
		return strconv.ParseInt(string(v.Data), 10, 64)
	}

	var writersWG, readersWG sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, writers+readers)
	for w := 0; w < writers; w++ {
		writersWG.Add(1)
		go func(w int) {
			defer writersWG.Done()
			for j := 0; j < increments; j++ {
				i := (w + j) % len(keys)
				n, err := incr(i)
				if err != nil {
					errs <- err
					return
				}
				for {
					cur := acked[i].Load()
					if n <= cur || acked[i].CompareAndSwap(cur, n) {
						break
					}
				}
			}
		}(w)
	}
	for r := 0; r < readers; r++ {
		readersWG.Add(1)
		go func(r int) {
			defer readersWG.Done()
			buf := make([]byte, 0, 32)
			for j := 0; !done.Load(); j++ {
				i := (r + j) % len(keys)
				floor := acked[i].Load()
				n, err := read(i, buf)
				if err != nil {
					errs <- err
					return
				}
				if n < floor {
					errs <- fmt.Errorf("%s: read %d after %d was acknowledged", keys[i], n, floor)
					return
				}
			}
		}(r)
	}
	writersWG.Wait()
	done.Store(true)
	readersWG.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every increment landed exactly once.
	var total int64
	for i := range keys {
		n, err := read(i, nil)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		// Pebble agrees with the cache.
		v, ok, err := getStored(s.db, nil, []byte(keys[i]))
		if err != nil || !ok || !bytes.Equal(v.Data, []byte(strconv.FormatInt(n, 10))) {
			t.Fatalf("%s: Pebble holds %q, %v, %v; the cache %d", keys[i], v.Data, ok, err, n)
		}
	}
	if total != writers*increments {
		t.Fatalf("counters sum to %d, want %d", total, writers*increments)
	}
}
