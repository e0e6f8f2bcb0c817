package embedded

import (
	"bytes"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"unsafe"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Cache geometry: a direct-mapped table of recently written or read keys,
// bounded by Options.KeyCacheBytes (DefaultKeyCacheBytes): the slots and the
// entries they hold, each of at most cacheMaxEntry bytes of key and value.
const (
	// DefaultKeyCacheBytes is the default Options.KeyCacheBytes. 256 MiB
	// holds about 1.7M small keys (KeyCacheEntryBytes each; the old
	// default of 1M slots took ~150 MiB when full). Keys past it are read
	// from Pebble's block cache (Options.CacheSize), which holds a small
	// key in ~25 bytes outside the Go heap: a far larger key cache costs
	// more in garbage collection, which traces every entry, than it saves
	// (docs/benchmarks.md, "Embedded at scale").
	DefaultKeyCacheBytes = 256 << 20
	cacheMaxEntry        = 512
)

// KeyCacheEntryBytes is what the key cache charges for a small entry (key and
// value within the entry's 64 inline bytes) with its slot: the key cache
// holds about KeyCacheBytes/KeyCacheEntryBytes such keys. A larger entry
// costs its bytes on top.
const KeyCacheEntryBytes = int64(unsafe.Sizeof(atomic.Pointer[cacheEntry]{}) + unsafe.Sizeof(cacheEntry{}))

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
	// budget is what the entries may take (the bytes asked for, less the
	// slots); used is what the entries in the slots take, live or dead.
	// A store that would pass the budget is dropped instead: so the cache
	// stays within its bytes give or take one entry per concurrent writer.
	budget int64
	used   atomic.Int64
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

// newCache returns a cache of about maxBytes: one slot per
// KeyCacheEntryBytes, so that it fills up when every slot holds a small
// entry (at least one slot, however small maxBytes).
func newCache(maxBytes int64) *cache {
	n := max(maxBytes/KeyCacheEntryBytes, 1)
	slotBytes := n * int64(unsafe.Sizeof(atomic.Pointer[cacheEntry]{}))
	return &cache{
		seed:   maphash.MakeSeed(),
		slots:  make([]atomic.Pointer[cacheEntry], n),
		budget: max(maxBytes-slotBytes, n*int64(unsafe.Sizeof(cacheEntry{}))),
	}
}

func (c *cache) seedHash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

// slotIndex maps a hash onto the slots by multiplication (Lemire's
// fastrange), so the slot count need not be a power of two.
func (c *cache) slotIndex(h uint64) uint64 {
	hi, _ := bits.Mul64(h, uint64(len(c.slots)))
	return hi
}

func (c *cache) slot(key []byte) *atomic.Pointer[cacheEntry] {
	return &c.slots[c.slotIndex(c.seedHash(key))]
}

// cost is what e takes in memory: the entry, and the buffer of key and value
// when they do not fit inline. (Go rounds allocations up to a size class;
// that slack, at most an eighth, is not counted.)
func (e *cacheEntry) cost() int64 {
	n := int64(unsafe.Sizeof(cacheEntry{}))
	if d := len(e.key) + len(e.v.Data); d > len(e.inline) {
		n += int64(d)
	}
	return n
}

// store puts e in sl, unless that would take the cache past its budget; then
// key's entry, if sl holds one, is removed instead (it may be stale).
func (c *cache) store(sl *atomic.Pointer[cacheEntry], e *cacheEntry) {
	var oldCost int64
	if old := sl.Load(); old != nil {
		oldCost = old.cost()
	}
	add := e.cost()
	if c.used.Load()+add-oldCost > c.budget {
		c.invalidateSlot(sl, e.key)
		return
	}
	if old := sl.Swap(e); old != nil {
		add -= old.cost()
	}
	c.used.Add(add)
}

// bytes is what the slots and the entries in them take.
func (c *cache) bytes() int64 {
	return int64(len(c.slots))*int64(unsafe.Sizeof(atomic.Pointer[cacheEntry]{})) + c.used.Load()
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
	c.store(c.slot(key), e)
}

// publish stores e, made by makeEntry, as its key's committed state, under
// the same rules as put.
func (c *cache) publish(e *cacheEntry) {
	if entrySize(e.key, stored{v: e.v, found: e.found}) > cacheMaxEntry {
		c.invalidate(e.key)
		return
	}
	e.gen = c.gen.Load()
	c.store(c.slot(e.key), e)
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
	if e := sl.Load(); e != nil && bytes.Equal(e.key, key) && sl.CompareAndSwap(e, nil) {
		c.used.Add(-e.cost())
	}
}

// clear drops every entry; the caller excludes all readers and writers.
// The entries stay in their slots, dead, until replaced.
func (c *cache) clear() { c.gen.Add(1) }
