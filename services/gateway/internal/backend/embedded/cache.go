package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/maphash"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/nokv/nokv/services/gateway/internal/backend"
)

// The key cache remembers the committed state (value, expiry, or absence)
// of keys recently written or read, so that a GET and the read half of a
// write skip a Pebble lookup (~5 µs of CPU at 10M keys against ~0.3 µs
// here; docs/benchmarks.md, "Embedded at scale").
//
// It holds no Go pointers per key, so the garbage collector never looks
// at it, however many keys it holds: the cache it replaced kept one heap
// object per key, and at 10M keys the collector's marking of them cost
// more than the Pebble reads they saved. Here every shard is a ring of
// encoded entries and an index of 8-byte slots, both in anonymous memory
// mapped outside the Go heap (the kernel backs a page when it is first
// written, so an idle or small store costs only what it has written).
//
//   - The ring is a log: entries are appended at head and never modified;
//     an entry is live while the ring has not wrapped around onto it
//     (head - pos <= len(ring)), so eviction is FIFO by insertion, as in
//     VictoriaMetrics' fastcache, and costs nothing.
//   - The index is set associative: a key hashes to a bucket of 8 slots
//     (one cache line) and may sit in it or the next (16 slots, two
//     adjacent lines); a slot holds 16 bits of the key's hash and the
//     entry's ring position. When both buckets are full the oldest of
//     their entries gives way. The index starts small and doubles
//     (dropping dead slots) while half its slots are used, up to its
//     share of the bytes.
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
// Each shard has a read-write lock; readers copy out what they found.
type cache struct {
	seed   maphash.Seed
	shards []cacheShard
}

const (
	// cacheMaxEntry bounds key and value bytes of a cached state: larger
	// ones are read from Pebble (a large value's copy costs more than the
	// lookup saves, and it would push many small keys out).
	cacheMaxEntry = 512
	// DefaultKeyCacheShare is the part of the memory this process may use
	// (the cgroup's limit if it has one) that the key cache takes by
	// default: a sixteenth, ~1.4 GiB of a 23 GiB machine, which holds
	// ~40M small keys. With the block cache's quarter, three quarters of
	// the memory stay for memtables, the Go heap and the page cache.
	DefaultKeyCacheShare = 16
	// MinDefaultKeyCacheBytes is the floor of the default, and the default
	// when the memory size cannot be read.
	MinDefaultKeyCacheBytes = 256 << 20

	cacheBucketSlots = 8
	// cacheIndexShare is the index's part of the bytes: a third, so that
	// when the ring is full of small entries (~30 bytes) the index is at
	// about half load, where a key rarely finds its 16 slots taken.
	cacheIndexShare = 3
	cacheMaxShards  = 256
	cacheMinRing    = 64 << 10
	// cacheInitBuckets is a new shard's index: one page.
	cacheInitBuckets = 64
	cachePosBits     = 48
	cachePosMask     = 1<<cachePosBits - 1
	// cacheHeader is an entry's header: key length, data length (uint16
	// each), type, flags; an 8-byte expiry follows if flagExpires.
	cacheHeader = 6
	flagFound   = 1
	flagExpires = 2
)

// KeyCacheEntryBytes is about what a small key (16 bytes, a few bytes of
// value) takes in the key cache, ring and index together: the deprecated
// slot count --cache-keys is taken as that many of these.
const KeyCacheEntryBytes = 44

// DefaultKeyCacheBytes is the key cache an Options.KeyCacheBytes of 0 stands
// for: DefaultKeyCacheShare of the memory, at least MinDefaultKeyCacheBytes.
// It is a ceiling: pages are backed as entries are written.
func DefaultKeyCacheBytes() int64 {
	mem := memoryLimit()
	if mem <= 0 {
		return MinDefaultKeyCacheBytes
	}
	return max(mem/DefaultKeyCacheShare, MinDefaultKeyCacheBytes)
}

type cacheShard struct {
	mu   sync.RWMutex
	ring []byte
	// head is the absolute ring position of the next entry (its offset
	// is head % len(ring)); it only grows.
	head uint64
	// slots is the index, buckets of cacheBucketSlots: 0 is empty, else
	// the hash's top 16 bits << cachePosBits | (entry position + 1).
	slots      []uint64
	slotMem    []byte // the mapping behind slots
	used       int    // nonzero slots, live or dead
	maxBuckets int
	_          [64]byte // keeps shards' locks off each other's cache lines
}

// newCache returns a cache of about maxBytes (never less than one shard of
// a 64 KiB ring and a 4 KiB index).
func newCache(maxBytes int64) (*cache, error) {
	ringBytes := maxBytes - maxBytes/cacheIndexShare
	n := 1
	for n < cacheMaxShards && ringBytes/int64(2*n) >= cacheMinRing {
		n *= 2
	}
	ringCap := max(ringBytes/int64(n), cacheMinRing)
	maxBuckets := max(int(maxBytes/cacheIndexShare/8/cacheBucketSlots/int64(n)), cacheInitBuckets)
	c := &cache{seed: maphash.MakeSeed(), shards: make([]cacheShard, n)}
	for i := range c.shards {
		sh := &c.shards[i]
		var err error
		if sh.ring, err = mapAnon(int(ringCap)); err == nil {
			err = sh.mapSlots(cacheInitBuckets)
		}
		if err != nil {
			c.close()
			return nil, fmt.Errorf("key cache of %d bytes: %w", maxBytes, err)
		}
		sh.maxBuckets = maxBuckets
	}
	return c, nil
}

// mapAnon maps n bytes of anonymous memory, MAP_NORESERVE: the size is a
// ceiling that pages fill as they are written, so it must not be charged
// against the overcommit limit up front.
func mapAnon(n int) ([]byte, error) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE|unix.MAP_NORESERVE)
	if err != nil {
		return nil, fmt.Errorf("mmap %d bytes: %w", n, err)
	}
	return b, nil
}

// mapSlots gives sh a new empty index of buckets buckets.
func (sh *cacheShard) mapSlots(buckets int) error {
	mem, err := mapAnon(buckets * cacheBucketSlots * 8)
	if err != nil {
		return err
	}
	sh.slotMem = mem
	sh.slots = unsafe.Slice((*uint64)(unsafe.Pointer(&mem[0])), buckets*cacheBucketSlots)
	sh.used = 0
	return nil
}

// close unmaps the cache's memory; nothing may use it after.
func (c *cache) close() {
	for i := range c.shards {
		sh := &c.shards[i]
		if sh.ring != nil {
			_ = unix.Munmap(sh.ring)
			sh.ring = nil
		}
		if sh.slotMem != nil {
			_ = unix.Munmap(sh.slotMem)
			sh.slotMem, sh.slots = nil, nil
		}
	}
}

func (c *cache) hash(key []byte) uint64 { return maphash.Bytes(c.seed, key) }

// shard picks a shard by bits 32-39 of the hash; buckets use bits 0-31
// and slots keep bits 48-63.
func (c *cache) shard(h uint64) *cacheShard {
	return &c.shards[(h>>32)&uint64(len(c.shards)-1)]
}

// bucket is the first slot of h's bucket (Lemire's fastrange over the low
// 32 bits, so the bucket count need not be a power of two).
func (sh *cacheShard) bucket(h uint64) int {
	return int((h&0xffffffff)*uint64(len(sh.slots)/cacheBucketSlots)>>32) * cacheBucketSlots
}

// entryAt returns the entry a slot points at, if the ring still holds it.
func (sh *cacheShard) entryAt(slot uint64) ([]byte, bool) {
	pos := slot&cachePosMask - 1
	if sh.head-pos > uint64(len(sh.ring)) {
		return nil, false
	}
	return sh.ring[pos%uint64(len(sh.ring)):], true
}

func entryKey(e []byte) []byte {
	klen := int(binary.LittleEndian.Uint16(e))
	off := cacheHeader
	if e[5]&flagExpires != 0 {
		off += 8
	}
	return e[off : off+klen]
}

// next is the bucket after b, the second half of b's window.
func (sh *cacheShard) next(b int) int {
	if b += cacheBucketSlots; b == len(sh.slots) {
		return 0
	}
	return b
}

// find returns the index of key's slot and its entry; the caller holds sh.mu.
func (sh *cacheShard) find(key []byte, h uint64) (int, []byte) {
	b := sh.bucket(h)
	tag := h >> cachePosBits
	for _, b := range [2]int{b, sh.next(b)} {
		for i := b; i < b+cacheBucketSlots; i++ {
			s := sh.slots[i]
			if s == 0 || s>>cachePosBits != tag {
				continue
			}
			if e, ok := sh.entryAt(s); ok && bytes.Equal(entryKey(e), key) {
				return i, e
			}
		}
	}
	return -1, nil
}

// decode returns an entry's state; Data aliases the ring unless dst is
// given (then it is appended to dst). withData false leaves Data nil.
func decodeEntry(e, dst []byte, withData bool) stored {
	klen := int(binary.LittleEndian.Uint16(e))
	dlen := int(binary.LittleEndian.Uint16(e[2:]))
	st := stored{found: e[5]&flagFound != 0}
	st.v.Type = backend.Type(e[4])
	off := cacheHeader
	if e[5]&flagExpires != 0 {
		st.v.ExpiresAt = int64(binary.LittleEndian.Uint64(e[off:]))
		off += 8
	}
	if withData && st.found {
		off += klen
		st.v.Data = append(dst, e[off:off+dlen]...)[len(dst):]
		if st.v.Data == nil {
			st.v.Data = []byte{} // an empty string is not absent data
		}
	}
	return st
}

// get returns key's cached state, its data appended to dst (a fresh copy
// when dst is nil and there is data).
func (c *cache) get(key, dst []byte) (stored, bool) {
	h := c.hash(key)
	sh := c.shard(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	if _, e := sh.find(key, h); e != nil {
		return decodeEntry(e, dst, true), true
	}
	return stored{}, false
}

// head returns key's cached state without its data.
func (c *cache) head(key []byte) (backend.Head, bool, bool) {
	h := c.hash(key)
	sh := c.shard(h)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	_, e := sh.find(key, h)
	if e == nil {
		return backend.Head{}, false, false
	}
	st := decodeEntry(e, nil, false)
	return backend.Head{Type: st.v.Type, ExpiresAt: st.v.ExpiresAt, Len: int64(binary.LittleEndian.Uint16(e[2:]))}, st.found, true
}

// put records key's committed state; the caller holds key's latch (or the
// group's writeMu). A state too large to cache removes the key's entry.
func (c *cache) put(key []byte, st stored) {
	if entrySize(key, st) > cacheMaxEntry {
		c.invalidate(key)
		return
	}
	h := c.hash(key)
	sh := c.shard(h)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.head >= 1<<(cachePosBits-1) {
		// Positions would soon not fit a slot: start over (after ~128 TiB
		// written to one shard).
		clear(sh.slots)
		sh.used, sh.head = 0, 0
	}
	pos := sh.append(key, st)
	canGrow := len(sh.slots)/cacheBucketSlots < sh.maxBuckets
	if canGrow && sh.used >= len(sh.slots)/2 {
		sh.grow(c)
		canGrow = len(sh.slots)/cacheBucketSlots < sh.maxBuckets
	}
	slot := h>>cachePosBits<<cachePosBits | (pos + 1)
	i, _ := sh.find(key, h)
	if i < 0 {
		var free bool
		if i, free = sh.victim(sh.bucket(h)); !free && canGrow {
			// Evict only once the index has taken its share.
			sh.grow(c)
			i, _ = sh.victim(sh.bucket(h))
		}
	}
	if sh.slots[i] == 0 {
		sh.used++
	}
	sh.slots[i] = slot
}

// append writes an entry at head and returns its position. An entry never
// wraps: one that would is written at the ring's start.
func (sh *cacheShard) append(key []byte, st stored) uint64 {
	n := uint64(len(sh.ring))
	size := cacheHeader + len(key)
	var flags byte
	if st.found {
		flags |= flagFound
		size += len(st.v.Data)
		if st.v.ExpiresAt != 0 {
			flags |= flagExpires
			size += 8
		}
	}
	if off := sh.head % n; off+uint64(size) > n {
		sh.head += n - off
	}
	pos := sh.head
	e := sh.ring[pos%n:]
	binary.LittleEndian.PutUint16(e, uint16(len(key)))
	var dlen int
	if st.found {
		dlen = len(st.v.Data)
	}
	binary.LittleEndian.PutUint16(e[2:], uint16(dlen))
	e[4], e[5] = byte(st.v.Type), flags
	off := cacheHeader
	if flags&flagExpires != 0 {
		binary.LittleEndian.PutUint64(e[off:], uint64(st.v.ExpiresAt))
		off += 8
	}
	off += copy(e[off:], key)
	if st.found {
		copy(e[off:], st.v.Data)
	}
	sh.head += uint64(size)
	return pos
}

// victim picks the slot of bucket b's window to take: an empty one, else
// the oldest entry's (a dead one is older than every live one).
// It says whether the slot is empty.
func (sh *cacheShard) victim(b int) (int, bool) {
	best, bestPos := b, uint64(1<<64-1)
	for _, b := range [2]int{b, sh.next(b)} {
		for i := b; i < b+cacheBucketSlots; i++ {
			s := sh.slots[i]
			if s == 0 {
				return i, true
			}
			if pos := s & cachePosMask; pos < bestPos {
				best, bestPos = i, pos
			}
		}
	}
	return best, false
}

// grow doubles sh's index (up to maxBuckets), keeping its live entries. If
// the memory cannot be had, the index stays as it is.
func (sh *cacheShard) grow(c *cache) {
	old, oldMem := sh.slots, sh.slotMem
	if err := sh.mapSlots(min(2*len(old)/cacheBucketSlots, sh.maxBuckets)); err != nil {
		sh.maxBuckets = len(old) / cacheBucketSlots
		sh.slots, sh.slotMem = old, oldMem
		return
	}
	for _, s := range old {
		if s == 0 {
			continue
		}
		e, ok := sh.entryAt(s)
		if !ok {
			continue
		}
		i, _ := sh.victim(sh.bucket(c.hash(entryKey(e))))
		if sh.slots[i] == 0 {
			sh.used++
		}
		sh.slots[i] = s
	}
	_ = unix.Munmap(oldMem)
}

// invalidate removes key's entry; the caller holds key's latch.
func (c *cache) invalidate(key []byte) {
	h := c.hash(key)
	sh := c.shard(h)
	sh.mu.Lock()
	if i, _ := sh.find(key, h); i >= 0 {
		sh.slots[i] = 0
		sh.used--
	}
	sh.mu.Unlock()
}

// clear drops every entry; the caller excludes all readers and writers.
func (c *cache) clear() {
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.slots)
		sh.used = 0
		sh.mu.Unlock()
	}
}

// bytes is what the cache has touched of its memory: the rings up to
// where they have been written, and the indexes.
func (c *cache) bytes() int64 {
	var n int64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += int64(min(sh.head, uint64(len(sh.ring)))) + int64(len(sh.slotMem))
		sh.mu.RUnlock()
	}
	return n
}

// mapped is the memory the cache has mapped, touched or not.
func (c *cache) mapped() int64 {
	var n int64
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		n += int64(len(sh.ring)) + int64(len(sh.slotMem))
		sh.mu.RUnlock()
	}
	return n
}

// entries counts the live entries (for tests and INFO).
func (c *cache) entries() int {
	n := 0
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.RLock()
		for _, s := range sh.slots {
			if _, ok := sh.entryAt(s); s != 0 && ok {
				n++
			}
		}
		sh.mu.RUnlock()
	}
	return n
}

func entrySize(key []byte, st stored) int {
	n := len(key)
	if st.found {
		n += len(st.v.Data)
	}
	return n
}

// cacheEntry is a key's state in a group's overlay (see group): immutable
// once made, its bytes in one allocation.
type cacheEntry struct {
	key   []byte
	found bool
	v     backend.Value // Data aliases buf; never modified
	// inline holds key and data when they are small, sparing an allocation.
	inline [64]byte
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
