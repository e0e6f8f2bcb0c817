package embedded

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Cache geometry: a direct-mapped table of recently written or read keys, of
// Options.CacheKeys slots (DefaultCacheKeys), each holding at most one entry
// of at most cacheMaxEntry bytes of key and value.
const (
	// DefaultCacheKeys is the default Options.CacheKeys: 8 MiB of slots, and
	// about 150 MiB when every slot holds a small entry.
	DefaultCacheKeys = 1 << 20
	cacheMaxEntry    = 512
)

// cache remembers the committed state (value, expiry, or absence) of keys
// recently written or read, so that a GET and the read half of a write skip a
// Pebble lookup: a search of the memtable's skiplist and of the sstables,
// several cache misses that cost far more than the rest of a GET.
//
// It never holds a state that Pebble does not also show, by these rules:
//   - Only a writer holding the key's latch, or a group holding writeMu (which
//     excludes every other writer), stores an entry for it, and the entry is
//     the key's committed state (a Pebble read under the latch, or a write the
//     writer has just applied). No other writer can change the key meanwhile;
//     sweeps take the latches too and FlushAll excludes everyone.
//   - A writer removes the key's entry before its batch becomes visible, and puts
//     the new one only after. So a reader that finds an entry saw a state that was
//     current when it looked; one that finds none reads Pebble.
//
// Entries are immutable and published atomically, so readers take no lock.
type cache struct {
	seed  maphash.Seed
	slots []atomic.Pointer[cacheEntry]
	mask  uint64 // len(slots)-1; len(slots) is a power of two
	// gen is the generation of valid entries: clear bumps it, which drops
	// every entry at once (FLUSHDB, SWAPDB) instead of a store per slot.
	gen atomic.Uint64
}

type cacheEntry struct {
	key   []byte
	found bool
	gen   uint64        // the cache's generation when it was stored
	v     backend.Value // Data aliases buf; never modified
	// inline holds key and data when they are small, sparing an allocation.
	inline [64]byte
}

// newCache returns a cache of at least slots slots (a power of two, so a
// slot is found with a mask rather than a division).
func newCache(slots int) *cache {
	n := 1
	for n < slots {
		n <<= 1
	}
	return &cache{seed: maphash.MakeSeed(), slots: make([]atomic.Pointer[cacheEntry], n), mask: uint64(n - 1)}
}

func (c *cache) seedHash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

func (c *cache) slot(key []byte) *atomic.Pointer[cacheEntry] {
	return &c.slots[c.seedHash(key)&c.mask]
}

// lookup returns key's cached state. The entry must not be modified.
func (c *cache) lookup(key []byte) (*cacheEntry, bool) {
	e := c.slot(key).Load()
	if e == nil || e.gen != c.gen.Load() || !bytes.Equal(e.key, key) {
		return nil, false
	}
	return e, true
}

// put records key's committed state; the caller holds key's latch. A state too
// large to cache just removes the key's entry.
func (c *cache) put(key []byte, st stored) {
	if entrySize(key, st) > cacheMaxEntry {
		c.invalidate(key)
		return
	}
	e := makeEntry(key, st)
	e.gen = c.gen.Load()
	c.slot(key).Store(e)
}

// publish stores e, made by makeEntry, as its key's committed state, under
// the same rules as put.
func (c *cache) publish(e *cacheEntry) {
	if entrySize(e.key, stored{v: e.v, found: e.found}) > cacheMaxEntry {
		c.invalidate(e.key)
		return
	}
	e.gen = c.gen.Load()
	c.slot(e.key).Store(e)
}

func entrySize(key []byte, st stored) int {
	n := len(key)
	if st.found {
		n += len(st.v.Data)
	}
	return n
}

// makeEntry builds an entry holding copies of key and st, of any size.
func makeEntry(key []byte, st stored) *cacheEntry {
	n := entrySize(key, st)
	e := &cacheEntry{found: st.found}
	var buf []byte
	if n <= len(e.inline) {
		buf = e.inline[:0:n]
	} else {
		buf = make([]byte, 0, n)
	}
	buf = append(buf, key...)
	e.key = buf[:len(key):len(key)]
	if st.found {
		buf = append(buf, st.v.Data...)
		e.v = backend.Value{Type: st.v.Type, ExpiresAt: st.v.ExpiresAt, Data: buf[len(key):n:n]}
	}
	return e
}

// invalidate removes key's entry; the caller holds key's latch.
func (c *cache) invalidate(key []byte) { c.invalidateSlot(c.slot(key), key) }

func (c *cache) invalidateSlot(sl *atomic.Pointer[cacheEntry], key []byte) {
	// Another key's entry in the slot stays: only key's latch holder stores key.
	if e := sl.Load(); e != nil && bytes.Equal(e.key, key) {
		sl.CompareAndSwap(e, nil)
	}
}

// clear drops every entry; the caller excludes all readers and writers.
// The entries stay in their slots, dead, until replaced.
func (c *cache) clear() { c.gen.Add(1) }
