package embedded

import (
	"bytes"
	"hash/maphash"
	"sync/atomic"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// Cache geometry: a direct-mapped table of recently written or read keys. It
// holds at most cacheSlots entries of at most cacheMaxEntry bytes of key and
// value each (a few MiB at worst).
const (
	cacheSlots    = 1 << 14
	cacheMaxEntry = 512
)

// cache remembers the committed state (value, expiry, or absence) of keys that
// writers recently touched, so that a GET of a hot key and the read half of a
// write skip a Pebble lookup, which costs more than the rest of a GET.
//
// It never holds a state that Pebble does not also show, by these rules:
//   - Only a writer holding the key's latch stores an entry for it, and the entry
//     is the key's committed state (a Pebble read under the latch, or a write the
//     writer has just applied). No other writer can change the key meanwhile;
//     sweeps take the latches too and FlushAll excludes everyone.
//   - A writer removes the key's entry before its batch becomes visible, and puts
//     the new one only after. So a reader that finds an entry saw a state that was
//     current when it looked; one that finds none reads Pebble.
//
// Entries are immutable and published atomically, so readers take no lock.
type cache struct {
	seed  maphash.Seed
	slots [cacheSlots]atomic.Pointer[cacheEntry]
}

type cacheEntry struct {
	key   []byte
	found bool
	v     backend.Value // Data aliases buf; never modified
	// inline holds key and data when they are small, sparing an allocation.
	inline [64]byte
}

func newCache() *cache { return &cache{seed: maphash.MakeSeed()} }

func (c *cache) seedHash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

func (c *cache) slot(key []byte) *atomic.Pointer[cacheEntry] {
	return &c.slots[c.seedHash(key)%cacheSlots]
}

// lookup returns key's cached state. The entry must not be modified.
func (c *cache) lookup(key []byte) (*cacheEntry, bool) {
	e := c.slot(key).Load()
	if e == nil || !bytes.Equal(e.key, key) {
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
	c.slot(key).Store(makeEntry(key, st))
}

// publish stores e, made by makeEntry, as its key's committed state, under
// the same rules as put.
func (c *cache) publish(e *cacheEntry) {
	if entrySize(e.key, stored{v: e.v, found: e.found}) > cacheMaxEntry {
		c.invalidate(e.key)
		return
	}
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
func (c *cache) clear() {
	for i := range c.slots {
		c.slots[i].Store(nil)
	}
}
