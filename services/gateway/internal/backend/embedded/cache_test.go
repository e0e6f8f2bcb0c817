package embedded

import (
	"bytes"
	"fmt"
	"runtime"
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

func cached(s *Store, key string) (stored, bool) { return s.cache.get(sk(key), nil) }

// collidingKeys returns n distinct keys that share one bucket of the key
// cache's index (as it is now: the index grows as keys are added).
func collidingKeys(s *Store, n int) []string {
	type where struct {
		sh *cacheShard
		b  int
	}
	byBucket := map[where][]string{}
	for i := 0; ; i++ {
		k := "k" + strconv.Itoa(i)
		h := s.cache.hash(sk(k))
		sh := s.cache.shard(h)
		w := where{sh, sh.bucket(h)}
		byBucket[w] = append(byBucket[w], k)
		if len(byBucket[w]) == n {
			return byBucket[w]
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
// it holds, small and large: it never maps more than its bytes, the keys
// written last are the ones it holds, and every key reads back right.
func TestCacheStaysWithinBytes(t *testing.T) {
	const limit = 1 << 20
	s, err := Open(Options{Dir: t.TempDir(), Sync: SyncNo, KeyCacheBytes: limit, SweepInterval: 1 << 62})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	check := func(when string) {
		t.Helper()
		if b := s.cache.bytes(); b > limit {
			t.Fatalf("%s: the cache takes %d bytes, over its %d", when, b, limit)
		}
		if m := s.cache.mapped(); m > limit {
			t.Fatalf("%s: the cache maps %d bytes, over its %d", when, m, limit)
		}
	}
	check("empty")
	big := strings.Repeat("b", cacheMaxEntry-10)
	set(t, s, "big", big, 0)
	if e, ok := cached(s, "big"); !ok || string(e.v.Data) != big {
		t.Fatal("a large value was not cached in an empty cache")
	}
	const small = 40000 // ~25 bytes each: more than the ring holds
	for i := range small {
		set(t, s, fmt.Sprintf("small%06d", i), "v", 0)
	}
	check("after the small keys")
	if b := s.cache.bytes(); b < limit/2 {
		t.Fatalf("after %d small keys the cache takes only %d of %d bytes", small, b, limit)
	}
	if n := s.cache.entries(); n < small/4 || n >= small {
		t.Fatalf("the cache holds %d of %d small keys", n, small)
	}
	if _, ok := cached(s, "small000000"); ok {
		t.Fatal("the first small key is still cached after the ring wrapped")
	}
	if e, ok := cached(s, fmt.Sprintf("small%06d", small-1)); !ok || string(e.v.Data) != "v" {
		t.Fatal("the last small key is not cached")
	}
	for i := range 2000 {
		set(t, s, fmt.Sprintf("big%d", i), big, 0)
	}
	check("after 2000 large keys")
	for i := 0; i < 2000; i += 97 {
		if v, ok := mustGet(t, s, fmt.Sprintf("big%d", i)); !ok || v != big {
			t.Fatalf("big%d read back wrong (len %d, %v)", i, len(v), ok)
		}
		if v, ok := mustGet(t, s, fmt.Sprintf("small%06d", i)); !ok || v != "v" {
			t.Fatalf("small%d = %q, %v", i, v, ok)
		}
	}
	for i := range 2000 {
		del(t, s, fmt.Sprintf("small%06d", i))
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
	// More keys than a bucket has slots: each write pushes out another.
	keys := collidingKeys(s, 2*cacheBucketSlots-3)
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
		k := sk(keys[i])
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
		v, ok, err := s.AppendGet(ctx, dst, sk(keys[i]))
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
		v, ok, err := getStored(s.db, nil, sk(keys[i]))
		if err != nil || !ok || !bytes.Equal(v.Data, []byte(strconv.FormatInt(n, 10))) {
			t.Fatalf("%s: Pebble holds %q, %v, %v; the cache %d", keys[i], v.Data, ok, err, n)
		}
	}
	if total != writers*increments {
		t.Fatalf("counters sum to %d, want %d", total, writers*increments)
	}
}

func newTestCache(t *testing.T, maxBytes int64) *cache {
	t.Helper()
	c, err := newCache(maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c
}

func strState(v string) stored {
	return stored{v: backend.Value{Type: backend.TypeString, Data: []byte(v)}, found: true}
}

// The cache alone: states round-trip with their type, expiry and absence,
// a key's newest state wins, and invalidate and clear drop entries.
func TestKeyCacheStates(t *testing.T) {
	c := newTestCache(t, 1<<20)
	c.put([]byte("a"), strState("1"))
	c.put([]byte("e"), stored{v: backend.Value{Type: backend.TypeHash, ExpiresAt: -1 << 62, Data: []byte("meta")}, found: true})
	c.put([]byte("gone"), stored{})
	c.put([]byte("empty"), strState(""))
	c.put([]byte("a"), strState("2"))
	if st, ok := c.get([]byte("a"), nil); !ok || string(st.v.Data) != "2" || st.v.Type != backend.TypeString || st.v.ExpiresAt != 0 {
		t.Fatalf("a = %+v, %v", st, ok)
	}
	if st, ok := c.get([]byte("e"), []byte("prefix")); !ok || string(st.v.Data) != "meta" || st.v.Type != backend.TypeHash || st.v.ExpiresAt != -1<<62 {
		t.Fatalf("e = %+v, %v", st, ok)
	}
	if h, found, ok := c.head([]byte("e")); !ok || !found || h.Len != 4 || h.Type != backend.TypeHash || h.ExpiresAt != -1<<62 {
		t.Fatalf("head(e) = %+v, %v, %v", h, found, ok)
	}
	if st, ok := c.get([]byte("gone"), nil); !ok || st.found {
		t.Fatalf("gone = %+v, %v; want a cached absence", st, ok)
	}
	if st, ok := c.get([]byte("empty"), nil); !ok || !st.found || st.v.Data == nil || len(st.v.Data) != 0 {
		t.Fatalf("empty = %#v, %v", st, ok)
	}
	if _, ok := c.get([]byte("never"), nil); ok {
		t.Fatal("a key never put is cached")
	}
	if n := c.entries(); n != 4 {
		t.Fatalf("%d entries, want 4 (one per key)", n)
	}
	c.invalidate([]byte("a"))
	c.invalidate([]byte("never"))
	if _, ok := c.get([]byte("a"), nil); ok {
		t.Fatal("invalidated key still cached")
	}
	c.put([]byte("big"), strState(strings.Repeat("x", cacheMaxEntry)))
	if _, ok := c.get([]byte("big"), nil); ok {
		t.Fatal("an entry over cacheMaxEntry was cached")
	}
	c.clear()
	if n := c.entries(); n != 0 {
		t.Fatalf("%d entries after clear", n)
	}
	c.put([]byte("a"), strState("3"))
	if st, ok := c.get([]byte("a"), nil); !ok || string(st.v.Data) != "3" {
		t.Fatalf("a after clear = %+v, %v", st, ok)
	}
}

// Eviction is FIFO by insertion: after many more keys than fit, the newest
// are all there, the oldest gone, and the cache maps no more than its bytes
// while its index has grown to its share.
func TestKeyCacheEvictsOldestWithinBytes(t *testing.T) {
	const limit = 4 << 20
	c := newTestCache(t, limit)
	key := func(i int) []byte { return []byte(fmt.Sprintf("key:%012d", i)) }
	const n = 400000 // ~25 bytes each: ~10 MB, over twice the cache
	for i := range n {
		c.put(key(i), strState("abc"))
		if i%50000 == 0 && c.mapped() > limit {
			t.Fatalf("after %d keys the cache maps %d bytes, over its %d", i, c.mapped(), limit)
		}
	}
	if m := c.mapped(); m > limit || m < limit*9/10 {
		t.Fatalf("the cache maps %d bytes, want just under %d", m, limit)
	}
	live := c.entries()
	if live < n/5 || live > n/2 {
		t.Fatalf("%d of %d keys live in %d bytes", live, n, limit)
	}
	// The newest tenth is all there (no window of 16 slots fills at the
	// index's load); the oldest tenth is all gone.
	for i := n - live/10; i < n; i++ {
		if st, ok := c.get(key(i), nil); !ok || string(st.v.Data) != "abc" {
			t.Fatalf("recent key %d not cached", i)
		}
	}
	for i := range n / 10 {
		if _, ok := c.get(key(i), nil); ok {
			t.Fatalf("old key %d still cached", i)
		}
	}
}

// The entries are not on the Go heap: a cache holding a million keys adds
// (almost) nothing for the garbage collector to mark.
func TestKeyCacheOffHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("fills 64 MB")
	}
	c := newTestCache(t, 64<<20)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	k := make([]byte, 0, 32)
	for i := range 1000000 {
		k = fmt.Appendf(k[:0], "key:%012d", i)
		c.put(k, strState("abc"))
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := c.entries(); n < 900000 {
		t.Fatalf("only %d of 1M keys cached in 64 MB", n)
	}
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 1<<20 {
		t.Fatalf("the Go heap grew by %d bytes for 1M cached keys", grown)
	}
}

// Concurrent use, as the store uses it: one writer per key (the latch
// holder) invalidates, then puts the next value; readers on every key
// must see either nothing or a value no older than the last one put
// before they looked, while other keys evict each other in small buckets.
func TestKeyCacheConcurrent(t *testing.T) {
	c := newTestCache(t, 1<<20)
	const writers, readers, keysPer, rounds = 4, 4, 64, 400
	acked := make([]atomic.Int64, writers*keysPer)
	key := func(i int) []byte { return []byte(fmt.Sprintf("key:%d", i)) }
	var wg sync.WaitGroup
	var done atomic.Bool
	errs := make(chan error, readers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := 1; r <= rounds; r++ {
				for j := range keysPer {
					i := w*keysPer + j
					c.invalidate(key(i))
					c.put(key(i), strState(strconv.Itoa(r)))
					acked[i].Store(int64(r))
				}
				// Filler pushes entries out of the ring and the buckets.
				c.put([]byte(fmt.Sprintf("filler:%d:%d", w, r)), strState(strings.Repeat("f", 400)))
			}
		}()
	}
	var rwg sync.WaitGroup
	for r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			buf := make([]byte, 0, 16)
			for j := r; !done.Load(); j++ {
				i := j % len(acked)
				floor := acked[i].Load()
				st, ok := c.get(key(i), buf)
				if !ok {
					continue
				}
				n, err := strconv.ParseInt(string(st.v.Data), 10, 64)
				if err != nil || n < floor {
					errs <- fmt.Errorf("key %d: read %q after %d was put", i, st.v.Data, floor)
					return
				}
			}
		}()
	}
	wg.Wait()
	done.Store(true)
	rwg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if m := c.mapped(); m > 1<<20 {
		t.Fatalf("the cache maps %d bytes, over its 1 MiB", m)
	}
}

// BenchmarkKeyCache measures a hit and a put on a cache holding 1M small
// keys, the per-request cost a GET or SET pays here instead of Pebble's.
func BenchmarkKeyCache(b *testing.B) {
	c, err := newCache(256 << 20)
	if err != nil {
		b.Fatal(err)
	}
	defer c.close()
	const n = 1 << 20
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("\x00\x00\x00\x00key:%012d", i))
		c.put(keys[i], strState("xxx"))
	}
	b.Run("get", func(b *testing.B) {
		dst := make([]byte, 0, 16)
		for i := 0; b.Loop(); i++ {
			if _, ok := c.get(keys[(i*7919)&(n-1)], dst); !ok {
				b.Fatal("miss")
			}
		}
	})
	b.Run("put", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			c.put(keys[(i*7919)&(n-1)], strState("yyy"))
		}
	})
}
